"""Running a service's handlers for claimed events, and keeping their delivery records.

A claimed occurrence whose event has a handler is PENDING: its record sits in the due-time
index at its next attempt. The runner calls the handler with a :class:`DueEvent`; on
success the record becomes DELIVERED (out of the index), on failure it moves to a later
attempt (backoff), and every later sweep that finds it due tries again: first taking a lease
on it (so two sweepers never run one handler at once) and checking, in the same
transaction, that the enrollment is not canceled (a canceled enrollment's handlers are
never called again).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from enrollkit.errors import InvalidInput, TransactionCanceled
from enrollkit.layout import delivery
from enrollkit.layout import due as due_index
from enrollkit.layout import enrollment as enrollment_layout
from enrollkit.layout.delivery import Delivery, DeliveryStatus, RecordChange
from enrollkit.layout.schedule import ScheduledEvent
from enrollkit.lifecycle.claim import Claimed
from enrollkit.models import EnrollmentStatus, KeyPair, LifecycleEvent
from enrollkit.persistence.base import PersistenceLayer

logger = logging.getLogger(__name__)

DEFAULT_LEASE = timedelta(minutes=15)
FIRST_RETRY_DELAY = timedelta(minutes=1)
MAX_RETRY_DELAY = timedelta(hours=1)


@dataclass(frozen=True)
class DueEvent:
    """What a handler receives: one occurrence of a lifecycle event of one enrollment.

    ``idempotency_key`` is the same on every attempt and on every path (sweeper, stream):
    pass it to your email provider or your own store, so that a handler that ran but whose
    success was not recorded (a crash in between) does not act twice.
    """

    enrollment_id: str
    event: LifecycleEvent
    due: datetime
    idempotency_key: str
    user_name: str
    user_email: str
    course_name: str
    attempt: int = 1
    """1 on the first call, then one more on each retry after a failure."""


Handler = Callable[[DueEvent], object]
"""A service's handler of one event: any return value; an exception means "retry later"."""


@dataclass(frozen=True)
class FailedDelivery:
    """A handler call that raised: reported, and retried by a later run."""

    enrollment_id: str
    event: LifecycleEvent
    due: datetime
    attempt: int
    error: str
    retry_at: datetime


@dataclass
class DeliveryReport:
    """What one run delivered.

    - ``delivered``: occurrences delivered this run (handler succeeded, or the event has no
      handler and its claim was the whole delivery)
    - ``failed``: handler calls that raised (each is in ``failures`` and retried later)
    - ``claimed``: occurrences claimed this run (status changes applied)
    - ``skipped``: due items left alone: claimed by another path, moved by an access, or
      of an enrollment whose status no longer takes them (canceled)
    - ``queries``: index Queries the run made
    """

    delivered: int = 0
    failed: int = 0
    claimed: int = 0
    skipped: int = 0
    queries: int = 0
    failures: list[FailedDelivery] = field(default_factory=list)
    checkpoint: datetime | None = None
    """The sweeper's checkpoint after the run: the first day it still looks at."""


