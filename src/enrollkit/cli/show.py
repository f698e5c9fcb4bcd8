"""``enrollkit show``: one enrollment as enrollkit reads it (the typed record: status,
schedule, lock, seat, cancel policy), or with ``--items`` its raw item collection, with the
lock item and the seat it points to, each item as a readable block."""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from enrollkit.cli.connection import connect, require_tables
from enrollkit.cli.errors import EXIT_OK, CommandError
from enrollkit.cli.render import format_span, format_ttl, format_value, format_when, render_table
from enrollkit.errors import EnrollmentNotFound, UnreadableItem, shorten
from enrollkit.layout import enrollment as enrollment_layout
from enrollkit.layout import lock, schedule, seat
from enrollkit.layout.enrollment import EnrollmentItems
from enrollkit.layout.table import PARTITION_KEY, SORT_KEY, TTL_ATTRIBUTE
from enrollkit.models import validate_enrollment_id

if TYPE_CHECKING:
    from enrollkit.persistence.base import PersistenceLayer
    from enrollkit.records import EnrollmentRecord

# What an item is, by its sort key (schedules#... are told apart by their prefix).
_DESCRIPTIONS = {
    enrollment_layout.ROOT_SK: "the enrollment",
    enrollment_layout.TENANT_SK: "its tenant",
    lock.LOCK_METADATA_SK: "the lock it holds",
    lock.DEDUPLICATION_WINDOW_SK: "its de-duplication window",
    enrollment_layout.CANCEL_POLICY_SK: "cancel allowed until ttl",
    seat.PARENT_VACANCY_SK: "the seat it took",
    enrollment_layout.CANCELED_DATE_SK: "who canceled it",
}


def _describe(sk: str) -> str:
    if sk in _DESCRIPTIONS:
        return _DESCRIPTIONS[sk]
    if schedule.is_schedule(sk):
        return "lifecycle event, due at ttl"
    return ""


def format_items(title: str, items: Sequence[Mapping[str, Any]], now: datetime) -> str:
    """Items as readable blocks: the sort key and what it is, then one attribute a line."""
    lines = [title]
    for item in items:
        sk = str(item.get(SORT_KEY, ""))
        description = _describe(sk)
        lines.append("")
        lines.append(
            f"  {item.get(PARTITION_KEY)} / {sk}" + (f"  -- {description}" if description else "")
        )
        names = [name for name in item if name not in (PARTITION_KEY, SORT_KEY)]
        width = max((len(name) for name in names), default=0)
        for name in names:
            value = item[name]
            text = format_ttl(value, now) if name == TTL_ATTRIBUTE else format_value(value)
            lines.append(f"    {name.ljust(width)}  {text}")
    return "\n".join(lines)


def show_enrollment(
    store: PersistenceLayer, enrollment_id: str, *, now: datetime | None = None
) -> str:
    """One enrollment as :func:`enrollkit.get_enrollment` reads it, as text.

    Raises :class:`CommandError` when there is no such enrollment, or when one of its
    items cannot be read (``--items`` shows them raw).
    """
    from enrollkit.operations.reads import get_enrollment

    _check_id(enrollment_id)
    now = now or datetime.now(timezone.utc)
    try:
        record = get_enrollment(enrollment_id, persistence_layer=store, now=now)
    except EnrollmentNotFound:
        raise CommandError(
            f"no enrollment {enrollment_id!r} in table {store.table_name!r}"
        ) from None
    except UnreadableItem as error:
        raise CommandError(
            f"{error} (see the raw items: enrollkit show {enrollment_id} --items)"
        ) from None
    return format_record(record, now)


def format_record(record: EnrollmentRecord, now: datetime) -> str:
    """An enrollment record as readable text, instants in UTC and relative to ``now``."""

    def when(instant: datetime) -> str:
        side = (
            f"in {format_span(instant - now)}"
            if instant > now
            else (f"{format_span(now - instant)} ago")
        )
        return f"{format_when(instant)} ({side})"

    user, course = record.user, record.course
    facts = [
        ("tenant", record.tenant_id),
        ("user", f"{user.id} ({user.name} <{user.email}>)"),
        ("course", f"{course.id} ({course.name}, {course.access_period} days of access)"),
        ("status", record.status.value),
        ("progress", f"{record.progress}%"),
        ("created", when(record.created_at)),
        ("updated", when(record.updated_at) if record.updated_at else "-"),
    ]
    if record.lock is not None:
        window = record.deduplication_window
        facts.append(
            (
                "lock",
                f"{record.lock.hash[:16]}... held until {when(record.lock.until)}"
                + (f", {window} days before access ends" if window is not None else ""),
            )
        )
    else:
        facts.append(("lock", "none"))
    seat = record.seat
    facts.append(
        ("seat", f"order {seat.order_id}, slot {seat.slot_id} ({seat.org_id})" if seat else "none")
    )
    policy = record.cancel_policy
    if policy is None:
        facts.append(("cancel", "not allowed (no policy, or its window has passed)"))
    elif policy.deadline is None:
        facts.append(("cancel", "allowed, no time limit"))
    else:
        facts.append(("cancel", f"allowed until {when(policy.deadline)}"))
    if record.canceled is not None:
        author = record.canceled.author
        facts.append(("canceled", f"by {author.name} ({author.id}) {when(record.canceled.at)}"))
    width = max(len(name) for name, _ in facts)
    lines = [f"Enrollment {record.id}"]
    lines += [f"  {name.ljust(width)}  {value}" for name, value in facts]
    lines.append("")
    if record.schedule:
        lines.append("Schedule:")
        rows = [
            (event.value.removeprefix(schedule.PREFIX), when(due))
            for event, due in sorted(record.schedule.items(), key=lambda pair: pair[1])
        ]
        lines.append(render_table(("event", "due"), rows))
    else:
        lines.append("Schedule: nothing to come")
    return "\n".join(lines)


def show_items(store: PersistenceLayer, enrollment_id: str, *, now: datetime | None = None) -> str:
    """The item collection of one enrollment, and the items it points to, as text.

    Raises :class:`CommandError` when there is no such enrollment.
    """
    _check_id(enrollment_id)
    now = now or datetime.now(timezone.utc)
    items = store.query(enrollment_id)
    collection = EnrollmentItems.of(enrollment_id, items)
    if collection.root is None:
        raise CommandError(f"no enrollment {enrollment_id!r} in table {store.table_name!r}")
    sections = [
        format_items(
            f"Enrollment {enrollment_id}: {len(items)} items in table {store.table_name!r}",
            items,
            now,
        )
    ]
    related: list[Mapping[str, Any]] = []
    lock_metadata = collection.lock_metadata
    if lock_metadata is not None:
        found = store.get_item(lock.lock_item_key(lock.locked_hash(lock_metadata)))
        if found is not None:
            related.append(found)
    taken = collection.taken_seat
    orders: list[Mapping[str, Any]] = []
    if taken is not None:
        for record in store.query(
            taken.order_id, sk_prefix=seat.GENERATED_ITEMS_PREFIX, table_name=store.order_table_name
        ):
            if seat.record_holder(record) == enrollment_id:
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
    show = show_items if args.items else show_enrollment
    print(show(store, args.enrollment_id))
    return EXIT_OK
