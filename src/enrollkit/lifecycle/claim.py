"""Claiming a due event: the one conditional transaction that makes delivery exactly once.

A claim, in ONE transaction:

- removes the schedule item (the sweeper: on condition it is still there, due at the time
  it saw; the stream consumer: DynamoDB's TTL already removed it);
- puts the delivery record ``(enrollment, event, due)`` on condition it does not exist:
  whichever path comes second finds it and stops;
- applies the event's status change from the transitions table (a reminder checks only
  that the enrollment is not canceled), on condition the status allows it;
- for an event that moves the status (COURSE_EXPIRED, COURSE_ARCHIVED): removes the
  enrollment's other events; those already due by then are claimed with it (they fell due
  while the enrollment was live, so they are delivered, not dropped).

Every condition failing writes nothing, and the error says which: the caller moves on,
or re-reads and tries again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum
from typing import Any

from enrollkit.errors import TransactionCanceled
from enrollkit.layout import delivery, schedule
from enrollkit.layout import enrollment as enrollment_layout
from enrollkit.layout.enrollment import EnrollmentItems
from enrollkit.layout.schedule import ScheduledEvent
from enrollkit.layout.table import item_absent
from enrollkit.lifecycle import transitions
from enrollkit.models import LifecycleEvent
from enrollkit.persistence.base import PersistenceLayer
from enrollkit.transaction.builder import TransactionBuilder

logger = logging.getLogger(__name__)

# Attempts at a claim whose transaction met a concurrent change of the enrollment's other
# events (each attempt re-reads them).
_CLAIM_ATTEMPTS = 3


class ClaimPath(str, Enum):
    """Who claimed an event (recorded in the delivery record's ``claimed_by``)."""

    SWEEPER = "sweeper"
    STREAM = "stream"
    RECORD_ACCESS = "record_access"
    COMPLETE = "complete"


class ClaimOutcome(str, Enum):
    CLAIMED = "claimed"
    ALREADY_CLAIMED = "already_claimed"
    """The delivery record exists: another path (or an earlier run) claimed it."""
    MOVED = "moved"
    """The schedule item is gone or due at another time now (the sweeper's view was old)."""
    NOT_APPLICABLE = "not_applicable"
    """The enrollment's status does not take this event (canceled, or a stale item): the
    sweeper removed the stale schedule item; nothing is delivered."""


@dataclass(frozen=True)
class Claimed:
    """An occurrence a claim recorded, and where its record sits in the due-time index
    (``None``: no handler, delivered by the claim itself)."""

    scheduled: ScheduledEvent
    next_attempt: datetime | None


@dataclass(frozen=True)
class ClaimResult:
    outcome: ClaimOutcome
    claimed: tuple[Claimed, ...] = ()


class _Moved(TransactionCanceled):
    pass


class _AlreadyClaimed(TransactionCanceled):
    pass


class _NotApplicable(TransactionCanceled):
    pass


class _OthersChanged(TransactionCanceled):
    pass


def claim(
    persistence_layer: PersistenceLayer,
    scheduled: ScheduledEvent,
    *,
    path: ClaimPath,
    now: datetime,
    lease: timedelta,
    handlers: Mapping[LifecycleEvent, object],
) -> ClaimResult:
    """Claim one due occurrence for ``path`` (the sweeper or the stream consumer).

    A claimed occurrence with a handler is leased to the caller until ``now + lease`` (its
    record's index position): the caller runs the handler; if it dies, a sweep after the
    lease runs it again.
    """
    for attempt in range(1, _CLAIM_ATTEMPTS + 1):
        others: dict[LifecycleEvent, ScheduledEvent] | None = None
        root_item: Mapping[str, Any] = {}
        if scheduled.event in transitions.STATUS_EVENTS:
            items = EnrollmentItems.of(
                scheduled.enrollment_id, persistence_layer.query(scheduled.enrollment_id)
            )
            others = {e: s for e, s in items.scheduled().items() if e is not scheduled.event}
            # The status indexes' keys derive from the root item (status_changes).
            root_item = items.root or {}
        claimed: list[Claimed] = []

        def next_attempt(event: LifecycleEvent) -> datetime | None:
            return now + lease if event in handlers else None

        try:
            with persistence_layer.transact_writer() as transaction:
                if path is ClaimPath.SWEEPER:
                    transaction.delete(
                        key=schedule.schedule_key(scheduled.enrollment_id, scheduled.event),
                        cond=schedule.still_due_at(scheduled.due_ttl),
                        exc_cls=_Moved,
                    )
                claimed.append(
                    add_record(transaction, scheduled, path, now, next_attempt(scheduled.event))
                )
                _add_status_change(transaction, scheduled, now, root_item)
                if others is not None:
                    claimed.extend(
                        _remove_others(transaction, scheduled, others, path, now, next_attempt)
                    )
        except _AlreadyClaimed:
            return ClaimResult(ClaimOutcome.ALREADY_CLAIMED)
        except _Moved:
            return ClaimResult(ClaimOutcome.MOVED)
        except _NotApplicable:
            if path is ClaimPath.SWEEPER:
                _discard(persistence_layer, scheduled)
            return ClaimResult(ClaimOutcome.NOT_APPLICABLE)
        except _OthersChanged:
            logger.debug(
                "claim of %s of %s: its other events changed, re-reading (attempt %d)",
                scheduled.event.name,
                scheduled.enrollment_id,
                attempt,
            )
            continue
        return ClaimResult(ClaimOutcome.CLAIMED, tuple(claimed))
    # Another writer keeps changing the enrollment's events: the next run tries again.
    return ClaimResult(ClaimOutcome.MOVED)


def add_record(
    transaction: TransactionBuilder,
    scheduled: ScheduledEvent,
    path: ClaimPath,
    now: datetime,
    next_attempt: datetime | None,
    *,
    exc_cls: type[TransactionCanceled] | None = None,
) -> Claimed:
    """Add the delivery record of ``scheduled`` to a claim (on condition it is new; else
    ``exc_cls``, by default "already claimed")."""
    transaction.put(
        item=delivery.claimed_record(
            scheduled, claimed_by=path.value, now=now, next_attempt=next_attempt
        ),
        cond=delivery.is_new(),
        exc_cls=exc_cls or _AlreadyClaimed,
    )
    return Claimed(scheduled, next_attempt)


def _add_status_change(
    transaction: TransactionBuilder,
    scheduled: ScheduledEvent,
    now: datetime,
    root_item: Mapping[str, Any],
) -> None:
    root = enrollment_layout.root_key(scheduled.enrollment_id)
    step = transitions.STATUS_EVENTS.get(scheduled.event)
    if step is None:
        transaction.condition(
            key=root,
            cond=enrollment_layout.status_in(transitions.REMINDER_STATUSES),
            exc_cls=_NotApplicable,
        )
        return
    sources = transitions.sources(step)
    (to,) = {transitions.TRANSITIONS[step][status] for status in sources}
    transaction.update(
        key=root,
        set=enrollment_layout.status_changes(root_item, to, now),
        cond=enrollment_layout.status_in(sources),
        exc_cls=_NotApplicable,
    )


def _remove_others(
    transaction: TransactionBuilder,
    scheduled: ScheduledEvent,
    others: Mapping[LifecycleEvent, ScheduledEvent],
    path: ClaimPath,
    now: datetime,
    next_attempt: Callable[[LifecycleEvent], datetime | None],
) -> list[Claimed]:
    """The enrollment's other events end with a status event: those due by its due time
    are claimed with it, the rest removed; each on condition it is as read."""
    claimed = []
    for event in LifecycleEvent:
        if event is scheduled.event:
            continue
        key = schedule.schedule_key(scheduled.enrollment_id, event)
        other = others.get(event)
        if other is None:
            transaction.condition(key=key, cond=item_absent(), exc_cls=_OthersChanged)
            continue
        transaction.delete(
            key=key, cond=schedule.still_due_at(other.due_ttl), exc_cls=_OthersChanged
        )
        if other.due <= scheduled.due:
            claimed.append(add_record(transaction, other, path, now, next_attempt(event)))
    return claimed


def _discard(persistence_layer: PersistenceLayer, scheduled: ScheduledEvent) -> None:
    """Remove a schedule item its enrollment no longer takes (so the sweeper does not meet
    it again), if it is still the one seen."""
    logger.warning(
        "enrollment %s: %s is due but its status does not take it; removing it undelivered",
        scheduled.enrollment_id,
        scheduled.event.name,
    )
    try:
        with persistence_layer.transact_writer() as transaction:
            transaction.delete(
                key=schedule.schedule_key(scheduled.enrollment_id, scheduled.event),
                cond=schedule.still_due_at(scheduled.due_ttl),
            )
    except TransactionCanceled:
        pass  # changed meanwhile: the next sweep looks again
