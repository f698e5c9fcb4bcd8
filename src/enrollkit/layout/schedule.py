"""The lifecycle schedule: one ``<enrollment id>``/``schedules#<event>`` item per event,
due at its ``ttl`` (a TTL stream consumer acts when DynamoDB deletes it)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from enrollkit.layout.table import CREATE_DATE, SORT_KEY, TTL_ATTRIBUTE, key, read_instant
from enrollkit.models import Enrollment, KeyPair, LifecycleEvent
from enrollkit.timing import iso, ttl

PREFIX = "schedules#"
EMAIL = "email"


def schedule_key(enrollment_id: str, event: LifecycleEvent) -> KeyPair:
    return key(enrollment_id, event.value)


def is_schedule(sk: str) -> bool:
    return sk.startswith(PREFIX)


def schedule_item(
    enrollment: Enrollment, event: LifecycleEvent, due: datetime, now: datetime
) -> dict[str, Any]:
    """The item of one scheduled event: whom to remind, about what, and when (``ttl``)."""
    return {
        **schedule_key(enrollment.id, event).as_key(),
        "name": enrollment.user.name,
        EMAIL: enrollment.user.email,
        "course": enrollment.course.name,
        CREATE_DATE: iso(now),
        TTL_ATTRIBUTE: ttl(due),
    }


@dataclass(frozen=True)
class ScheduledEvent:
    """One event of an enrollment's schedule, as stored."""

    event: LifecycleEvent
    due: datetime
    email: str


def parse_schedule_item(item: Mapping[str, Any]) -> ScheduledEvent | None:
    """The event a schedule item stands for; ``None`` for a sort key enrollkit does not
    schedule (a foreign writer's item under the prefix)."""
    try:
        event = LifecycleEvent(str(item.get(SORT_KEY)))
    except ValueError:
        return None
    due = read_instant(item, TTL_ATTRIBUTE)
    return ScheduledEvent(event=event, due=due, email=str(item.get(EMAIL, "")))
