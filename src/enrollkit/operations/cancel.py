"""cancel(): one read of the enrollment's items, then one transaction that undoes enroll()."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from enrollkit.errors import (
    CancelNotAllowed,
    EnrollmentNotFound,
    OrderNotFound,
    TransactionCanceled,
)
from enrollkit.layout import enrollment as enrollment_layout
from enrollkit.layout import lock, order, schedule, seat
from enrollkit.layout.enrollment import CancelRecord, EnrollmentItems
from enrollkit.layout.table import expired, item_absent, item_exists
from enrollkit.lifecycle import transitions
from enrollkit.lifecycle.transitions import Step
from enrollkit.models import AdminOverride, Author, LifecycleEvent, Vacancy
from enrollkit.operations._validation import (
    require_enrollment_id,
    require_identifier,
    require_instance,
)
from enrollkit.persistence.base import PersistenceLayer
from enrollkit.timing import require_aware
from enrollkit.transaction.builder import TransactionBuilder


@dataclass(frozen=True)
class CancelResult:
    """What cancel() did. ``returned_seat`` is the seat put back into the order, if any."""

    enrollment_id: str
    returned_seat: Vacancy | None = None


logger = logging.getLogger(__name__)


class _AlreadyCanceled(TransactionCanceled):
    """``canceled_date`` exists: this cancel was applied already (a retry), or another was."""


class _LockTakenOver(TransactionCanceled):
    """The lock item now belongs to a newer enrollment (ours expired): leave it alone."""


def cancel(
    enrollment_id: str,
    *,
    author: Author,
    persistence_layer: PersistenceLayer,
    tenant_id: str | None = None,
    idempotency_key: str | None = None,
    override: AdminOverride | None = None,
    now: datetime | None = None,
) -> CancelResult:
    """Cancel an enrollment: status CANCELED, who canceled it, every schedule and its lock
    removed, its seat returned to the order. One Query, then one transaction.

    Only a PENDING or IN_PROGRESS enrollment can be canceled (the transitions table): a
    completed, expired or archived one keeps its seat. Every lifecycle event is removed,
    including one a lifecycle step scheduled after this call's read (each event's item is
    deleted whether or not it was read; deleting a missing item changes nothing), so no
    event is ever delivered for a canceled enrollment.

    Args:
        enrollment_id: The enrollment to cancel.
        author: Who cancels it (recorded in its ``canceled_date`` item).
        persistence_layer: Where the enrollment lives.
        tenant_id: When given, the enrollment must belong to this tenant (else
            ``EnrollmentNotFound``, so one tenant cannot probe another's ids).
        override: An administrator's override (:class:`~enrollkit.AdminOverride`, with
            its reason): cancels regardless of the cancel policy (none, or its window
            passed), still returning the seat and removing every event. The override and
            its reason are recorded in the ``canceled_date`` item, with ``author``.
        idempotency_key: Your key for this cancel (an id: a UUID, a request id). A
            retry with the same key, after a lost response or a crash, returns the same
            ``CancelResult`` (the same returned seat) instead of ``CancelNotAllowed``.
            It is stored in the ``canceled_date`` item.
        now: The cancel time, timezone-aware; default the current UTC time.

    Returns:
        The enrollment id, and the new seat put back into the order, if the enrollment
        had taken one.

    Raises:
        EnrollmentNotFound: No such enrollment, or ``tenant_id`` given and different.
        CancelNotAllowed: No cancel policy, its window has passed (without ``override``),
            not PENDING or IN_PROGRESS, or already canceled (by another call than one with
            this ``idempotency_key``).
        OrderNotFound: The order of the enrollment's seat does not exist.
        InvalidInput: A bad id, a naive ``now``, an argument of the wrong type.
    """
    now = require_aware(now)
    enrollment_id = require_enrollment_id(enrollment_id)
    author = require_instance("author", author, Author)
    if tenant_id is not None:
        tenant_id = require_identifier("tenant_id", tenant_id)
    if idempotency_key is not None:
        idempotency_key = require_identifier("idempotency_key", idempotency_key)
    if override is not None:
        override = require_instance("override", override, AdminOverride)

    items = EnrollmentItems.of(enrollment_id, persistence_layer.query(enrollment_id))
    root = items.root
    if root is None or (tenant_id is not None and enrollment_layout.tenant_of(root) != tenant_id):
        raise EnrollmentNotFound(f"no enrollment {enrollment_id!r}")
    if enrollment_layout.is_canceled(root):
        done = _earlier_cancel(items.canceled_date, idempotency_key)
        if done is not None:
            return CancelResult(enrollment_id=enrollment_id, returned_seat=done.returned_seat)
        raise CancelNotAllowed(f"enrollment {enrollment_id!r} is already canceled")
    status = enrollment_layout.known_status_of(root)
    if status is None or not transitions.allowed(Step.CANCEL, status):
        raise CancelNotAllowed(
            f"enrollment {enrollment_id!r} is {root.get(enrollment_layout.STATUS)}: only "
            "PENDING or IN_PROGRESS enrollments can be canceled"
        )
    expiry = items.scheduled_event(LifecycleEvent.COURSE_EXPIRED)
    if expiry is None or expiry.due <= now:
        # Expired, whether or not the expiry was delivered yet (or DynamoDB's TTL took its
        # item first): an expired enrollment keeps its seat.
        raise CancelNotAllowed(f"the access period of enrollment {enrollment_id!r} has ended")
    policy = items.cancel_policy
    if override is None:
        if policy is None:
            raise CancelNotAllowed(f"enrollment {enrollment_id!r} has no cancel policy")
        if expired(policy, now):
            raise CancelNotAllowed(f"the cancel window of enrollment {enrollment_id!r} has passed")

    record = CancelRecord(
        request_token=str(uuid.uuid4()),
        idempotency_key=idempotency_key,
        returned_seat=_new_seat(items),
        override=override,
    )
    if override is not None:
        # The audit trail: who overrode the policy (an id, never a name), on what.
        logger.info(
            "administrator %s cancels enrollment %s overriding its cancel policy",
            author.id,
            enrollment_id,
        )
    # An expired lock blocks nobody, DynamoDB's TTL deletes it, and it may already be a
    # newer enrollment's: release only a live one (still conditioned on owning it).
    lock_metadata = items.lock_metadata
    release_lock = lock_metadata is not None and not expired(lock_metadata, now)
    try:
        applied = _send(persistence_layer, items, author, now, record, release_lock)
    except _LockTakenOver:
        # Only with clocks out of step: our lock was taken between our read and our write.
        applied = _send(persistence_layer, items, author, now, record, False)
    return CancelResult(enrollment_id=enrollment_id, returned_seat=applied.returned_seat)


def _earlier_cancel(
    canceled_date: Mapping[str, Any] | None, idempotency_key: str | None
) -> CancelRecord | None:
    """The stored cancel, when it was made with this idempotency key (a retry of it)."""
    if canceled_date is None or idempotency_key is None:
        return None
    earlier = enrollment_layout.parse_cancel_record(canceled_date)
    return earlier if earlier.idempotency_key == idempotency_key else None


def _send(
    persistence_layer: PersistenceLayer,
    items: EnrollmentItems,
    author: Author,
    now: datetime,
    record: CancelRecord,
    release_lock: bool,
) -> CancelRecord:
    """Send the cancel; the cancel that applied: ``record``, or an earlier one with the
    same idempotency key."""
    root = items.root
    assert root is not None
    enrollment_id = items.enrollment_id
    try:
        # The builder's own ClientRequestToken covers re-sends of this very request;
        # request_token, stored in canceled_date, lets a later attempt recognise it.
        with persistence_layer.transact_writer() as transaction:
            # First, so that a retry of an applied cancel fails here and is recognised.
            transaction.put(
                item=enrollment_layout.canceled_date_item(enrollment_id, author, now, record),
                cond=item_absent(),
                exc_cls=_AlreadyCanceled,
            )
            transaction.update(
                key=enrollment_layout.root_key(enrollment_id),
                set=enrollment_layout.canceled_changes(root, now),
                cond=enrollment_layout.status_in_for(
                    transitions.sources(Step.CANCEL), enrollment_layout.tenant_of(root)
                ),
                exc_cls=CancelNotAllowed,
            )
            if record.override is None:
                transaction.delete(
                    key=enrollment_layout.cancel_policy_key(enrollment_id),
                    cond=enrollment_layout.cancel_policy_live(now),
                    exc_cls=CancelNotAllowed,
                )
            elif items.cancel_policy is not None:
                transaction.delete(key=enrollment_layout.cancel_policy_key(enrollment_id))
            # Every event's item, read or not: a step may have scheduled one since the read.
            expiry = schedule.event_sort_key(LifecycleEvent.COURSE_EXPIRED)
            for schedule_key in schedule.every_event_key(enrollment_id, items.by_sk):
                transaction.delete(
                    key=schedule_key,
                    cond=schedule.not_due_by(now) if schedule_key.sk == expiry else None,
                    exc_cls=CancelNotAllowed,
                )
            lock_metadata = items.lock_metadata
            if lock_metadata is not None:
                transaction.delete(key=lock.lock_metadata_key(enrollment_id))
                if release_lock:
                    transaction.delete(
                        key=lock.lock_item_key(lock.locked_hash(lock_metadata)),
                        cond=lock.held_by(enrollment_id),
                        exc_cls=_LockTakenOver,
                    )
            if record.returned_seat is not None:
                _return_seat(transaction, persistence_layer, items, record.returned_seat, now)
    except _AlreadyCanceled as already:
        previous = already.failed_item or {}
        if enrollment_layout.parse_cancel_record(previous).request_token == record.request_token:
            return record  # our own earlier attempt was applied; its response was lost
        earlier = _earlier_cancel(previous, record.idempotency_key)
        if earlier is not None:
            return earlier  # a concurrent call with the same key applied it
        raise CancelNotAllowed(
            f"enrollment {enrollment_id!r} is already canceled",
            reasons=already.reasons,
            failed_index=already.failed_index,
        ) from None
    return record


def _new_seat(items: EnrollmentItems) -> Vacancy | None:
    """The seat cancel() will put back: same order, a new slot."""
    taken = items.taken_seat
    if taken is None:
        return None
    return Vacancy(org_id=taken.org_id, order_id=taken.order_id, slot_id=str(uuid.uuid4()))


def _return_seat(
    transaction: TransactionBuilder,
    persistence_layer: PersistenceLayer,
    items: EnrollmentItems,
    new_seat: Vacancy,
    now: datetime,
) -> None:
    root, taken = items.root, items.taken_seat
    assert root is not None and taken is not None
    orders = persistence_layer.order_table_name
    course = enrollment_layout.course_of(root)
    transaction.delete(
        key=seat.parent_vacancy_key(items.enrollment_id),
        cond=item_exists(),
        exc_cls=CancelNotAllowed,
    )
    transaction.condition(
        key=order.order_key(new_seat.order_id),
        cond=order.order_exists(),
        exc_cls=OrderNotFound,
        table_name=orders,
    )
    transaction.put(item=seat.seat_item(new_seat, course, now), cond=item_absent())
    rolled_back = seat.mark_rolled_back(now)
    transaction.update(
        key=seat.record_key(taken.order_id, taken.slot_id),
        set=rolled_back.set,
        cond=rolled_back.cond,
        table_name=orders,
    )
    transaction.put(
        item=seat.available_record(new_seat, course_id=course.id, now=now),
        cond=item_absent(),
        table_name=orders,
    )
