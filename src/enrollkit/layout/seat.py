"""Seats: the free seat item ``vacancies#<org id>``/``<order id>#<slot id>`` (enrollments
table), the order's record of each seat ``<order id>``/``generated_items#<slot id>``
(orders table), and an enrollment's ``parent_vacancy`` item naming the seat it took.

A seat record's status only moves forward, each step in the same transaction as the
seat item it describes::

    add_vacancies:  AVAILABLE
    enroll:         AVAILABLE -> USED       (seat item deleted, parent_vacancy written)
    cancel:         USED      -> ROLLBACK   (and a NEW slot, AVAILABLE, with a new seat item)
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, NamedTuple

from pydantic import ValidationError

from enrollkit.errors import UnreadableItem
from enrollkit.layout.table import (
    CREATE_DATE,
    PARTITION_KEY,
    SORT_KEY,
    UPDATE_DATE,
    attr,
    check_key_bytes,
    item_exists,
    kept_conditions,
    key,
    key_attributes,
    read,
)
from enrollkit.models import Course, KeyPair, SeatStatus, Vacancy
from enrollkit.timing import iso

if TYPE_CHECKING:
    from boto3.dynamodb.conditions import ConditionBase

VACANCIES_PREFIX = "vacancies#"
GENERATED_ITEMS_PREFIX = "generated_items#"
PARENT_VACANCY_SK = "parent_vacancy"
COURSE = "course"
STATUS = "status"
RECORD_ORG = "org_id"
RECORD_COURSE = "course_id"
RECORD_ENROLLMENT = "enrollment_id"
_SLOT_ID_SAMPLE = str(uuid.UUID(int=0))  # as long as every slot id enrollkit makes


# -- the seat item ----------------------------------------------------------------------


def seat_key(vacancy: Vacancy) -> KeyPair:
    return key(*_seat_key_parts(vacancy))


def seat_key_attributes(vacancy: Vacancy) -> dict[str, str]:
    """seat_key's, as an item's attributes (no KeyPair)."""
    return key_attributes(*_seat_key_parts(vacancy))


def _seat_key_parts(vacancy: Vacancy) -> tuple[str, str]:
    return f"{VACANCIES_PREFIX}{vacancy.org_id}", f"{vacancy.order_id}#{vacancy.slot_id}"


def require_keys_fit(vacancy: Vacancy) -> None:
    """InvalidInput unless the seat's keys (its item, its record) fit DynamoDB's limits:
    checked before anything is written."""
    check_key_bytes(*_seat_key_parts(vacancy))
    check_key_bytes(*_record_key_parts(vacancy.order_id, vacancy.slot_id))


def require_seat_keys_fit(org_id: str, order_id: str) -> None:
    """InvalidInput unless the keys of this organization's seats in this order fit
    DynamoDB's limits (slot ids enrollkit makes are UUID strings)."""
    require_keys_fit(Vacancy(org_id=org_id, order_id=order_id, slot_id=_SLOT_ID_SAMPLE))


def seat_item(vacancy: Vacancy, course: Course, now: datetime) -> dict[str, Any]:
    return {
        **seat_key_attributes(vacancy),  # seat_key's, without a KeyPair
        COURSE: course.model_dump(mode="json"),
        CREATE_DATE: iso(now),
    }


def seat_is_for(course: Course) -> ConditionBase:
    """The seat exists and was bought for ``course`` on its terms: the same course id and
    access period (the name is a label: a renamed course still spends its seats)."""
    return _seat_is_for(course.id, course.access_period)


@kept_conditions(maxsize=256)
def _seat_is_for(course_id: str, access_period: int) -> ConditionBase:
    # Cached per course: a boto3 condition is immutable, so one serves every enroll.
    return (
        item_exists()
        & attr(f"{COURSE}.id").eq(course_id)
        & attr(f"{COURSE}.access_period").eq(access_period)
    )


# -- the enrollment's parent_vacancy item ------------------------------------------------


def parent_vacancy_key(enrollment_id: str) -> KeyPair:
    return key(enrollment_id, PARENT_VACANCY_SK)


def parent_vacancy_item(enrollment_id: str, vacancy: Vacancy, now: datetime) -> dict[str, Any]:
    return {
        **key_attributes(enrollment_id, PARENT_VACANCY_SK),  # parent_vacancy_key's
        "vacancy": seat_key_attributes(vacancy),
        "order_id": vacancy.order_id,
        CREATE_DATE: iso(now),
    }


