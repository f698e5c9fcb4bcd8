"""Seats (vacancies): adding them to an order, and reading an order's seat ledger.

enroll() consumes a seat and cancel() returns one; both live with those operations.
"""

from __future__ import annotations

import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import datetime

from enrollkit.errors import InvalidInput, OrderNotFound, TransactionCanceled
from enrollkit.layout import order, seat
from enrollkit.layout.seat import SeatRecord
from enrollkit.layout.table import SORT_KEY, item_absent
from enrollkit.models import Course, SeatStatus, Vacancy
from enrollkit.operations._validation import require_identifier, require_instance
from enrollkit.persistence.base import PersistenceLayer
from enrollkit.timing import require_aware

__all__ = ["MAX_SEATS_PER_CALL", "SeatLedger", "SeatRecord", "add_vacancies", "seat_ledger"]

MAX_SEATS_PER_CALL = 10_000
# Two writes per seat, plus the check that the order exists: 49 * 2 + 1 <= 100.
_SEATS_PER_TRANSACTION = 49
# Names the seats add_vacancies() derives, so a retried call finds the ones it wrote.
_SLOT_NAMESPACE = uuid.UUID("5d1f3d0e-8a52-4c1b-9a6e-0f4a39f1b7c2")


class _SlotTaken(TransactionCanceled):
    """A concurrent call wrote this slot first."""


def add_vacancies(
    *,
    org_id: str,
    order_id: str,
    course: Course,
    quantity: int,
    persistence_layer: PersistenceLayer,
    now: datetime | None = None,
) -> list[Vacancy]:
    """Make the order hold ``quantity`` seats of ``course`` for organization ``org_id``.

    Seats are numbered 1..quantity within (order, course) and their slot ids derive
    from that number, so the call is idempotent: a retried (or repeated) call writes
    only the seats that are missing and never adds a seat twice. Raising ``quantity``
    in a later call adds the difference. Each seat is written with its
    ``generated_items#<slot>`` AVAILABLE record, 49 seats per transaction.

    Returns the ``quantity`` seats of the order for this course, in number order
    (those written earlier may since have been consumed by enroll()).
    Raises ``OrderNotFound`` when the order does not exist, ``InvalidInput``.
    """
    now = require_aware(now)
    require_identifier("org_id", org_id)
    require_identifier("order_id", order_id)
    require_instance("course", course, Course)
    if isinstance(quantity, bool) or not isinstance(quantity, int):
        raise InvalidInput("quantity must be an int")
    if not 1 <= quantity <= MAX_SEATS_PER_CALL:
        raise InvalidInput(f"quantity must be between 1 and {MAX_SEATS_PER_CALL}")

    orders = persistence_layer.order_table_name
    seats = [
        Vacancy(org_id=org_id, order_id=order_id, slot_id=_slot_id(org_id, order_id, course, n))
        for n in range(1, quantity + 1)
    ]
    if persistence_layer.get_item(order.order_key(order_id), table_name=orders) is None:
        raise OrderNotFound(f"order {order_id!r} does not exist")
    # Each round writes what is missing; a concurrent call may win some slots, then
    # the next round sees them. Every round makes progress, so this ends.
    for _ in range(quantity + 1):
        existing = {
            seat.record_slot(item)
            for item in persistence_layer.query(
                order_id, sk_prefix=seat.GENERATED_ITEMS_PREFIX, table_name=orders
            )
        }
        missing = [seat for seat in seats if seat.slot_id not in existing]
        if not missing:
            return seats
        try:
            for start in range(0, len(missing), _SEATS_PER_TRANSACTION):
                _write_seats(
                    persistence_layer, missing[start : start + _SEATS_PER_TRANSACTION], course, now
                )
        except _SlotTaken:
            continue
    raise AssertionError("unreachable: every round writes at least one seat")  # pragma: no cover


def _slot_id(org_id: str, order_id: str, course: Course, number: int) -> str:
    return str(uuid.uuid5(_SLOT_NAMESPACE, f"{org_id}#{order_id}#{course.id}#{number}"))


def _write_seats(
    persistence_layer: PersistenceLayer, seats: list[Vacancy], course: Course, now: datetime
) -> None:
    orders = persistence_layer.order_table_name
    with persistence_layer.transact_writer() as transaction:
        transaction.condition(
            key=order.order_key(seats[0].order_id),
            cond=order.order_exists(),
            exc_cls=OrderNotFound,
            table_name=orders,
        )
        for new_seat in seats:
            transaction.put(
                item=seat.seat_item(new_seat, course, now), cond=item_absent(), exc_cls=_SlotTaken
            )
            transaction.put(
                item=seat.available_record(new_seat, course_id=course.id, now=now),
                cond=item_absent(),
                exc_cls=_SlotTaken,
                table_name=orders,
            )


@dataclass(frozen=True)
class SeatLedger:
    """Every seat an order ever had, from its ``generated_items#`` records.

    A seat given back by cancel() is a new AVAILABLE record; the one it replaces
    stays as ROLLBACK, so the history is complete.
    """

    order_id: str
    seats: tuple[SeatRecord, ...]

    def available(self, course_id: str | None = None) -> list[Vacancy]:
        """The seats enroll() can take now, optionally for one course."""
        return [
            record.vacancy
            for record in self.seats
            if record.status is SeatStatus.AVAILABLE
            and (course_id is None or record.course_id == course_id)
        ]

    def holders(self) -> dict[str, Vacancy]:
        """Enrollment id -> the seat it holds (USED seats)."""
        return {
            record.enrollment_id: record.vacancy
            for record in self.seats
            if record.status is SeatStatus.USED and record.enrollment_id is not None
        }

    def counts(self) -> dict[str, Counter[SeatStatus]]:
        """Course id -> how many seats are AVAILABLE, USED, ROLLBACK."""
        result: dict[str, Counter[SeatStatus]] = {}
        for record in self.seats:
            result.setdefault(record.course_id, Counter())[record.status] += 1
        return result


def seat_ledger(
    *, order_id: str, persistence_layer: PersistenceLayer, org_id: str | None = None
) -> SeatLedger:
    """An order's seats: which are available per course, which enrollment holds each used
    one. One Query on the orders table. Raises ``OrderNotFound``.

    Pass ``org_id`` (a service should: the tenant asking) to see only that organization's
    seats; orders record no owner, so without it every organization's seats are listed.
    """
    require_identifier("order_id", order_id)
    if org_id is not None:
        require_identifier("org_id", org_id)
    orders = persistence_layer.order_table_name
    items = persistence_layer.query(order_id, table_name=orders)
    if not any(order.is_order(str(item[SORT_KEY])) for item in items):
        raise OrderNotFound(f"order {order_id!r} does not exist")
    records = tuple(
        record
        for record in (
            seat.parse_record(item, order_id)
            for item in items
            if seat.is_record(str(item[SORT_KEY]))
        )
        if org_id is None or record.vacancy.org_id == org_id
    )
    return SeatLedger(order_id=order_id, seats=records)
