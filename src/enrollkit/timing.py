"""Time arithmetic of the lifecycle schedule, the lock and the cancel policy (pure).

Every instant here is timezone-aware; TTLs are epoch seconds, as DynamoDB's TTL reads them.
"""

from __future__ import annotations

import functools
from datetime import datetime, timedelta, timezone

from enrollkit.errors import InvalidInput
from enrollkit.models import LifecycleEvent

DAY = timedelta(days=1)  # (n * DAY costs half of timedelta(days=n))
NO_ACCESS_REMINDER = timedelta(days=3)
ACCESS_PERIOD_REMINDER_LEAD = timedelta(days=30)
NO_ACTIVITY = timedelta(days=7)
CERT_EXPIRATION_REMINDER_LEAD = timedelta(days=30)

# The instants a ``now`` may be: from the Unix epoch (a TTL is epoch seconds; DynamoDB's
# TTL ignores items more than five years in the past) to the year 9000, which leaves
# centuries for the date arithmetic on top (the longest access period is 100 years)
# before Python's datetime ends in 9999.
EARLIEST_NOW = datetime(1970, 1, 1, tzinfo=timezone.utc)
LATEST_NOW = datetime(9000, 1, 1, tzinfo=timezone.utc)


def utc_now() -> datetime:
    """The default for ``now=``: read only at the public edge, never inside logic."""
    return datetime.now(timezone.utc)


def require_aware(now: datetime | None) -> datetime:
    """``now`` as an aware UTC datetime; ``None`` means the current time.

    Aware datetimes in other zones are the same instant and are converted;
    naive ones are ambiguous and refused.
    """
    if now is None:
        return utc_now()
    # The common case, already UTC (every operation checks its ``now`` again): no
    # conversion, one range check.
    if type(now) is datetime and now.tzinfo is timezone.utc and EARLIEST_NOW <= now < LATEST_NOW:
        return now
    if not isinstance(now, datetime):
        raise InvalidInput(f"now must be a datetime, not {type(now).__name__}")
    if now.tzinfo is None or now.utcoffset() is None:
        raise InvalidInput("now must be timezone-aware (a naive datetime is ambiguous)")
    try:
        instant = now.astimezone(timezone.utc)
    except OverflowError:  # e.g. datetime.min at +05:00 is before year 1 in UTC
        instant = None
    if instant is None or not EARLIEST_NOW <= instant < LATEST_NOW:
        raise InvalidInput(
            f"now must be from {EARLIEST_NOW.isoformat()} and before "
            f"{LATEST_NOW.isoformat()}, not {now.isoformat()}"
        )
    return instant


_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_SECOND = timedelta(seconds=1)


def ttl(instant: datetime) -> int:
    """DynamoDB TTL value: whole epoch seconds (of an aware instant).

    Counted in integers, exact at any date (a float timestamp past 2^33 s, the year 2242,
    rounds x.999999 s up to the next second), and at one cost with or without
    microseconds (dropping them first with replace() cost four times as much)."""
    return (instant - _EPOCH) // _SECOND


def whole_seconds(instant: datetime) -> datetime:
    """``instant`` as its TTL sees it: whole epoch seconds, in UTC."""
    return datetime.fromtimestamp(ttl(instant), tz=timezone.utc)


@functools.lru_cache(maxsize=64)
def iso(instant: datetime) -> str:
    """Dates are stored as ISO-8601 strings in UTC, with the offset. (Cached: one enroll
    stamps its nine items with the same instant. Instants equal in UTC have one text.)"""
    return instant.astimezone(timezone.utc).isoformat()


def access_expiry(enrolled_at: datetime, access_period_days: int) -> datetime:
    return require_aware(enrolled_at) + access_period_days * DAY


def enrollment_schedule(
    enrolled_at: datetime, access_period_days: int
) -> dict[LifecycleEvent, datetime]:
    """The events enroll() schedules, with their due instants.

    A reminder is kept only when it is due strictly after ``enrolled_at`` and
    strictly before the expiry it warns about: a 20-day course gets no 30-day
    reminder, a 2-day course no 3-day reminder.

    Days are 24 hours of UTC, as the TTL clock counts them: an instant in a zone with
    daylight saving or a changed offset is converted first, so wall-clock jumps do not
    move the schedule.
    """
    enrolled_at = require_aware(enrolled_at)
    expiry = access_expiry(enrolled_at, access_period_days)
    schedule = {}
    for event, due in (
        (LifecycleEvent.REMINDER_NO_ACCESS_3_DAYS, enrolled_at + NO_ACCESS_REMINDER),
        (LifecycleEvent.ACCESS_PERIOD_REMINDER_30_DAYS, expiry - ACCESS_PERIOD_REMINDER_LEAD),
    ):
        if enrolled_at < due < expiry:
            schedule[event] = due
    schedule[LifecycleEvent.COURSE_EXPIRED] = expiry
    return schedule


def certificate_schedule(
    completed_at: datetime, expires_at: datetime
) -> dict[LifecycleEvent, datetime]:
    """The events an expiring certificate schedules: ``COURSE_ARCHIVED`` at its expiry, and
    the reminder 30 days before it under the same rule as enroll's reminders (strictly
    after ``completed_at``, strictly before the expiry)."""
    completed_at = require_aware(completed_at)
    expires_at = require_aware(expires_at)
    reminder = expires_at - CERT_EXPIRATION_REMINDER_LEAD
    schedule = {}
    if completed_at < reminder < expires_at:
        schedule[LifecycleEvent.CERT_EXPIRATION_REMINDER_30_DAYS] = reminder
    schedule[LifecycleEvent.COURSE_ARCHIVED] = expires_at
    return schedule


def no_activity_due(accessed_at: datetime) -> datetime:
    """When ``NO_ACTIVITY_7_DAYS`` falls due after an access."""
    return require_aware(accessed_at) + NO_ACTIVITY


def lock_expiry(enrolled_at: datetime, access_period_days: int, offset_days: int) -> datetime:
    """The de-duplication lock ends ``offset_days`` before access does."""
    if not 0 <= offset_days < access_period_days:
        raise InvalidInput(
            f"the de-duplication window's offset ({offset_days} days) must be at least 0 and "
            f"shorter than the course's access period ({access_period_days} days)"
        )
    return require_aware(enrolled_at) + (access_period_days - offset_days) * DAY


def cancel_deadline(enrolled_at: datetime, days: int) -> datetime:
    return require_aware(enrolled_at) + days * DAY