@dataclass(frozen=True)
class Runner:
    """Runs handlers for one caller (a sweep, a stream batch), at one ``now``."""

    persistence_layer: PersistenceLayer
    handlers: Mapping[LifecycleEvent, Handler]
    now: datetime
    lease: timedelta
    report: DeliveryReport

    def run_claimed(self, claimed: Claimed) -> None:
        """Call the handler of an occurrence this caller just claimed (and leased)."""
        self.report.claimed += 1
        if claimed.next_attempt is None:
            self.report.delivered += 1  # no handler: the claim was the delivery
            return
        self._call(claimed.scheduled, attempts=0, lease=due_index.due_at(claimed.next_attempt))

    def retry(self, record: Delivery) -> None:
        """Run the handler of a PENDING record found due in the index: lease it, then call."""
        if record.status is not DeliveryStatus.PENDING or record.next_attempt is None:
            self.report.skipped += 1
            return
        lease = due_index.due_at(self.now + self.lease)
        if lease == record.next_attempt:  # same second: make the lease differ from the view
            lease = due_index.due_at(self.now + self.lease + timedelta(seconds=1))
        try:
            with self.persistence_layer.transact_writer() as transaction:
                transaction.update(
                    key=record.key,
                    set=delivery.leased(
                        record.scheduled.enrollment_id, due_index.parse_due_at(lease), self.now
                    ).set,
                    cond=delivery.pending_at(record.next_attempt),
                    exc_cls=_LeaseTaken,
                )
                transaction.condition(
                    key=enrollment_layout.root_key(record.scheduled.enrollment_id),
                    cond=enrollment_layout.status_not(EnrollmentStatus.CANCELED),
                    exc_cls=_EnrollmentCanceled,
                )
        except _LeaseTaken:
            self.report.skipped += 1  # another runner has it, or it was delivered meanwhile
            return
        except _EnrollmentCanceled:
            self._record(record.key, delivery.canceled(self.now), record.next_attempt)
            self.report.skipped += 1
            return
        self._call(record.scheduled, attempts=record.attempts, lease=lease)

    def _call(self, scheduled: ScheduledEvent, *, attempts: int, lease: str) -> None:
        handler = self.handlers.get(scheduled.event)
        attempt = attempts + 1
        key = delivery.delivery_key(scheduled.enrollment_id, scheduled.event, scheduled.due)
        if handler is None:  # a handler was removed since: nothing left to call
            self._record(key, delivery.delivered(attempts, self.now), lease)
            self.report.delivered += 1
            return
        due_event = due_event_of(scheduled, attempt)
        try:
            handler(due_event)
        except Exception as error:
            retry_at = self.now + retry_delay(attempt)
            self._record(
                key,
                delivery.failed(scheduled.enrollment_id, attempt, error, retry_at, self.now),
                lease,
            )
            logger.warning(
                "handler of %s for enrollment %s failed (attempt %d), retrying at %s: %s",
                scheduled.event.name,
                scheduled.enrollment_id,
                attempt,
                retry_at.isoformat(),
                type(error).__name__,
            )
            self.report.failed += 1
            self.report.failures.append(
                FailedDelivery(
                    enrollment_id=scheduled.enrollment_id,
                    event=scheduled.event,
                    due=scheduled.due,
                    attempt=attempt,
                    error=f"{type(error).__name__}: {error}"[: delivery.MAX_ERROR_CHARACTERS],
                    retry_at=retry_at,
                )
            )
            return
        self._record(key, delivery.delivered(attempt, self.now), lease)
        self.report.delivered += 1

    def _record(self, key: KeyPair, change: RecordChange, lease: str) -> None:
        """Update a record this runner holds (on condition it still holds it)."""
        try:
            with self.persistence_layer.transact_writer() as transaction:
                transaction.update(
                    key=key,
                    set=change.set,
                    remove=change.remove,
                    cond=delivery.pending_at(lease),
                )
        except TransactionCanceled:
            # The lease ran out and another runner took the record: it decides now.
            logger.warning(
                "delivery record %s/%s: lease lost before it was updated", key.pk, key.sk
            )


class _LeaseTaken(TransactionCanceled):
    pass


class _EnrollmentCanceled(TransactionCanceled):
    pass


def due_event_of(scheduled: ScheduledEvent, attempt: int = 1) -> DueEvent:
    return DueEvent(
        enrollment_id=scheduled.enrollment_id,
        event=scheduled.event,
        due=scheduled.due,
        idempotency_key=delivery.idempotency_key(
            scheduled.enrollment_id, scheduled.event, scheduled.due
        ),
        user_name=scheduled.recipient.name,
        user_email=scheduled.recipient.email,
        course_name=scheduled.recipient.course,
        attempt=attempt,
    )


def retry_delay(attempt: int) -> timedelta:
    """After the ``attempt``-th failure: one minute, doubling, at most an hour."""
    doublings = min(max(attempt - 1, 0), 16)  # past the cap long before 2**16
    return min(FIRST_RETRY_DELAY * (1 << doublings), MAX_RETRY_DELAY)


def require_handlers(handlers: Any) -> dict[LifecycleEvent, Handler]:
    """``handlers`` checked: a mapping from LifecycleEvent to a callable."""
    if not isinstance(handlers, Mapping):
        raise InvalidInput(
            f"handlers must be a mapping of LifecycleEvent to a callable, not "
            f"{type(handlers).__name__}",
            field="handlers",
        )
    checked: dict[LifecycleEvent, Handler] = {}
    for event, handler in handlers.items():
        if not isinstance(event, LifecycleEvent):
            raise InvalidInput(
                f"handlers: a key must be a LifecycleEvent, not {event!r}", field="handlers"
            )
        if not callable(handler):
            raise InvalidInput(
                f"handlers: the handler of {event.name} is not callable", field="handlers"
            )
        checked[event] = handler
    return checked
