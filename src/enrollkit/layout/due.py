"""The due-time index ``due``: every item the sweeper must look at, found by when.

Two kinds of item carry its key attributes (the index is sparse: nothing else is in it):

- a schedule item ``<enrollment>``/``schedules#<event>``, at its due time;
- a delivery record ``<enrollment>``/``deliveries#...`` whose handler has not succeeded yet,
  at the time of its next attempt (a lease while a handler runs, a backoff after it failed).

``due_shard`` (partition key) is ``<UTC day>#<shard>``: the day of that time and one of
:data:`SHARDS` shards chosen by the enrollment id, so the events due on one day, however
many, spread over ``SHARDS`` index partitions (writes of a bulk enrollment, which all fall
due at the same moment, go to every shard alike). ``due_at`` (sort key) is the time itself
as fixed-width ISO text (``2036-03-02T12:30:15Z``), which sorts as the instants do. One
Query per shard and day reads what is due, oldest first: ``due_at <= now``.

The sweeper's checkpoint ``lifecycle#sweeper``/``checkpoint`` says from which day on it
must look; the partition key has a ``#``, which no enrollment id has.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator, Mapping
from datetime import date, datetime, timedelta, timezone
from typing import Any

from enrollkit.layout.table import CREATE_DATE, key
from enrollkit.models import KeyPair
from enrollkit.persistence.indexes import GlobalIndex
from enrollkit.timing import iso

INDEX_NAME = "due"
SHARD = "due_shard"
DUE_AT = "due_at"
SHARDS = 16
DUE_INDEX = GlobalIndex(name=INDEX_NAME, partition_key=SHARD, sort_key=DUE_AT)

CHECKPOINT_KEY = KeyPair(pk="lifecycle#sweeper", sk="checkpoint")
CHECKPOINT_DAY = "day"

_DUE_AT_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


def shard_of(enrollment_id: str) -> int:
    """The shard of an enrollment's index entries: stable across processes and versions
    (CRC-32 of the id, not Python's salted ``hash``)."""
    return zlib.crc32(enrollment_id.encode()) % SHARDS


def due_at(instant: datetime) -> str:
    """``instant`` as the index sort key: whole seconds of UTC, as the TTL counts them.
    (``"%04d-..." %`` is strftime's text for years 1970..9000, timing's range, at a third
    of strftime's cost and below isoformat()'s; an f-string's format specs cost more.)"""
    utc = instant if instant.tzinfo is timezone.utc else instant.astimezone(timezone.utc)
    return "%04d-%02d-%02dT%02d:%02d:%02dZ" % (  # noqa: UP031
        utc.year,
        utc.month,
        utc.day,
        utc.hour,
        utc.minute,
        utc.second,
    )


def parse_due_at(value: str) -> datetime:
    return datetime.strptime(value, _DUE_AT_FORMAT).replace(tzinfo=timezone.utc)


def day_of(instant: datetime) -> date:
    return instant.astimezone(timezone.utc).date()


def partition(day: date, shard: int) -> str:
    return _partition(day.isoformat(), shard)


def _partition(day: str, shard: int) -> str:
    return day + _shard_suffix(shard)


def _shard_suffix(shard: int) -> str:
    return f"#{shard:02d}"


class EnrollmentShard:
    """The due-time index entries of one enrollment's items: their shard, found once for
    all of them (enroll() schedules three events)."""

    __slots__ = ("_suffix",)

    def __init__(self, enrollment_id: str) -> None:
        self._suffix = _shard_suffix(shard_of(enrollment_id))

    def index_attributes(self, instant: datetime) -> dict[str, str]:
        """The two attributes that put an item into the index at ``instant`` (whole
        seconds: its microseconds are dropped, as the TTL drops them)."""
        shard, sort_key = self.index_values(instant)
        return {SHARD: shard, DUE_AT: sort_key}

    def index_values(self, instant: datetime) -> tuple[str, str]:
        """The values of :meth:`index_attributes`: partition key, sort key."""
        sort_key = due_at(instant)
        # The UTC day is the sort key's first ten characters (its isoformat()).
        return sort_key[:10] + self._suffix, sort_key


def index_attributes(enrollment_id: str, instant: datetime) -> dict[str, str]:
    """The two attributes that put an item of ``enrollment_id`` into the index at
    ``instant`` (see :meth:`EnrollmentShard.index_attributes`)."""
    return EnrollmentShard(enrollment_id).index_attributes(instant)


def days(first: date, last: date) -> Iterator[date]:
    """Every day from ``first`` to ``last``, both included."""
    day = first
    while day <= last:
        yield day
        day += timedelta(days=1)


# -- the sweeper's checkpoint ------------------------------------------------------------


def checkpoint_item(day: date, now: datetime) -> dict[str, Any]:
    return {**CHECKPOINT_KEY.as_key(), CHECKPOINT_DAY: day.isoformat(), CREATE_DATE: iso(now)}


def checkpoint_day(item: Mapping[str, Any] | None) -> date | None:
    """The first day the sweeper must still look at; ``None`` before its first run (or for
    an item it cannot read, which the next run rewrites)."""
    if item is None:
        return None
    try:
        return date.fromisoformat(str(item.get(CHECKPOINT_DAY)))
    except ValueError:
        return None


def checkpoint_key() -> KeyPair:
    return key(CHECKPOINT_KEY.pk, CHECKPOINT_KEY.sk)
