"""Backfill: bring items written before the indexes (by an earlier enrollkit, or by the
original code) into them, by writing the index attributes they lack: root items into the
listing indexes, schedule items into the lifecycle's due-time index (so the sweeper finds
them, not only the TTL stream).

A maintenance tool, and the only part of enrollkit that scans: one page of the table at a
time, resumable from a checkpoint, idempotent. An item that already has the right
attributes is not written; each write is conditioned on the attributes it was computed
from, so a concurrent status change is never overwritten with stale keys.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from enrollkit.errors import InvalidInput, TransactionCanceled, UnreadableItem
from enrollkit.layout import due as due_index
from enrollkit.layout import enrollment as enrollment_layout
from enrollkit.layout import schedule
from enrollkit.layout.table import (
    PARTITION_KEY,
    SORT_KEY,
    TTL_ATTRIBUTE,
    attr,
    key_of,
    read_instant,
)
from enrollkit.persistence.base import PersistenceLayer

if TYPE_CHECKING:
    from boto3.dynamodb.conditions import ConditionBase

logger = logging.getLogger(__name__)

DEFAULT_PAGE_SIZE = 100
# A root item that changes between our read and our write is read again this many times.
_ATTEMPTS = 3


@dataclass(frozen=True)
class BackfillProgress:
    """Where a backfill stands after a page (counts of this run so far)."""

    scanned: int = 0
    """Items read (of every kind: only enrollments' root items are candidates)."""
    updated: int = 0
    """Root items given the index attributes they lacked."""
    up_to_date: int = 0
    """Root items that had them already: not written."""
    unreadable: tuple[str, ...] = field(default_factory=tuple)
    """Why each item of this page that could not be indexed could not (left as it is).
    Only this page's: a table with many of them must not make each page cost more."""
    unreadable_total: int = 0
    """Items that could not be indexed, in this run so far."""
    schedules_indexed: int = 0
    """Schedule items given the due-time index attributes they lacked."""
    checkpoint: str | None = None
    """Pass it back to resume after this page; ``None`` once the whole table was read."""


def backfill_indexes(
    *,
    persistence_layer: PersistenceLayer,
    checkpoint: str | None = None,
    page_size: int = DEFAULT_PAGE_SIZE,
) -> Iterator[BackfillProgress]:
    """Write the listing index attributes onto every enrollment root item that lacks them,
    one Scan page at a time; yields the progress after each page.

    Args:
        persistence_layer: The tables to backfill.
        checkpoint: A ``checkpoint`` of an earlier run's progress, to resume after it.
        page_size: Items per Scan page.

    Raises:
        InvalidInput: A checkpoint this function did not make, a bad page size.
    """
    if isinstance(page_size, bool) or not isinstance(page_size, int) or page_size < 1:
        raise InvalidInput(f"page_size must be a positive int, not {page_size!r}")
    start_after = _decode_checkpoint(checkpoint) if checkpoint is not None else None
    progress = BackfillProgress()
    while True:
        page = persistence_layer.scan_page(limit=page_size, start_after=start_after)
        updated, up_to_date, schedules_indexed, unreadable = 0, 0, 0, []
        for item in page.items:
            if schedule.is_schedule(str(item.get(SORT_KEY))):
                try:
                    schedules_indexed += _backfill_schedule(persistence_layer, item)
                except UnreadableItem as error:
                    unreadable.append(str(error))
                continue
            if item.get(SORT_KEY) != enrollment_layout.ROOT_SK:
                continue
            try:
                if _backfill_root(persistence_layer, item):
                    updated += 1
                else:
                    up_to_date += 1
            except UnreadableItem as error:
                unreadable.append(str(error))
        start_after = page.last_key
        progress = BackfillProgress(
            scanned=progress.scanned + len(page.items),
            updated=progress.updated + updated,
            up_to_date=progress.up_to_date + up_to_date,
            unreadable=tuple(unreadable),
            unreadable_total=progress.unreadable_total + len(unreadable),
            schedules_indexed=progress.schedules_indexed + schedules_indexed,
            checkpoint=_encode_checkpoint(start_after) if start_after is not None else None,
        )
        yield progress
        if start_after is None:
            return


def _backfill_root(persistence_layer: PersistenceLayer, root: Mapping[str, Any]) -> bool:
    """Write what the root item lacks; whether it was written."""
    for _ in range(_ATTEMPTS):
        wanted = enrollment_layout.listing_attributes_of(root)
        missing = {name: value for name, value in wanted.items() if root.get(name) != value}
        if not missing:
            return False
        try:
            with persistence_layer.transact_writer() as transaction:
                transaction.update(
                    key=key_of(root),
                    set=missing,
                    cond=_unchanged(root),
                    exc_cls=_RootChanged,
                )
        except _RootChanged:
            current = persistence_layer.get_item(key_of(root))
            if current is None:  # deleted meanwhile: nothing to index
                return False
            root = current
            continue
        logger.debug("backfilled %s", root[PARTITION_KEY])
        return True
    raise UnreadableItem(
        f"item {root.get(PARTITION_KEY)!r}/{root.get(SORT_KEY)!r} kept changing while it "
        "was backfilled: run the backfill again"
    )


def _backfill_schedule(persistence_layer: PersistenceLayer, item: Mapping[str, Any]) -> bool:
    """Put a schedule item that lacks them into the due-time index, at its due time (its
    ``ttl``), on condition the ttl is still the one read; whether it was written. An item
    moved or removed meanwhile was written by enrollkit, with the attributes."""
    due = read_instant(item, TTL_ATTRIBUTE)
    wanted = due_index.index_attributes(str(item[PARTITION_KEY]), due)
    missing = {name: value for name, value in wanted.items() if item.get(name) != value}
    if not missing:
        return False
    try:
        with persistence_layer.transact_writer() as transaction:
            transaction.update(
                key=key_of(item),
                set=missing,
                cond=attr(TTL_ATTRIBUTE).eq(item[TTL_ATTRIBUTE]),
                exc_cls=_RootChanged,
            )
    except _RootChanged:
        return False
    return True


class _RootChanged(TransactionCanceled):
    """The root item changed since it was read: its index attributes must be recomputed."""


def _unchanged(root: Mapping[str, Any]) -> ConditionBase:
    """The attributes the index attributes derive from still have the values read (the
    item was readable: listing_attributes_of() read every one of them)."""
    condition: ConditionBase = attr(SORT_KEY).exists()
    for path in enrollment_layout.LISTING_SOURCES:
        value: Any = root
        for name in path.split("."):
            value = value[name]
        condition = condition & attr(path).eq(value)
    return condition


def _encode_checkpoint(last_key: Mapping[str, Any]) -> str:
    payload = json.dumps([str(last_key[PARTITION_KEY]), str(last_key[SORT_KEY])])
    return base64.urlsafe_b64encode(payload.encode()).decode().rstrip("=")


def _decode_checkpoint(checkpoint: Any) -> dict[str, str]:
    refused = InvalidInput("not a backfill checkpoint", field="checkpoint")
    if not isinstance(checkpoint, str) or not checkpoint or len(checkpoint) > 8192:
        raise refused
    try:
        payload = json.loads(base64.urlsafe_b64decode(checkpoint + "=" * (-len(checkpoint) % 4)))
    except (binascii.Error, ValueError):
        raise refused from None
    if (
        not isinstance(payload, list)
        or len(payload) != 2
        or not all(isinstance(part, str) and part for part in payload)
    ):
        raise refused
    return {PARTITION_KEY: payload[0], SORT_KEY: payload[1]}
