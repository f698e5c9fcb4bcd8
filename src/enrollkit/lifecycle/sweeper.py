"""``deliver_due()``: the sweeper. Every event due by ``now``, found through the due-time
index (no Scan), oldest first, claimed and handed to its handler.

Each run reads the index day by day from the checkpoint (the first day that may still
hold something undelivered) to today, every shard of a day merged into one stream ordered
by due time. After the run the checkpoint moves to the oldest day it left something
unresolved in, and never past ``now - late_write_margin``: an item written late into a past
day (a writer whose clock lags, an index that lags its table) is still found. So a run
after an outage of any length reads every day since the last run and delivers everything
missed; a run every minute reads today's shards (and yesterday's, just after midnight).
"""

from __future__ import annotations

import heapq
import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from typing import Any

from enrollkit.errors import InvalidInput, TransactionCanceled, TransientFailure
from enrollkit.layout import delivery
from enrollkit.layout import due as due_index
from enrollkit.layout.schedule import is_schedule, parse_schedule_item
from enrollkit.layout.table import SORT_KEY
from enrollkit.lifecycle.claim import ClaimOutcome, ClaimPath, claim
from enrollkit.lifecycle.delivery import (
    DEFAULT_LEASE,
    DeliveryReport,
    Handler,
    Runner,
    require_handlers,
)
from enrollkit.models import LifecycleEvent
from enrollkit.persistence.base import PersistenceLayer
from enrollkit.persistence.indexes import SortKeyRange
from enrollkit.timing import require_aware, utc_now

logger = logging.getLogger(__name__)

PAGE_SIZE = 500


@dataclass(frozen=True)
class SweepSettings:
    """How the sweeper works; the defaults suit a run every minute.

    - ``lease``: how long a run holds an occurrence whose handler it runs; a run that dies
      mid-handler leaves it to a run after this (keep it above your longest handler).
    - ``late_write_margin``: how far back the checkpoint always stays behind ``now``.
    - ``first_run_lookback``: where the very first run (no checkpoint yet) starts.
    - ``max_events``: stop after claiming or retrying this many (``None``: no limit); the
      rest waits for the next run, and the checkpoint waits with it.
    """

    lease: timedelta = DEFAULT_LEASE
    late_write_margin: timedelta = timedelta(hours=1)
    first_run_lookback: timedelta = timedelta(days=30)
    max_events: int | None = None

    def __post_init__(self) -> None:
        for name in ("lease", "late_write_margin", "first_run_lookback"):
            value = getattr(self, name)
            if not isinstance(value, timedelta) or value <= timedelta(0):
                raise InvalidInput(f"{name} must be a positive timedelta, not {value!r}")
        if self.max_events is not None and (
            isinstance(self.max_events, bool)
            or not isinstance(self.max_events, int)
            or self.max_events < 1
        ):
            raise InvalidInput(f"max_events must be a positive int, not {self.max_events!r}")


