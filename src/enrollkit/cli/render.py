"""Plain-text output: tables, instants, durations and attribute values, as the commands
print them."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any


def render_table(headers: Sequence[str], rows: Iterable[Sequence[object]], indent: int = 2) -> str:
    """A plain-text table: left-aligned columns, a rule under the header."""
    cells = [[str(cell) for cell in row] for row in rows]
    widths = [len(header) for header in headers]
    for row in cells:
        for index, cell in enumerate(row):
            widths[index] = max(widths[index], len(cell))
    pad = " " * indent

    def line(values: Sequence[str]) -> str:
        return (pad + "  ".join(v.ljust(w) for v, w in zip(values, widths, strict=False))).rstrip()

    rule = [("-" * width) for width in widths]
    return "\n".join([line(list(headers)), line(rule), *(line(row) for row in cells)])


def format_when(instant: datetime) -> str:
    """An instant, to the minute, in UTC: '2026-01-08 09:00 UTC'."""
    return instant.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def from_epoch(seconds: int) -> datetime:
    """The UTC instant of a DynamoDB TTL (seconds since the epoch)."""
    return datetime.fromtimestamp(seconds, tz=timezone.utc)


def format_ttl(value: Any, now: datetime) -> str:
    """A ``ttl`` attribute: its instant and how far from ``now`` it is.

    A TTL is epoch seconds; one written in milliseconds (or any number past year 9999) is
    no instant a datetime can hold: it is shown as such, with what it would mean in
    milliseconds, rather than failing the whole listing.
    """
    if not isinstance(value, int) or isinstance(value, bool):
        return format_value(value)
    due = _instant_or_none(value)
    if due is None:
        side = "after year 9999" if value > 0 else "before year 1"
        as_millis = _instant_or_none(value // 1000)
        guess = f"; as milliseconds it would be {format_when(as_millis)}" if as_millis else ""
        return f"{value} (not epoch seconds: {side}, so DynamoDB never expires it{guess})"
    if due <= now:
        state = f"expired {format_span(now - due)} ago, awaiting DynamoDB's deletion"
    else:
        state = f"in {format_span(due - now)}"
    return f"{value} = {format_when(due)} ({state})"


def _instant_or_none(seconds: int) -> datetime | None:
    try:
        return from_epoch(seconds)
    except (OverflowError, ValueError, OSError):  # outside what a datetime holds
        return None


def format_span(delta: timedelta) -> str:
    """A duration in words: '3 days', '2 h 5 min', 'now'."""
    seconds = int(delta.total_seconds())
    sign, seconds = ("-" if seconds < 0 else ""), abs(seconds)
    days, rest = divmod(seconds, 86_400)
    if days and rest == 0:
        return f"{sign}{days} day{'s' if days != 1 else ''}"
    if days:
        return f"{sign}{days} d {rest // 3600} h"
    hours, minutes = divmod(rest // 60, 60)
    if hours:
        return f"{sign}{hours} h {minutes} min"
    return f"{sign}{minutes} min" if minutes else "now"


def format_value(value: Any) -> str:
    """An attribute value, readable: maps as {k: v} by key (DynamoDB keeps no map order),
    sets sorted, numbers as written."""
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{k}: {format_value(value[k])}" for k in sorted(value)) + "}"
    if isinstance(value, (set, frozenset)):
        return "{" + ", ".join(sorted(format_value(v) for v in value)) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(format_value(v) for v in value) + "]"
    if isinstance(value, Decimal):
        return format(value, "f")
    if value is None:
        return "null"
    return str(value)


def short_slot(slot_id: str) -> str:
    """A seat's slot id, shortened for a table column."""
    return slot_id[:8]
