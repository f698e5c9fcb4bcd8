"""Seats (vacancies): adding them to an order, and reading an order's seat ledger.

enroll() consumes a seat and cancel() returns one; both live with those operations.
"""

from __future__ import annotations

import dataclasses
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
from enrollkit.operations.orders import (
    OrderRefused,
    claim_order,
    order_refusal,
    require_usable,
)
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
    org_id = require_identifier("org_id", org_id)
    order_id = require_identifier("order_id", order_id)
    course = require_instance("course", course, Course)
    if isinstance(quantity, bool) or not isinstance(quantity, int):
        raise InvalidInput("quantity must be an int")
    if not 1 <= quantity <= MAX_SEATS_PER_CALL:
        raise InvalidInput(f"quantity must be between 1 and {MAX_SEATS_PER_CALL}")

    # Every key is built (and its size checked) before anything is written.
    seat.require_seat_keys_fit(org_id, order_id)
    orders = persistence_layer.order_table_name
    existing_order = persistence_layer.get_item(order.order_key(order_id), table_name=orders)
    if existing_order is None:
        raise OrderNotFound(f"order {order_id!r} does not exist")
    owner = order.owner_of(existing_order)
    require_usable(owner, order_id, org_id)
    seats = [
        Vacancy(org_id=org_id, order_id=order_id, slot_id=_slot_id(org_id, order_id, course, n))
        for n in range(1, quantity + 1)
    ]
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
            if owner is None:  # nothing to write, but the call still claims the order
                claim_order(persistence_layer, order_id, org_id, now)
            return seats
        try:
            for start in range(0, len(missing), _SEATS_PER_TRANSACTION):
                _write_seats(
                    persistence_layer,
                    missing[start : start + _SEATS_PER_TRANSACTION],
                    course,
                    now,
                    # An order from before owners: the first organization to add seats
                    # owns it, recorded with its first seats.
                    claim=owner is None,
                )
                owner = org_id  # claimed (or already ours) once a transaction applied
        except _SlotTaken:
            continue
        except OrderRefused as refused:
            raise order_refusal(refused, order_id) from None
    raise AssertionError("unreachable: every round writes at least one seat")  # pragma: no cover


def _slot_id(org_id: str, order_id: str, course: Course, number: int) -> str:
    return str(uuid.uuid5(_SLOT_NAMESPACE, f"{org_id}#{order_id}#{course.id}#{number}"))


def _write_seats(
    persistence_layer: PersistenceLayer,
    seats: list[Vacancy],
    course: Course,
    now: datetime,
    *,
    claim: bool,
) -> None:
    """One transaction: the seats, each with its record, while the order is usable by
    their organization (``claim``: and record that organization as its owner)."""
    orders = persistence_layer.order_table_name
    org_id, order_key = seats[0].org_id, order.order_key(seats[0].order_id)
    with persistence_layer.transact_writer() as transaction:
        if claim:
            transaction.update(
                key=order_key,
                set=order.owner_changes(org_id, now),
                cond=order.order_usable_by(org_id),
                exc_cls=OrderRefused,
                table_name=orders,
            )
        else:
            transaction.condition(
                key=order_key,
                cond=order.order_usable_by(org_id),
                exc_cls=OrderRefused,
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
    unattributed: tuple[str, ...] = ()
    """Slot ids of records, written before orders had owners, that name no organization
    in an order that has no owner either: whose seats they are is unknown."""

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

    def counts(self) -> dict[str | None, Counter[SeatStatus]]:
        """Course id -> how many seats are AVAILABLE, USED, ROLLBACK (``None``: records of
        the original layout whose course is not known)."""
        result: dict[str | None, Counter[SeatStatus]] = {}
        for record in self.seats:
            result.setdefault(record.course_id, Counter())[record.status] += 1
        return result


def seat_ledger(
    *, order_id: str, persistence_layer: PersistenceLayer, org_id: str | None = None
) -> SeatLedger:
    """An order's seats: which are available per course, which enrollment holds each used
    one. One Query on the orders table (plus one read per AVAILABLE record of the
    original layout, to learn its course from its seat item).

    Only the owner's seats are listed. Pass ``org_id`` (a service should: the tenant
    asking): another organization's order is then ``OrderOwnershipConflict``. For an
    order from before owners, ``org_id`` limits the ledger to that organization's seats,
    and records that name no organization are left out (their slot ids are in
    ``unattributed``).

    Raises ``OrderNotFound``, ``OrderOwnershipConflict``, ``InvalidInput``.
    """
    order_id = require_identifier("order_id", order_id)
    if org_id is not None:
        org_id = require_identifier("org_id", org_id)
    orders = persistence_layer.order_table_name
    items = persistence_layer.query(order_id, table_name=orders)
    order_item = next((item for item in items if order.is_order(str(item[SORT_KEY]))), None)
    if order_item is None:
        raise OrderNotFound(f"order {order_id!r} does not exist")
    owner = order.owner_of(order_item)
    if org_id is not None:
        require_usable(owner, order_id, org_id)
    # Only the owner's seats; for an order from before owners, only the asker's (if given).
    wanted_org = owner or org_id
    records: list[SeatRecord] = []
    unattributed: list[str] = []
    for item in items:
        if not seat.is_record(str(item[SORT_KEY])):
            continue
        record = seat.parse_record(item, order_id, owner=owner)
        if record is None:
            unattributed.append(seat.record_slot(item))
            continue
        if wanted_org is not None and record.vacancy.org_id != wanted_org:
            continue  # another organization's seat in this order (written before owners)
        if record.course_id is None and record.status is SeatStatus.AVAILABLE:
            record = _with_course_of_its_seat(persistence_layer, record)
        records.append(record)
    return SeatLedger(order_id=order_id, seats=tuple(records), unattributed=tuple(unattributed))


def _with_course_of_its_seat(persistence_layer: PersistenceLayer, record: SeatRecord) -> SeatRecord:
    """An AVAILABLE record of the original layout names no course: its seat item does."""
    seat_item = persistence_layer.get_item(seat.seat_key(record.vacancy))
    if seat_item is None:
        return record
    return dataclasses.replace(record, course_id=seat.seat_course_id(seat_item))
