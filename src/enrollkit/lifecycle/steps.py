"""The lifecycle steps a service calls: ``record_access()`` and ``complete()``.

Each is one transaction, refused (writing nothing) unless the transitions table allows it
from the enrollment's status. Steps see time as the sweeper does: an event due at or
before the step's ``now`` has happened, even if it has not been delivered yet. So a step
never drops a due event: one it would remove (a no-activity reminder an access pushes, a
reminder a completion ends) is claimed in the same transaction and its handler runs at the
next sweep; and once ``COURSE_EXPIRED`` is due, the access period has ended
(:class:`~enrollkit.AccessPeriodEnded`), delivered or not.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from enrollkit.errors import (
    AccessPeriodEnded,
    EnrollmentNotFound,
    InvalidInput,
    TransactionCanceled,
    TransitionNotAllowed,
)
from enrollkit.layout import enrollment as enrollment_layout
from enrollkit.layout import schedule
from enrollkit.layout.enrollment import EnrollmentItems
from enrollkit.layout.schedule import Recipient, ScheduledEvent
from enrollkit.layout.table import attr, item_absent
from enrollkit.lifecycle import transitions
from enrollkit.lifecycle.claim import ClaimPath, add_record
from enrollkit.lifecycle.transitions import Step
from enrollkit.models import Certificate, EnrollmentStatus, LifecycleEvent
from enrollkit.operations._validation import (
    require_enrollment_id,
    require_identifier,
    require_instance,
)
from enrollkit.persistence.base import PersistenceLayer
from enrollkit.timing import (
    certificate_schedule,
    no_activity_due,
    require_aware,
    ttl,
    whole_seconds,
)
from enrollkit.transaction.builder import TransactionBuilder

# A step re-reads and tries again when a concurrent writer changed what it read.
_ATTEMPTS = 4
# The events a completion ends (a completed enrollment neither expires nor gets them).
_ENDED_BY_COMPLETION = (
    LifecycleEvent.REMINDER_NO_ACCESS_3_DAYS,
    LifecycleEvent.NO_ACTIVITY_7_DAYS,
    LifecycleEvent.ACCESS_PERIOD_REMINDER_30_DAYS,
)


@dataclass(frozen=True)
class AccessResult:
    """What record_access() did: the status after it, whether this was the first access,
    and when ``NO_ACTIVITY_7_DAYS`` is now due (``None``: not scheduled, as it would fall
    at or after the access period's end)."""

    enrollment_id: str
    status: EnrollmentStatus
    first_access: bool
    no_activity_due: datetime | None


@dataclass(frozen=True)
class CompleteResult:
    """What complete() did; ``archive_at`` is when ``COURSE_ARCHIVED`` is due (``None``:
    no certificate, or one that never expires)."""

    enrollment_id: str
    archive_at: datetime | None


class _Changed(TransactionCanceled):
    """Something the step read changed before it wrote: read again."""


class _FastPathMissed(TransactionCanceled):
    """Not the common case (an access pushing a pending no-activity reminder)."""


def record_access(
    enrollment_id: str,
    *,
    persistence_layer: PersistenceLayer,
    tenant_id: str | None = None,
    progress: int | None = None,
    now: datetime | None = None,
) -> AccessResult:
    """Record that the user accessed the course: cheap and safe on every page view.

    The first access moves PENDING to IN_PROGRESS, records the first-access date, removes
    the no-access reminder and schedules ``NO_ACTIVITY_7_DAYS`` 7 days later. Each later
    access pushes that event to 7 days after it (only ever later) and records ``progress``.
    A no-activity event that would fall at or after the end of the access period is not
    scheduled (``COURSE_EXPIRED`` ends the enrollment first).

    The common case (a later access) is one write and no read: its conditions check the
    status and the event's time. Otherwise one Query, then one transaction. A repeated call
    (a retry) changes nothing more.

    Args:
        enrollment_id: The enrollment accessed.
        persistence_layer: Where it lives.
        tenant_id: When given, the enrollment must belong to this tenant.
        progress: The user's progress, 0 to 100, when you track it.
        now: The access time, timezone-aware; default the current UTC time.

    Raises:
        EnrollmentNotFound: No such enrollment (or another tenant's).
        TransitionNotAllowed: It is COMPLETED, CANCELED, EXPIRED or ARCHIVED.
        AccessPeriodEnded: Its access period has ended (``COURSE_EXPIRED`` is due).
        InvalidInput: A bad id, a naive ``now``, a progress outside 0..100.
    """
    now = require_aware(now)
    enrollment_id = require_enrollment_id(enrollment_id)
    if tenant_id is not None:
        tenant_id = require_identifier("tenant_id", tenant_id)
    if progress is not None and (
        isinstance(progress, bool) or not isinstance(progress, int) or not 0 <= progress <= 100
    ):
        raise InvalidInput(f"progress must be an int from 0 to 100, not {progress!r}")
    pushed_to = whole_seconds(no_activity_due(now))
    if _push_no_activity(persistence_layer, enrollment_id, tenant_id, progress, now):
        return AccessResult(enrollment_id, EnrollmentStatus.IN_PROGRESS, False, pushed_to)
    for _ in range(_ATTEMPTS):
        items = _read(persistence_layer, enrollment_id, tenant_id)
        try:
            return _record_access(persistence_layer, items, progress, now)
        except _Changed:
            continue
    raise TransactionCanceled(
        f"enrollment {enrollment_id!r} kept changing during record_access; try again"
    )


def _push_no_activity(
    persistence_layer: PersistenceLayer,
    enrollment_id: str,
    tenant_id: str | None,
    progress: int | None,
    now: datetime,
) -> bool:
    """The common case in one write, no read: IN_PROGRESS, the no-activity event pending
    and earlier than the new one, which still falls before the access period ends."""
    pushed_to = whole_seconds(no_activity_due(now))
    status = enrollment_layout.status_in({EnrollmentStatus.IN_PROGRESS})
    if tenant_id is not None:
        status = status & attr(enrollment_layout.TENANT_ID).eq(tenant_id)
    try:
        with persistence_layer.transact_writer() as transaction:
            transaction.update(
                key=enrollment_layout.root_key(enrollment_id),
                set=enrollment_layout.access_changes(now, progress),
                cond=status,
                exc_cls=_FastPathMissed,
            )
            transaction.update(
                key=schedule.schedule_key(enrollment_id, LifecycleEvent.NO_ACTIVITY_7_DAYS),
                set=schedule.due_changes(enrollment_id, pushed_to),
                cond=schedule.pending_after(now) & schedule.due_before(pushed_to),
                exc_cls=_FastPathMissed,
            )
            transaction.condition(
                key=schedule.schedule_key(enrollment_id, LifecycleEvent.COURSE_EXPIRED),
                cond=schedule.pending_after(pushed_to),
                exc_cls=_FastPathMissed,
            )
    except _FastPathMissed:
        return False
    return True


def _record_access(
    persistence_layer: PersistenceLayer,
    items: EnrollmentItems,
    progress: int | None,
    now: datetime,
) -> AccessResult:
    root = items.root
    assert root is not None
    enrollment_id = items.enrollment_id
    status = _require_allowed(Step.RECORD_ACCESS, root, enrollment_id)
    scheduled = items.scheduled()
    expiry = _require_access_period(scheduled, enrollment_id, now)
    first = status is EnrollmentStatus.PENDING
    recipient = Recipient.from_root(root)
    new_due = whole_seconds(no_activity_due(now))
    keep = ttl(new_due) < expiry.due_ttl
    with persistence_layer.transact_writer() as transaction:
        transaction.update(
            key=enrollment_layout.root_key(enrollment_id),
            set=(
                enrollment_layout.first_access_changes(root, now, progress)
                if first
                else enrollment_layout.access_changes(now, progress)
            ),
            cond=enrollment_layout.status_in_for({status}, enrollment_layout.tenant_of(root)),
            exc_cls=_Changed,
        )
        _require_unchanged(transaction, expiry)
        if first:
            _end(
                transaction,
                scheduled,
                LifecycleEvent.REMINDER_NO_ACCESS_3_DAYS,
                enrollment_id,
                ClaimPath.RECORD_ACCESS,
                now,
            )
        scheduled_due = _reschedule_no_activity(
            transaction, scheduled, enrollment_id, recipient, new_due if keep else None, now
        )
    return AccessResult(enrollment_id, EnrollmentStatus.IN_PROGRESS, first, scheduled_due)


def _reschedule_no_activity(
    transaction: TransactionBuilder,
    scheduled: Mapping[LifecycleEvent, ScheduledEvent],
    enrollment_id: str,
    recipient: Recipient,
    new_due: datetime | None,
    now: datetime,
) -> datetime | None:
    """Move ``NO_ACTIVITY_7_DAYS`` to ``new_due`` (``None``: remove it), only ever later; one
    already due is claimed (it happened), and replaced. Returns when it is now due."""
    event = LifecycleEvent.NO_ACTIVITY_7_DAYS
    key = schedule.schedule_key(enrollment_id, event)
    current = scheduled.get(event)
    if current is None:
        if new_due is None:
            return None
        transaction.put(
            item=schedule.scheduled_item(enrollment_id, recipient, event, new_due, now),
            cond=item_absent(),
            exc_cls=_Changed,
        )
        return new_due
    unchanged = schedule.still_due_at(current.due_ttl)
    if current.due <= now:
        add_record(transaction, current, ClaimPath.RECORD_ACCESS, now, now, exc_cls=_Changed)
    elif new_due is not None and current.due_ttl >= ttl(new_due):
        return current.due  # already as late (a retry, or a later access came first)
    if new_due is None:
        transaction.delete(key=key, cond=unchanged, exc_cls=_Changed)
        return None
    transaction.put(
        item=schedule.scheduled_item(enrollment_id, recipient, event, new_due, now),
        cond=unchanged,
        exc_cls=_Changed,
    )
    return new_due


def complete(
    enrollment_id: str,
    *,
    persistence_layer: PersistenceLayer,
    tenant_id: str | None = None,
    certificate: Certificate | None = None,
    now: datetime | None = None,
) -> CompleteResult:
    """Mark an enrollment COMPLETED, with its certificate if any. One Query, then one
    transaction.

    Removes the no-access, no-activity, access-period reminder and course-expired events
    (one already due is claimed: it is delivered at the next sweep). With a certificate
    that expires, schedules ``CERT_EXPIRATION_REMINDER_30_DAYS`` (30 days before, under the
    same strictly-after / strictly-before rule as enroll's reminders) and
    ``COURSE_ARCHIVED`` (at its expiry), and stores the certificate (a ``certificate``
    item). A repeated call with the same certificate (a retry) changes nothing.

    Args:
        enrollment_id: The enrollment completed.
        persistence_layer: Where it lives.
        tenant_id: When given, the enrollment must belong to this tenant.
        certificate: The certificate issued, ``Certificate(expires_at=...)`` (``None``
            expires_at: never expires), or ``None`` for none.
        now: The completion time, timezone-aware; default the current UTC time.

    Raises:
        EnrollmentNotFound: No such enrollment (or another tenant's).
        TransitionNotAllowed: It is not PENDING or IN_PROGRESS.
        AccessPeriodEnded: Its access period has ended (``COURSE_EXPIRED`` is due).
        InvalidInput: A bad id, a naive ``now``, a certificate that expires by ``now``.
    """
    now = require_aware(now)
    enrollment_id = require_enrollment_id(enrollment_id)
    if tenant_id is not None:
        tenant_id = require_identifier("tenant_id", tenant_id)
    expires_at = None
    if certificate is not None:
        certificate = require_instance("certificate", certificate, Certificate)
        if certificate.expires_at is not None:
            expires_at = require_aware(certificate.expires_at)
            if expires_at <= now:
                raise InvalidInput(
                    f"the certificate expires at {expires_at.isoformat()}, not after the "
                    f"completion ({now.isoformat()})",
                    field="certificate.expires_at",
                )
    for _ in range(_ATTEMPTS):
        items = _read(persistence_layer, enrollment_id, tenant_id)
        root = items.root
        assert root is not None
        if enrollment_layout.known_status_of(root) is EnrollmentStatus.COMPLETED and (
            enrollment_layout.stored_certificate(items.certificate) == certificate
        ):
            return CompleteResult(enrollment_id, expires_at)  # a retry: done already
        try:
            _complete(persistence_layer, items, certificate, expires_at, now)
        except _Changed:
            continue
        return CompleteResult(enrollment_id, expires_at)
    raise TransactionCanceled(
        f"enrollment {enrollment_id!r} kept changing during complete; try again"
    )


def _complete(
    persistence_layer: PersistenceLayer,
    items: EnrollmentItems,
    certificate: Certificate | None,
    expires_at: datetime | None,
    now: datetime,
) -> None:
    root = items.root
    assert root is not None
    enrollment_id = items.enrollment_id
    _require_allowed(Step.COMPLETE, root, enrollment_id)
    scheduled = items.scheduled()
    expiry = _require_access_period(scheduled, enrollment_id, now)
    recipient = Recipient.from_root(root)
    with persistence_layer.transact_writer() as transaction:
        transaction.update(
            key=enrollment_layout.root_key(enrollment_id),
            set=enrollment_layout.completed_changes(root, now),
            cond=enrollment_layout.status_in_for(
                transitions.sources(Step.COMPLETE), enrollment_layout.tenant_of(root)
            ),
            exc_cls=_Changed,
        )
        transaction.delete(
            key=schedule.schedule_key(enrollment_id, LifecycleEvent.COURSE_EXPIRED),
            cond=schedule.still_due_at(expiry.due_ttl),
            exc_cls=_Changed,
        )
        for event in _ENDED_BY_COMPLETION:
            _end(transaction, scheduled, event, enrollment_id, ClaimPath.COMPLETE, now)
        if certificate is not None:
            transaction.put(
                item=enrollment_layout.certificate_item(enrollment_id, certificate, now)
            )
        if expires_at is not None:
            for event, due in certificate_schedule(now, expires_at).items():
                transaction.put(
                    item=schedule.scheduled_item(enrollment_id, recipient, event, due, now),
                    cond=item_absent(),
                    exc_cls=_Changed,
                )


# -- shared -----------------------------------------------------------------------------------


def _read(
    persistence_layer: PersistenceLayer, enrollment_id: str, tenant_id: str | None
) -> EnrollmentItems:
    items = EnrollmentItems.of(enrollment_id, persistence_layer.query(enrollment_id))
    root = items.root
    if root is None or (tenant_id is not None and enrollment_layout.tenant_of(root) != tenant_id):
        raise EnrollmentNotFound(f"no enrollment {enrollment_id!r}")
    return items


def _require_allowed(step: Step, root: Mapping[str, Any], enrollment_id: str) -> EnrollmentStatus:
    status = enrollment_layout.known_status_of(root)
    if status is None or not transitions.allowed(step, status):
        allowed = ", ".join(sorted(s.value for s in transitions.sources(step)))
        raise TransitionNotAllowed(
            f"enrollment {enrollment_id!r} is {root.get(enrollment_layout.STATUS)}: "
            f"{step.value} applies to {allowed} only"
        )
    return status


def _require_access_period(
    scheduled: Mapping[LifecycleEvent, ScheduledEvent], enrollment_id: str, now: datetime
) -> ScheduledEvent:
    """The pending ``COURSE_EXPIRED`` event; AccessPeriodEnded once it is due (or gone:
    DynamoDB's TTL took it and the stream consumer has yet to expire the enrollment)."""
    expiry = scheduled.get(LifecycleEvent.COURSE_EXPIRED)
    if expiry is None or expiry.due <= now:
        raise AccessPeriodEnded(f"the access period of enrollment {enrollment_id!r} has ended")
    return expiry


def _require_unchanged(transaction: TransactionBuilder, expiry: ScheduledEvent) -> None:
    transaction.condition(
        key=schedule.schedule_key(expiry.enrollment_id, expiry.event),
        cond=schedule.still_due_at(expiry.due_ttl),
        exc_cls=_Changed,
    )


def _end(
    transaction: TransactionBuilder,
    scheduled: Mapping[LifecycleEvent, ScheduledEvent],
    event: LifecycleEvent,
    enrollment_id: str,
    path: ClaimPath,
    now: datetime,
) -> None:
    """Remove an event a step ends, as read: claimed first if it is already due."""
    current = scheduled.get(event)
    key = schedule.schedule_key(enrollment_id, event)
    if current is None:
        transaction.condition(key=key, cond=item_absent(), exc_cls=_Changed)
        return
    transaction.delete(
        key=key,
        cond=schedule.still_due_at(current.due_ttl),
        exc_cls=_Changed,
    )
    if current.due <= now:
        add_record(transaction, current, path, now, now, exc_cls=_Changed)
