"""Delivery records: ``<enrollment id>``/``deliveries#<event>#<due>``, one per event
occurrence ever claimed, keyed by (enrollment, event, due time).

Claiming an event puts its record with the condition that it does not exist yet, in the
same transaction that removes the schedule item: that condition is what makes delivery
exactly once, whichever path (the sweeper, the TTL stream consumer, a lifecycle step)
claims first. The record then tracks the handler: PENDING (in the due-time index at its
next attempt, so the sweeper retries it) until the handler succeeds (DELIVERED) or the
enrollment is canceled first (CANCELED).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import TYPE_CHECKING, Any

from enrollkit.layout import due as due_index
from enrollkit.layout.schedule import PREFIX as SCHEDULE_PREFIX
from enrollkit.layout.schedule import Recipient, ScheduledEvent
from enrollkit.layout.table import CREATE_DATE, PARTITION_KEY, attr, item_absent, key
from enrollkit.models import KeyPair, LifecycleEvent
from enrollkit.timing import iso

if TYPE_CHECKING:
    from boto3.dynamodb.conditions import ConditionBase

PREFIX = "deliveries#"
EVENT = "event"
DUE = "due"
STATUS = "status"
ATTEMPTS = "attempts"
LAST_ERROR = "last_error"
CLAIMED_BY = "claimed_by"
IDEMPOTENCY_KEY = "idempotency_key"
DELIVERED_DATE = "delivered_date"
UPDATE_DATE = "update_date"
# Keys are derived from (enrollment, event, due): both paths compute the same one.
_IDEMPOTENCY_NAMESPACE = uuid.UUID("7d1f2d0e-4a52-5b8e-9a53-6c1f0e3b8a10")
MAX_ERROR_CHARACTERS = 200


class DeliveryStatus(str, Enum):
    PENDING = "PENDING"
    DELIVERED = "DELIVERED"
    CANCELED = "CANCELED"


def event_name(event: LifecycleEvent) -> str:
    """``course_expired`` for ``schedules#course_expired``."""
    return event.value.removeprefix(SCHEDULE_PREFIX)


def delivery_key(enrollment_id: str, event: LifecycleEvent, due: datetime) -> KeyPair:
    return key(enrollment_id, f"{PREFIX}{event_name(event)}#{due_index.due_at(due)}")


def is_delivery(sk: str) -> bool:
    return sk.startswith(PREFIX)


def idempotency_key(enrollment_id: str, event: LifecycleEvent, due: datetime) -> str:
    """The same for every attempt of one occurrence, on every path: a UUID (36 characters,
    as most providers' idempotency keys allow) derived from (enrollment, event, due)."""
    name = f"{enrollment_id}\n{event.value}\n{due_index.due_at(due)}"
    return str(uuid.uuid5(_IDEMPOTENCY_NAMESPACE, name))


def claimed_record(
    scheduled: ScheduledEvent,
    *,
    claimed_by: str,
    now: datetime,
    next_attempt: datetime | None,
) -> dict[str, Any]:
    """The record a claim puts. ``next_attempt`` ``None``: there is no handler, the claim
    is the whole delivery (DELIVERED); otherwise PENDING, in the due-time index at
    ``next_attempt`` (a lease while the claimer runs the handler, or ``now`` for a claim
    whose handler the next sweep runs)."""
    item: dict[str, Any] = {
        **delivery_key(scheduled.enrollment_id, scheduled.event, scheduled.due).as_key(),
        EVENT: scheduled.event.value,
        DUE: due_index.due_at(scheduled.due),
        **scheduled.recipient.attributes(),
        IDEMPOTENCY_KEY: idempotency_key(scheduled.enrollment_id, scheduled.event, scheduled.due),
        CLAIMED_BY: claimed_by,
        CREATE_DATE: iso(now),
        ATTEMPTS: 0,
    }
    if next_attempt is None:
        item[STATUS] = DeliveryStatus.DELIVERED.value
        item[DELIVERED_DATE] = iso(now)
    else:
        item[STATUS] = DeliveryStatus.PENDING.value
        item.update(due_index.index_attributes(scheduled.enrollment_id, next_attempt))
    return item


@dataclass(frozen=True)
class Delivery:
    """A delivery record, as stored."""

    scheduled: ScheduledEvent
    status: DeliveryStatus
    attempts: int
    next_attempt: str | None
    """The record's ``due_at`` while PENDING (the index sort key it was seen at)."""

    @property
    def key(self) -> KeyPair:
        s = self.scheduled
        return delivery_key(s.enrollment_id, s.event, s.due)


def parse_delivery(item: Mapping[str, Any]) -> Delivery | None:
    """A delivery record; ``None`` for an item that is not one enrollkit can read."""
    try:
        event = LifecycleEvent(str(item.get(EVENT)))
        due = due_index.parse_due_at(str(item.get(DUE)))
        status = DeliveryStatus(str(item.get(STATUS)))
    except ValueError:
        return None
    attempts = item.get(ATTEMPTS, 0)
    next_attempt = item.get(due_index.DUE_AT)
    return Delivery(
        scheduled=ScheduledEvent(
            enrollment_id=str(item[PARTITION_KEY]),
            event=event,
            due=due,
            recipient=Recipient.from_item(item),
        ),
        status=status,
        attempts=attempts if isinstance(attempts, int) else 0,
        next_attempt=next_attempt if isinstance(next_attempt, str) else None,
    )


# -- changes ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class RecordChange:
    """An update of a delivery record: what it sets, what it removes."""

    set: Mapping[str, Any]
    remove: tuple[str, ...] = ()


def leased(enrollment_id: str, until: datetime, now: datetime) -> RecordChange:
    """A runner takes the record until ``until``: no other runner picks it up before."""
    return RecordChange(
        set={**due_index.index_attributes(enrollment_id, until), UPDATE_DATE: iso(now)}
    )


def delivered(attempts: int, now: datetime) -> RecordChange:
    """The handler succeeded: out of the index for good."""
    return RecordChange(
        set={
            STATUS: DeliveryStatus.DELIVERED.value,
            ATTEMPTS: attempts,
            DELIVERED_DATE: iso(now),
            UPDATE_DATE: iso(now),
        },
        remove=(due_index.SHARD, due_index.DUE_AT),
    )


def failed(
    enrollment_id: str, attempts: int, error: BaseException, retry_at: datetime, now: datetime
) -> RecordChange:
    """The handler failed: retried at ``retry_at``. The error is kept short (its type and
    the start of its message)."""
    text = f"{type(error).__name__}: {error}"
    return RecordChange(
        set={
            ATTEMPTS: attempts,
            LAST_ERROR: text[:MAX_ERROR_CHARACTERS],
            UPDATE_DATE: iso(now),
            **due_index.index_attributes(enrollment_id, retry_at),
        }
    )


def canceled(now: datetime) -> RecordChange:
    """The enrollment was canceled before the handler succeeded: never called again."""
    return RecordChange(
        set={STATUS: DeliveryStatus.CANCELED.value, UPDATE_DATE: iso(now)},
        remove=(due_index.SHARD, due_index.DUE_AT),
    )


# -- conditions ------------------------------------------------------------------------------


def is_new() -> ConditionBase:
    return item_absent()


def pending_at(next_attempt: str) -> ConditionBase:
    """Still PENDING, at the index position it was seen at (nobody leased it since)."""
    return attr(STATUS).eq(DeliveryStatus.PENDING.value) & attr(due_index.DUE_AT).eq(next_attempt)
