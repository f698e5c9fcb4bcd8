"""Seats (vacancies): adding them to an order, and reading an order's seat ledger.

enroll() consumes a seat and cancel() returns one; both live with those operations.
"""

from __future__ import annotations

import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from boto3.dynamodb.conditions import Attr

from enrollkit import keys
from enrollkit.errors import InvalidInput, OrderNotFound, TransactionCanceled
from enrollkit.models import Course, SeatStatus, Vacancy
from enrollkit.operations._validation import require_identifier, require_instance
from enrollkit.persistence.base import PersistenceLayer
from enrollkit.timing import iso, require_aware

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
    org_id = require_identifier("org_id", org_id)
    order_id = require_identifier("order_id", order_id)
    require_instance("course", course, Course)
    if isinstance(quantity, bool) or not isinstance(quantity, int):
        raise InvalidInput("quantity must be an int")
    if not 1 <= quantity <= MAX_SEATS_PER_CALL:
        raise InvalidInput(f"quantity must be between 1 and {MAX_SEATS_PER_CALL}")

    orders = persistence_layer.order_table_name
    if persistence_layer.get_item(keys.order_key(order_id), table_name=orders) is None:
        raise OrderNotFound(f"order {order_id!r} does not exist")
    seats = [
        Vacancy(org_id=org_id, order_id=order_id, slot_id=_slot_id(org_id, order_id, course, n))
        for n in range(1, quantity + 1)
    ]
    # Each round writes what is missing; a concurrent call may win some slots, then
    # the next round sees them. Every round makes progress, so this ends.
    for _ in range(quantity + 1):
        existing = {
            item[keys.SORT_KEY].removeprefix(keys.GENERATED_ITEMS_PREFIX)
            for item in persistence_layer.query(
                order_id, sk_prefix=keys.GENERATED_ITEMS_PREFIX, table_name=orders
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
            key=keys.order_key(seats[0].order_id),
            cond=Attr(keys.SORT_KEY).exists(),
            exc_cls=OrderNotFound,
            table_name=orders,
        )
        for seat in seats:
            transaction.put(
                item={
                    **keys.seat_key(seat.org_id, seat.order_id, seat.slot_id).as_key(),
                    "course": course.model_dump(mode="json"),
                    "create_date": iso(now),
                },
                cond=Attr(keys.SORT_KEY).not_exists(),
                exc_cls=_SlotTaken,
            )
            transaction.put(
                item=generated_item(seat, course_id=course.id, now=now),
                cond=Attr(keys.SORT_KEY).not_exists(),
                exc_cls=_SlotTaken,
                table_name=orders,
            )


def generated_item(seat: Vacancy, *, course_id: str, now: datetime) -> dict[str, Any]:
    """The order's AVAILABLE record of a seat."""
    return {
        **keys.generated_item_key(seat.order_id, seat.slot_id).as_key(),
        "status": SeatStatus.AVAILABLE.value,
        "org_id": seat.org_id,
        "course_id": course_id,
        "create_date": iso(now),
        "update_date": iso(now),
    }


@dataclass(frozen=True)
class SeatRecord:
    """One seat of an order, as the order's ledger records it."""

    vacancy: Vacancy
    course_id: str
    status: SeatStatus
    enrollment_id: str | None
    """The enrollment that consumed the seat (USED and ROLLBACK seats)."""


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
    order_id = require_identifier("order_id", order_id)
    if org_id is not None:
        org_id = require_identifier("org_id", org_id)
    orders = persistence_layer.order_table_name
    items = persistence_layer.query(order_id, table_name=orders)
    if not any(item[keys.SORT_KEY] == keys.ORDER_SK for item in items):
        raise OrderNotFound(f"order {order_id!r} does not exist")
    records = tuple(
        SeatRecord(
            vacancy=Vacancy(
                org_id=item["org_id"],
                order_id=order_id,
                slot_id=item[keys.SORT_KEY].removeprefix(keys.GENERATED_ITEMS_PREFIX),
            ),
            course_id=item["course_id"],
            status=SeatStatus(item["status"]),
            enrollment_id=item.get("enrollment_id"),
        )
        for item in items
        if item[keys.SORT_KEY].startswith(keys.GENERATED_ITEMS_PREFIX)
        and (org_id is None or item["org_id"] == org_id)
    )
    return SeatLedger(order_id=order_id, seats=records)
