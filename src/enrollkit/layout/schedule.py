"""The lifecycle schedule: one ``<enrollment id>``/``schedules#<event>`` item per event,
due at its ``ttl``. The item is also in the due-time index (:mod:`enrollkit.layout.due`)
at that time, which is how the sweeper finds it; DynamoDB's TTL deletes it some time after,
which is how the stream consumer finds it (whichever claims it first delivers it)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, NamedTuple

from enrollkit.layout import due as due_index
from enrollkit.layout.table import (
    CREATE_DATE,
    PARTITION_KEY,
    SORT_KEY,
    TTL_ATTRIBUTE,
    attr,
    check_key_bytes,
    item_exists,
    kept_conditions,
    key,
    read_instant,
)
from enrollkit.models import Enrollment, KeyPair, LifecycleEvent
from enrollkit.timing import iso, ttl

if TYPE_CHECKING:
    from boto3.dynamodb.conditions import ConditionBase

PREFIX = "schedules#"
NAME = "name"
EMAIL = "email"
COURSE = "course"


def schedule_key(enrollment_id: str, event: LifecycleEvent) -> KeyPair:
    return key(enrollment_id, event_sort_key(event))


def event_sort_key(event: LifecycleEvent) -> str:
    """The sort key of an event's schedule item (its partition is the enrollment's)."""
    return event.value


def is_schedule(sk: str) -> bool:
    return sk.startswith(PREFIX)


_EVENT_SORT_KEYS = frozenset(event_sort_key(event) for event in LifecycleEvent)
_SORTED_EVENT_SORT_KEYS = tuple(sorted(_EVENT_SORT_KEYS))


def every_event_key(enrollment_id: str, read_sort_keys: Iterable[str]) -> list[KeyPair]:
    """The keys of every event item an enrollment may have, in sort key order: each
    LifecycleEvent's, and any other schedule item among ``read_sort_keys`` (one of an
    event this version does not know)."""
    others = [sk for sk in read_sort_keys if is_schedule(sk) and sk not in _EVENT_SORT_KEYS]
    sort_keys = sorted({*_EVENT_SORT_KEYS, *others}) if others else _SORTED_EVENT_SORT_KEYS
    return [key(enrollment_id, sk) for sk in sort_keys]


class Recipient(NamedTuple):
    """Whom an event is about, as the schedule item carries it (so a reminder can be sent
    without another read): the user's name and email, the course's name. (A named tuple:
    built at two thirds of a frozen dataclass's cost.)"""

    name: str
    email: str
    course: str

    @classmethod
    def of(cls, enrollment: Enrollment) -> Recipient:
        return cls(enrollment.user.name, enrollment.user.email, enrollment.course.name)

    @classmethod
    def from_root(cls, root: Mapping[str, Any]) -> Recipient:
        user, course = _mapping(root.get("user")), _mapping(root.get("course"))
        return cls(
            str(user.get("name", "")), str(user.get("email", "")), str(course.get("name", ""))
        )

    @classmethod
    def from_item(cls, item: Mapping[str, Any]) -> Recipient:
        return cls(str(item.get(NAME, "")), str(item.get(EMAIL, "")), str(item.get(COURSE, "")))

    def attributes(self) -> dict[str, str]:
        return {NAME: self.name, EMAIL: self.email, COURSE: self.course}


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def scheduled_item(
    enrollment_id: str,
    recipient: Recipient,
    event: LifecycleEvent,
    due: datetime,
    now: datetime,
) -> dict[str, Any]:
    """The item of one scheduled event: whom to remind (``recipient``), about what, and
    when (``ttl``, and the due-time index's attributes)."""
    (item,) = scheduled_items(enrollment_id, recipient, {event: due}, now)
    return item


def scheduled_items(
    enrollment_id: str,
    recipient: Recipient,
    schedule: Mapping[LifecycleEvent, datetime],
    now: datetime,
) -> list[dict[str, Any]]:
    """The items of an enrollment's scheduled events (``schedule``: each event and when it
    is due), each as :func:`scheduled_item` describes it. What they share (whom to remind,
    the creation date, the due-time index shard) is built once: enroll() schedules three."""
    name, email, course = recipient
    created = iso(now)
    shard = due_index.EnrollmentShard(enrollment_id)
    items = []
    for event, due in schedule.items():
        sort_key = event_sort_key(event)
        check_key_bytes(enrollment_id, sort_key)  # (schedule_key's check, without a KeyPair)
        due_shard, due_at = shard.index_values(due)
        # Written out, not merged from parts: enroll() builds three per call.
        items.append(
            {
                PARTITION_KEY: enrollment_id,
                SORT_KEY: sort_key,
                NAME: name,
                EMAIL: email,
                COURSE: course,
                CREATE_DATE: created,
                TTL_ATTRIBUTE: ttl(due),
                due_index.SHARD: due_shard,
                due_index.DUE_AT: due_at,
            }
        )
    return items


def due_changes(enrollment_id: str, due: datetime) -> dict[str, Any]:
    """What moving an existing schedule item to ``due`` sets."""
    return {
        TTL_ATTRIBUTE: ttl(due),
        **due_index.index_attributes(enrollment_id, due),
    }


@dataclass(frozen=True)
class ScheduledEvent:
    """One event of an enrollment's schedule, as stored."""

    enrollment_id: str
    event: LifecycleEvent
    due: datetime
    recipient: Recipient

    @property
    def email(self) -> str:
        return self.recipient.email

    @property
    def due_ttl(self) -> int:
        return ttl(self.due)


def parse_schedule_item(item: Mapping[str, Any]) -> ScheduledEvent | None:
    """The event a schedule item stands for; ``None`` for a sort key enrollkit does not
    schedule (a foreign writer's item under the prefix)."""
    try:
        event = LifecycleEvent(str(item.get(SORT_KEY)))
    except ValueError:
        return None
    due = read_instant(item, TTL_ATTRIBUTE)
    return ScheduledEvent(
        enrollment_id=str(item.get(PARTITION_KEY)),
        event=event,
        due=due,
        recipient=Recipient.from_item(item),
    )


# -- conditions ------------------------------------------------------------------------------


def still_due_at(due_ttl: int) -> ConditionBase:
    """The item is still the one seen: present, due at the same time (not moved later by an
    access, not claimed by another path)."""
    return item_exists() & attr(TTL_ATTRIBUTE).eq(due_ttl)


def not_due_by(now: datetime) -> ConditionBase:
    """Absent, or due strictly after ``now``: removing it loses no event that happened."""
    return _not_due_by_at(ttl(now))


@kept_conditions(maxsize=64)
def _not_due_by_at(cutoff: int) -> ConditionBase:
    # Kept per second (see table.kept_conditions): the cancels of one second share it.
    return attr(SORT_KEY).not_exists() | attr(TTL_ATTRIBUTE).gt(cutoff)


def due_before(instant: datetime) -> ConditionBase:
    """Due strictly before ``instant`` (in whole seconds, as the ttl)."""
    return attr(TTL_ATTRIBUTE).lt(ttl(instant))


def pending_after(now: datetime) -> ConditionBase:
    """Present and due strictly after ``now``."""
    return item_exists() & attr(TTL_ATTRIBUTE).gt(ttl(now))