def deliver_due(
    *,
    persistence_layer: PersistenceLayer,
    handlers: Mapping[LifecycleEvent, Handler],
    now: datetime | None = None,
    settings: SweepSettings | None = None,
) -> DeliveryReport:
    """Deliver every lifecycle event due at or before ``now``, oldest first.

    Each due event is claimed by one conditional transaction (its schedule item removed,
    its delivery recorded, its status change applied), then its handler, if
    ``handlers`` has one, is called with a :class:`~enrollkit.DueEvent`. A handler that
    raises is reported and retried by later runs (one minute later, doubling up to an
    hour) until it succeeds; never for an enrollment canceled meanwhile. Run it every
    minute (the CLI's ``enrollkit deliver --every 60``, or the template's scheduled
    function); after an outage, the next run delivers everything missed.

    Args:
        persistence_layer: Where the enrollments live.
        handlers: ``LifecycleEvent`` -> a callable taking one ``DueEvent``. An event
            without a handler still applies its status change.
        now: The sweep time, timezone-aware; default the current UTC time.
        settings: Lease, margins, a cap on events per run (:class:`SweepSettings`).

    Returns:
        A :class:`~enrollkit.DeliveryReport`: delivered, failed (with each failure),
        claimed, skipped, the index Queries made, the checkpoint.
    """
    now = require_aware(now) if now is not None else utc_now()
    handlers = require_handlers(handlers)
    settings = settings or SweepSettings()
    if not isinstance(settings, SweepSettings):
        raise InvalidInput(f"settings must be SweepSettings, not {type(settings).__name__}")
    report = DeliveryReport()
    runner = Runner(persistence_layer, handlers, now, settings.lease, report)
    stored = due_index.checkpoint_day(persistence_layer.get_item(due_index.checkpoint_key()))
    first = stored if stored is not None else due_index.day_of(now - settings.first_run_lookback)
    today = due_index.day_of(now)
    unresolved: date | None = None
    handled = 0
    for day in due_index.days(first, today):
        for item in _due_items(persistence_layer, day, now, report):
            if settings.max_events is not None and handled >= settings.max_events:
                unresolved = unresolved or day
                break
            handled += 1
            if not _handle(persistence_layer, item, runner, handlers, now, settings):
                unresolved = unresolved or day
        else:
            continue
        break  # max_events reached
    checkpoint = min(unresolved or today, due_index.day_of(now - settings.late_write_margin))
    if checkpoint != stored:
        with persistence_layer.transact_writer() as transaction:
            transaction.put(item=due_index.checkpoint_item(checkpoint, now))
    report.checkpoint = datetime.combine(checkpoint, time(0), tzinfo=timezone.utc)
    logger.info(
        "sweep at %s: %d delivered, %d failed, %d claimed, %d skipped, %d queries",
        now.isoformat(),
        report.delivered,
        report.failed,
        report.claimed,
        report.skipped,
        report.queries,
    )
    return report


def _due_items(
    persistence_layer: PersistenceLayer, day: date, now: datetime, report: DeliveryReport
) -> Iterator[dict[str, Any]]:
    """Every index entry of ``day`` due by ``now``, all shards merged, oldest first."""
    streams = [
        _shard_items(persistence_layer, due_index.partition(day, shard), now, report)
        for shard in range(due_index.SHARDS)
    ]
    return heapq.merge(*streams, key=lambda item: str(item[due_index.DUE_AT]))


def _shard_items(
    persistence_layer: PersistenceLayer, partition: str, now: datetime, report: DeliveryReport
) -> Iterator[dict[str, Any]]:
    """One shard of one day, page by page (each page one Query, made when needed)."""
    start_after: dict[str, Any] | None = None
    while True:
        page = persistence_layer.query_index(
            due_index.INDEX_NAME,
            partition,
            sort_range=SortKeyRange(at_most=due_index.due_at(now)),
            limit=PAGE_SIZE,
            start_after=start_after,
        )
        report.queries += 1
        yield from page.items
        if page.last_key is None:
            return
        start_after = page.last_key


def _handle(
    persistence_layer: PersistenceLayer,
    item: Mapping[str, Any],
    runner: Runner,
    handlers: Mapping[LifecycleEvent, Handler],
    now: datetime,
    settings: SweepSettings,
) -> bool:
    """Claim (or retry) one index entry; whether it is resolved (nothing left to do for it
    in its day: claimed, retried, or found claimed elsewhere)."""
    sort_key = str(item.get(SORT_KEY, ""))
    try:
        if delivery.is_delivery(sort_key):
            record = delivery.parse_delivery(item)
            if record is None:
                logger.warning("unreadable delivery record %s/%s", item.get("id"), sort_key)
                return True
            runner.retry(record)
            return True
        if not is_schedule(sort_key):
            return True  # a foreign item carrying the index's attributes
        scheduled = parse_schedule_item(item)
        if scheduled is None:
            return True
        result = claim(
            persistence_layer,
            scheduled,
            path=ClaimPath.SWEEPER,
            now=now,
            lease=settings.lease,
            handlers=handlers,
        )
        if result.outcome is not ClaimOutcome.CLAIMED:
            runner.report.skipped += 1
            return True
        for claimed in result.claimed:
            runner.run_claimed(claimed)
        return True
    except (TransientFailure, TransactionCanceled) as error:
        logger.warning(
            "could not claim %s/%s, the next run retries: %s", item.get("id"), sort_key, error
        )
        return False
