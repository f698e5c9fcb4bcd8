"""``enrollkit show``: one enrollment's item collection, with the lock item and the seat it
points to, each item as a readable block."""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from enrollkit.cli.connection import connect, require_tables
from enrollkit.cli.errors import EXIT_OK, CommandError
from enrollkit.cli.render import format_span, format_value, format_when, from_epoch
from enrollkit.errors import shorten
from enrollkit.models import KeyPair, validate_enrollment_id

if TYPE_CHECKING:
    from enrollkit.persistence.base import BasePersistence

# What an item is, by its sort key (schedules#... are told apart by their prefix).
_DESCRIPTIONS = {
    "0": "the enrollment",
    "metadata#tenant": "its tenant",
    "metadata#lock": "the lock it holds",
    "metadata#deduplication_window": "its de-duplication window",
    "cancel_policy": "cancel allowed until ttl",
    "parent_vacancy": "the seat it took",
    "canceled_date": "who canceled it",
}


def _describe(sk: str) -> str:
    if sk in _DESCRIPTIONS:
        return _DESCRIPTIONS[sk]
    if sk.startswith("schedules#"):
        return "lifecycle event, due at ttl"
    return ""


def _ttl_text(value: Any, now: datetime) -> str:
    if not isinstance(value, int) or isinstance(value, bool):
        return format_value(value)
    due = from_epoch(value)
    if due <= now:
        state = f"expired {format_span(now - due)} ago, awaiting DynamoDB's deletion"
    else:
        state = f"in {format_span(due - now)}"
    return f"{value} = {format_when(due)} ({state})"


def format_items(title: str, items: Sequence[Mapping[str, Any]], now: datetime) -> str:
    """Items as readable blocks: the sort key and what it is, then one attribute a line."""
    lines = [title]
    for item in items:
        sk = str(item.get("sk", ""))
        description = _describe(sk)
        lines.append("")
        lines.append(f"  {item.get('id')} / {sk}" + (f"  -- {description}" if description else ""))
        names = [name for name in item if name not in ("id", "sk")]
        width = max((len(name) for name in names), default=0)
        for name in names:
            text = _ttl_text(item[name], now) if name == "ttl" else format_value(item[name])
            lines.append(f"    {name.ljust(width)}  {text}")
    return "\n".join(lines)


def show_enrollment(
    store: BasePersistence, enrollment_id: str, *, now: datetime | None = None
) -> str:
    """The item collection of one enrollment, and the items it points to, as text.

    Raises :class:`CommandError` when there is no such enrollment.
    """
    _check_id(enrollment_id)
    now = now or datetime.now(timezone.utc)
    items = store.query(enrollment_id)
    if not any(item.get("sk") == "0" for item in items):
        raise CommandError(f"no enrollment {enrollment_id!r} in table {store.table_name!r}")
    sections = [
        format_items(
            f"Enrollment {enrollment_id}: {len(items)} items in table {store.table_name!r}",
            items,
            now,
        )
    ]
    related: list[Mapping[str, Any]] = []
    by_sk = {str(item["sk"]): item for item in items}
    lock = by_sk.get("metadata#lock")
    if lock is not None:
        found = store.get_item(KeyPair(pk="lock", sk=str(lock["hash"])))
        if found is not None:
            related.append(found)
    parent = by_sk.get("parent_vacancy")
    orders: list[Mapping[str, Any]] = []
    if parent is not None:
        order_id = str(parent["order_id"])
        for record in store.query(
            order_id, sk_prefix="generated_items#", table_name=store.order_table_name
        ):
            if record.get("enrollment_id") == enrollment_id:
                orders.append(record)
    if related:
        sections.append(format_items("Its lock item (partition 'lock'):", related, now))
    if orders:
        sections.append(
            format_items(f"Its seat in the order (table {store.order_table_name!r}):", orders, now)
        )
    return "\n\n".join(sections)


def _check_id(enrollment_id: str) -> None:
    try:
        validate_enrollment_id(enrollment_id)
    except ValueError as error:
        # The reason first, and only the start of what was typed (it may be a whole page).
        raise CommandError(
            f"not an enrollment id: {error} (got {shorten(enrollment_id)})"
        ) from None


def cmd_show(args: argparse.Namespace) -> int:
    _check_id(args.enrollment_id)  # before connecting: a typo needs no network
    store = connect(args)
    require_tables(store, args)
    print(show_enrollment(store, args.enrollment_id))
    return EXIT_OK
