"""enroll(): one transaction that writes an enrollment and everything that goes with it."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from enrollkit.errors import (
    CanceledEnrollmentId,
    CancellationReason,
    DeduplicationConflictError,
    EnrollmentIdConflict,
    InvalidInput,
    TransactionCanceled,
    VacancyUnavailable,
)
from enrollkit.layout import enrollment as enrollment_layout
from enrollkit.layout import lock, order, schedule, seat
from enrollkit.models import (
    CancelPolicy,
    DeduplicationWindow,
    Enrollment,
    EnrollmentStatus,
    EnrollOutcome,
    Tenant,
    Vacancy,
)
from enrollkit.operations._validation import require_instance
from enrollkit.operations.orders import OrderRefused, order_refusal
from enrollkit.persistence.base import PersistenceLayer
from enrollkit.timing import enrollment_schedule, lock_expiry, require_aware
from enrollkit.transaction.builder import TransactionBuilder


class _EnrollmentIdTaken(TransactionCanceled):
    """The ``0`` item exists: a retry of this very enroll, or an id conflict."""


def enroll(
    enrollment: Enrollment,
    *,
    tenant: Tenant,
    persistence_layer: PersistenceLayer,
    vacancy: Vacancy | None = None,
    deduplication_window: DeduplicationWindow | None = None,
    cancel_policy: CancelPolicy | None = None,
    now: datetime | None = None,
) -> EnrollOutcome:
    """Enroll ``enrollment.user`` into ``enrollment.course`` for ``tenant``, atomically.

    Writes the enrollment, its tenant metadata and lifecycle schedule; takes the
    (user, course) lock when a ``deduplication_window`` is given (and checks it is free
    either way); consumes ``vacancy`` when given; records ``cancel_policy`` when given.
    All of it is one transaction: nothing is written when it raises.

    Args:
        enrollment: The user, the course, and the enrollment's id (reuse it to retry).
        tenant: The organization the enrollment belongs to.
        persistence_layer: Where to write: ``DynamoDBPersistence``,
            ``InMemoryPersistence``, or any ``PersistenceLayer``.
        vacancy: A prepaid seat of the tenant's order to consume, or ``None``.
        deduplication_window: Take the (user, course) lock until ``offset_days`` before
            access ends; ``None`` only checks that no other enrollment holds it.
        cancel_policy: Allow cancel() for ``days`` after enrollment (``None`` days: no
            limit); without a policy the enrollment cannot be canceled.
        now: The enrollment time, timezone-aware; default the current UTC time.

    Returns:
        ``EnrollOutcome.CREATED``, or ``EnrollOutcome.ALREADY_ENROLLED`` when this very
        enrollment (same id, user, course and tenant) exists already: a retry.

    Raises:
        DeduplicationConflictError: The lock is held by another, unexpired enrollment.
        EnrollmentIdConflict: The id exists with another user, course or tenant.
        CanceledEnrollmentId: (an ``EnrollmentIdConflict``) this very enrollment exists
            and was canceled: an id is used once, enroll again with a new one.
        VacancyUnavailable: The seat is used, missing, for another course, or of another
            organization than ``tenant``.
        OrderNotFound: The seat's order does not exist.
        OrderOwnershipConflict: The seat's order belongs to another organization.
        InvalidInput: A naive ``now``, a window not shorter than the access period, an
            argument of the wrong type, a status other than PENDING, a key over
            DynamoDB's size limits.
    """
    now = require_aware(now)
    enrollment = require_instance("enrollment", enrollment, Enrollment)
    tenant = require_instance("tenant", tenant, Tenant)
    if enrollment.status is not EnrollmentStatus.PENDING:
        # A new enrollment is PENDING. A CANCELED one would take a seat and a lock that
        # cancel() then refuses to give back; the others skip the lifecycle's steps.
        raise InvalidInput(
            f"enroll() writes new enrollments, which are PENDING, not {enrollment.status.value}"
        )
    if vacancy is not None:
        vacancy = require_instance("vacancy", vacancy, Vacancy)
        if vacancy.org_id != tenant.id:
            # A tenant enrolls only from its own organization's orders.
            raise VacancyUnavailable(
                f"the seat belongs to organization {vacancy.org_id!r}, not to the tenant"
            )
        seat.require_keys_fit(vacancy)
    if deduplication_window is not None:
        deduplication_window = require_instance(
            "deduplication_window", deduplication_window, DeduplicationWindow
        )
    if cancel_policy is not None:
        cancel_policy = require_instance("cancel_policy", cancel_policy, CancelPolicy)

    root = enrollment_layout.root_item(enrollment, tenant, now)
    try:
        with persistence_layer.transact_writer() as transaction:
            transaction.put(
                item=root, cond=enrollment_layout.root_is_new(), exc_cls=_EnrollmentIdTaken
            )
            transaction.put(item=enrollment_layout.tenant_item(enrollment.id, tenant, now))
            for item in schedule.scheduled_items(
                enrollment.id,
                schedule.Recipient.of(enrollment),
                enrollment_schedule(now, enrollment.course.access_period),
                now,
            ):
                transaction.put(item=item)
            _lock(transaction, enrollment, tenant.id, now, deduplication_window)
            if vacancy is not None:
                _consume_seat(transaction, persistence_layer, enrollment, vacancy, now)
            if cancel_policy is not None:
                transaction.put(
                    item=enrollment_layout.cancel_policy_item(enrollment.id, cancel_policy, now)
                )
    except DeduplicationConflictError as conflict:
        holder = conflict.failed_item
        if holder is not None and lock.holder_tenant(holder) == tenant.id:
            raise
        # The lock is shared by all tenants; another tenant's holder stays anonymous.
        raise DeduplicationConflictError(
            reasons=_without_items(conflict.reasons), failed_index=conflict.failed_index
        ) from None
    except OrderRefused as refused:
        assert vacancy is not None
        raise order_refusal(refused, vacancy.order_id) from None
    except _EnrollmentIdTaken as taken:
        existing = taken.failed_item or persistence_layer.get_item(
            enrollment_layout.root_key(enrollment.id)
        )
        if existing is not None and enrollment_layout.same_enrollment(existing, root):
            if enrollment_layout.is_canceled(existing):
                # Not "already enrolled": it was, and was canceled. The id is spent.
                raise CanceledEnrollmentId(
                    f"enrollment {enrollment.id!r} was canceled; enroll again with a new id",
                    reasons=_without_items(taken.reasons),
                    failed_index=taken.failed_index,
                ) from None
            return EnrollOutcome.ALREADY_ENROLLED
        raise EnrollmentIdConflict(
            f"enrollment {enrollment.id!r} exists with another user, course or tenant",
            # Without the items: the existing enrollment may be another tenant's.
            reasons=_without_items(taken.reasons),
            failed_index=taken.failed_index,
        ) from None
    return EnrollOutcome.CREATED


def _without_items(reasons: Sequence[CancellationReason]) -> list[CancellationReason]:
    return [CancellationReason(reason.code, reason.message) for reason in reasons]


def _lock(
    transaction: TransactionBuilder,
    enrollment: Enrollment,
    tenant_id: str,
    now: datetime,
    window: DeduplicationWindow | None,
) -> None:
    """Check (and with a window, take) the (user, course) lock in one operation.

    The lock is free when absent or expired: DynamoDB deletes expired items up to
    days late, so an expired lock that still exists must not block.
    """
    hash_ = lock.enrollment_lock_hash(enrollment)  # enroll() validated the enrollment
    if window is None:  # only check that nobody holds the lock
        transaction.condition(
            key=lock.lock_item_key(hash_),
            cond=lock.lock_is_free(now),
            exc_cls=DeduplicationConflictError,
        )
        return
    # Raises InvalidInput for an impossible window; the block then sends nothing.
    until = lock_expiry(now, enrollment.course.access_period, window.offset_days)
    transaction.put(
        item=lock.lock_item(
            hash_, enrollment_id=enrollment.id, tenant_id=tenant_id, now=now, until=until
        ),
        cond=lock.lock_is_free(now),
        exc_cls=DeduplicationConflictError,
    )
    transaction.put(item=lock.lock_metadata_item(enrollment.id, hash_, now=now, until=until))
    transaction.put(item=lock.deduplication_window_item(enrollment.id, window, now))


def _consume_seat(
    transaction: TransactionBuilder,
    persistence_layer: PersistenceLayer,
    enrollment: Enrollment,
    vacancy: Vacancy,
    now: datetime,
) -> None:
    orders = persistence_layer.order_table_name
    # Seats move only while their order exists (cancel() needs it to return the seat),
    # and only the owner's (an order from before owners has none: the seat's own
    # organization, checked against the tenant, is then what counts).
    transaction.condition(
        key=order.order_key(vacancy.order_id),
        cond=order.order_usable_by(vacancy.org_id),
        exc_cls=OrderRefused,
        table_name=orders,
    )
    transaction.delete(
        key=seat.seat_key(vacancy),
        cond=seat.seat_is_for(enrollment.course),
        exc_cls=VacancyUnavailable,
    )
    used = seat.mark_used(enrollment.id, now)
    transaction.update(
        key=seat.record_key(vacancy.order_id, vacancy.slot_id),
        set=used.set,
        cond=used.cond,
        exc_cls=VacancyUnavailable,
        table_name=orders,
    )
    transaction.put(item=seat.parent_vacancy_item(enrollment.id, vacancy, now))