def parse_parent_vacancy(item: Mapping[str, Any]) -> Vacancy:
    """The seat an enrollment took, from its ``parent_vacancy`` item."""
    seat = read(item, "vacancy", Mapping)
    order_id = read(item, "order_id")
    pk, sk = read(seat, PARTITION_KEY), read(seat, SORT_KEY)
    try:
        return Vacancy(
            org_id=pk.removeprefix(VACANCIES_PREFIX),
            order_id=order_id,
            slot_id=sk.removeprefix(f"{order_id}#"),
        )
    except ValidationError as error:
        raise UnreadableItem(
            f"item {item.get(PARTITION_KEY)!r}/{PARENT_VACANCY_SK!r}: attribute 'vacancy' "
            f"does not name a seat: {error}"
        ) from None


# -- the order's generated_items#<slot> records ----------------------------------------------


def record_key(order_id: str, slot_id: str) -> KeyPair:
    return key(*_record_key_parts(order_id, slot_id))


def _record_key_parts(order_id: str, slot_id: str) -> tuple[str, str]:
    return order_id, f"{GENERATED_ITEMS_PREFIX}{slot_id}"


def is_record(sk: str) -> bool:
    return sk.startswith(GENERATED_ITEMS_PREFIX)


def record_slot(item: Mapping[str, Any]) -> str:
    return str(item[SORT_KEY]).removeprefix(GENERATED_ITEMS_PREFIX)


def record_holder(item: Mapping[str, Any]) -> str | None:
    """The enrollment a USED (or ROLLBACK) record names."""
    value = item.get(RECORD_ENROLLMENT)
    return value if isinstance(value, str) else None


def available_record(vacancy: Vacancy, *, course_id: str, now: datetime) -> dict[str, Any]:
    """The order's AVAILABLE record of a new seat."""
    return {
        **key_attributes(*_record_key_parts(vacancy.order_id, vacancy.slot_id)),  # record_key's
        STATUS: SeatStatus.AVAILABLE.value,
        RECORD_ORG: vacancy.org_id,
        RECORD_COURSE: course_id,
        CREATE_DATE: iso(now),
        UPDATE_DATE: iso(now),
    }


class SeatTransition(NamedTuple):
    """One step of a seat record's lifecycle: the attributes it sets and the condition
    the record must meet (an update of ``record_key``). (A named tuple: cheaper to build
    than a frozen dataclass.)"""

    set: Mapping[str, Any]
    cond: ConditionBase


def mark_used(enrollment_id: str, now: datetime) -> SeatTransition:
    """AVAILABLE -> USED, naming the enrollment that took the seat."""
    return SeatTransition(
        set={
            STATUS: SeatStatus.USED.value,
            UPDATE_DATE: iso(now),
            RECORD_ENROLLMENT: enrollment_id,
        },
        cond=_is_available(),
    )


@kept_conditions(maxsize=None)
def _is_available() -> ConditionBase:
    return attr(STATUS).eq(SeatStatus.AVAILABLE.value)


def mark_rolled_back(now: datetime) -> SeatTransition:
    """USED -> ROLLBACK: the seat was given back (as a new slot)."""
    return SeatTransition(
        set={STATUS: SeatStatus.ROLLBACK.value, UPDATE_DATE: iso(now)},
        cond=item_exists(),
    )


@dataclass(frozen=True)
class SeatRecord:
    """One seat of an order, as the order's ledger records it."""

    vacancy: Vacancy
    course_id: str | None
    """The course the seat was bought for; ``None`` for a record of the original layout
    (which stored no ``course_id``) whose seat item is gone (used, or returned)."""
    status: SeatStatus
    enrollment_id: str | None
    """The enrollment that consumed the seat (USED and ROLLBACK seats)."""


def parse_record(item: Mapping[str, Any], order_id: str, *, owner: str | None) -> SeatRecord | None:
    """A ``generated_items#`` record as a :class:`SeatRecord`.

    A record of the original layout names no organization: it is the order's owner's;
    for an order without owner it cannot be attributed, and the answer is ``None``.
    """
    org_id = item.get(RECORD_ORG, owner)
    if org_id is None:
        return None
    course_id = item.get(RECORD_COURSE)
    try:
        return SeatRecord(
            vacancy=Vacancy(org_id=str(org_id), order_id=order_id, slot_id=record_slot(item)),
            course_id=course_id if isinstance(course_id, str) else None,
            status=SeatStatus(read(item, STATUS)),
            enrollment_id=record_holder(item),
        )
    except (ValidationError, ValueError) as error:
        raise UnreadableItem(f"item {order_id!r}/{item.get(SORT_KEY)!r}: {error}") from None


def seat_course_id(seat: Mapping[str, Any]) -> str | None:
    """The id of the course a seat item was bought for."""
    course = seat.get(COURSE)
    value = course.get("id") if isinstance(course, Mapping) else None
    return value if isinstance(value, str) else None
