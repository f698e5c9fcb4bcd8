"""``handle_stream_batch()``: the TTL stream consumer, the sweeper's safety net.

DynamoDB's TTL deletes a schedule item some time after it falls due (minutes to days);
the table's stream then carries a REMOVE record made by the DynamoDB service, with the
item's old image. This consumer claims that occurrence exactly as the sweeper does (one
transaction: delivery record on condition it is new, status change), so whichever comes
first delivers it and the other finds it claimed.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from enrollkit.errors import EnrollkitError, InvalidInput, UnreadableItem
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
from enrollkit.persistence.marshal import deserialize_item
from enrollkit.persistence.streams import is_ttl_removal, table_of_arn
from enrollkit.timing import require_aware, utc_now

logger = logging.getLogger(__name__)


def handle_stream_batch(
    event: Mapping[str, Any],
    *,
    persistence_layer: PersistenceLayer,
    handlers: Mapping[LifecycleEvent, Handler],
    now: datetime | None = None,
) -> dict[str, list[dict[str, str]]]:
    """Handle one Lambda DynamoDB-Streams event of the enrollments table.

    Acts only on TTL deletions of schedule items (``userIdentity`` the DynamoDB service);
    every other record is left alone. Each occurrence is claimed as the sweeper claims it,
    then its handler runs; a handler that raises is retried by the sweeper (the record is
    not failed for it, so it does not hold up its shard).

    Args:
        event: The event Lambda passes (``{"Records": [...]}``); the embedded backend's
            ``drain_ttl_stream()`` returns the same.
        persistence_layer: Where the enrollments live.
        handlers: ``LifecycleEvent`` -> a callable taking one ``DueEvent``.
        now: The handling time, timezone-aware; default the current UTC time.

    Returns:
        The partial-batch response, ``{"batchItemFailures": [{"itemIdentifier": seq}]}``,
        naming the records whose claim failed for a reason worth retrying (enable
        ``ReportBatchItemFailures`` on the event source mapping).
    """
    now = require_aware(now) if now is not None else utc_now()
    handlers = require_handlers(handlers)
    if not isinstance(event, Mapping) or not isinstance(event.get("Records", []), list):
        raise InvalidInput("event must be a DynamoDB Streams event: {'Records': [...]}")
    report = DeliveryReport()
    runner = Runner(persistence_layer, handlers, now, DEFAULT_LEASE, report)
    failures = []
    for record in event.get("Records", []):
        try:
            _handle(record, persistence_layer, runner, handlers, now)
        except (UnreadableItem, InvalidInput, TypeError, ValueError, KeyError) as error:
            # A poisoned record: retrying cannot help, and failing it would hold up its shard.
            logger.error(
                "stream record %s cannot be read, skipped: %s",
                _sequence_number(record),
                type(error).__name__,
            )
        except EnrollkitError as error:
            sequence = _sequence_number(record)
            logger.warning("stream record %s not handled, to be retried: %s", sequence, error)
            if sequence is not None:
                failures.append({"itemIdentifier": sequence})
    logger.info(
        "stream batch: %d records, %d delivered, %d failed, %d skipped, %d to retry",
        len(event.get("Records", [])),
        report.delivered,
        report.failed,
        report.skipped,
        len(failures),
    )
    return {"batchItemFailures": failures}


def _handle(
    record: Any,
    persistence_layer: PersistenceLayer,
    runner: Runner,
    handlers: Mapping[LifecycleEvent, Handler],
    now: datetime,
) -> None:
    if not isinstance(record, Mapping) or not is_ttl_removal(record):
        return
    table = table_of_arn(str(record.get("eventSourceARN", "")))
    if table is not None and table != persistence_layer.table_name:
        return  # another table's stream (the orders table's, say)
    change = record.get("dynamodb")
    old_image = change.get("OldImage") if isinstance(change, Mapping) else None
    if not isinstance(old_image, Mapping):
        keys = change.get("Keys") if isinstance(change, Mapping) else None
        if isinstance(keys, Mapping) and is_schedule(str(deserialize_item(keys).get(SORT_KEY))):
            logger.error("a TTL deletion without its old image (is the stream KEYS_ONLY?)")
        return
    item = deserialize_item(old_image)
    if not is_schedule(str(item.get(SORT_KEY, ""))):
        return
    scheduled = parse_schedule_item(item)
    if scheduled is None:
        return
    result = claim(
        persistence_layer,
        scheduled,
        path=ClaimPath.STREAM,
        now=now,
        lease=DEFAULT_LEASE,
        handlers=handlers,
    )
    if result.outcome is not ClaimOutcome.CLAIMED:
        runner.report.skipped += 1
        return
    for claimed in result.claimed:
        runner.run_claimed(claimed)


def _sequence_number(record: Any) -> str | None:
    change = record.get("dynamodb") if isinstance(record, Mapping) else None
    sequence = change.get("SequenceNumber") if isinstance(change, Mapping) else None
    return str(sequence) if sequence is not None else None
