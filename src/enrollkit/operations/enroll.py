"""enroll(): one transaction that writes an enrollment and everything that goes with it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from boto3.dynamodb.conditions import Attr

from enrollkit import keys
from enrollkit.errors import (
    CancellationReason,
    DeduplicationConflictError,
    EnrollmentIdConflict,
    OrderNotFound,
    TransactionCanceled,
    VacancyUnavailable,
)
from enrollkit.models import (
    CancelPolicy,
    DeduplicationWindow,
    Enrollment,
    EnrollOutcome,
    SeatStatus,
    Tenant,
    Vacancy,
)
from enrollkit.operations._validation import require_instance
from enrollkit.persistence.base import PersistenceLayer
from enrollkit.timing import (
    cancel_deadline,
    enrollment_schedule,
    iso,
    lock_expiry,
    require_aware,
    ttl,
)
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
        VacancyUnavailable: The seat is used, missing, for another course, or of another
            organization than ``tenant``.
        OrderNotFound: The seat's order does not exist.
        InvalidInput: A naive ``now``, a window not shorter than the access period, an
            argument of the wrong type.
    """
    now = require_aware(now)
    require_instance("enrollment", enrollment, Enrollment)
    require_instance("tenant", tenant, Tenant)
    if vacancy is not None:
        require_instance("vacancy", vacancy, Vacancy)
        if vacancy.org_id != tenant.id:
            # A tenant enrolls only from its own organization's orders.
            raise VacancyUnavailable(
                f"the seat belongs to organization {vacancy.org_id!r}, not to the tenant"
            )
    if deduplication_window is not None:
        require_instance("deduplication_window", deduplication_window, DeduplicationWindow)
    if cancel_policy is not None:
        require_instance("cancel_policy", cancel_policy, CancelPolicy)

    created = iso(now)
    root = _enrollment_item(enrollment, tenant, created)
    try:
        with persistence_layer.transact_writer() as transaction:
            transaction.put(
                item=root, cond=Attr(keys.PARTITION_KEY).not_exists(), exc_cls=_EnrollmentIdTaken
            )
            transaction.put(
                item={
                    **keys.enrollment_item_key(enrollment.id, keys.TENANT_SK).as_key(),
                    "tenant_id": f"ORG#{tenant.id}",
                    "name": tenant.name,
                    "create_date": created,
                }
            )
            _schedule(transaction, enrollment, now)
            _lock(transaction, enrollment, tenant.id, now, deduplication_window)
            if vacancy is not None:
                _consume_seat(transaction, persistence_layer, enrollment, vacancy, created)
            if cancel_policy is not None:
                policy: dict[str, Any] = {
                    **keys.enrollment_item_key(enrollment.id, keys.CANCEL_POLICY_SK).as_key(),
                    "create_date": created,
                }
                if cancel_policy.days is not None:
                    policy["ttl"] = ttl(cancel_deadline(now, cancel_policy.days))
                transaction.put(item=policy)
    except DeduplicationConflictError as conflict:
        holder = conflict.failed_item
        if holder is not None and holder.get("tenant_id") == tenant.id:
            raise
        # The lock is shared by all tenants; another tenant's holder stays anonymous.
        raise DeduplicationConflictError(
            reasons=_without_items(conflict.reasons), failed_index=conflict.failed_index
        ) from None
    except _EnrollmentIdTaken as taken:
        existing = taken.failed_item or persistence_layer.get_item(
            keys.enrollment_key(enrollment.id)
        )
        if existing is not None and _same_enrollment(existing, root):
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


def _enrollment_item(enrollment: Enrollment, tenant: Tenant, created: str) -> dict[str, Any]:
    return {
        **enrollment.model_dump(mode="json"),
        keys.SORT_KEY: keys.ENROLLMENT_SK,
        "create_date": created,
        "metadata__tenant_id": tenant.id,
        "metadata__related_ids": {tenant.id, enrollment.user.id},
    }


def _same_enrollment(existing: Mapping[str, Any], wanted: Mapping[str, Any]) -> bool:
    """Same user, course and tenant: the enrollment a retry would have written."""
    return all(
        existing.get(name) == wanted[name] for name in ("user", "course", "metadata__tenant_id")
    )


def _schedule(transaction: TransactionBuilder, enrollment: Enrollment, now: datetime) -> None:
    user, course = enrollment.user, enrollment.course
    for event, due in enrollment_schedule(now, course.access_period).items():
        transaction.put(
            item={
                **keys.schedule_key(enrollment.id, event).as_key(),
                "name": user.name,
                "email": user.email,
                "course": course.name,
                "create_date": iso(now),
                "ttl": ttl(due),
            }
        )


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
    lock_key = keys.lock_key(enrollment.user.id, enrollment.course.id)
    lock_is_free = Attr(keys.SORT_KEY).not_exists() | Attr(keys.TTL_ATTRIBUTE).lte(ttl(now))
    if window is None:  # only check that nobody holds the lock
        transaction.condition(key=lock_key, cond=lock_is_free, exc_cls=DeduplicationConflictError)
        return
    # Raises InvalidInput for an impossible window; the block then sends nothing.
    lock_until = lock_expiry(now, enrollment.course.access_period, window.offset_days)
    created, lock_ttl = iso(now), ttl(lock_until)
    transaction.put(
        item={
            **lock_key.as_key(),
            "enrollment_id": enrollment.id,
            # Lets a conflict show the holder to its own tenant only.
            "tenant_id": tenant_id,
            "create_date": created,
            "ttl": lock_ttl,
        },
        cond=lock_is_free,
        exc_cls=DeduplicationConflictError,
    )
    transaction.put(
        item={
            **keys.enrollment_item_key(enrollment.id, keys.LOCK_METADATA_SK).as_key(),
            "hash": lock_key.sk,
            "create_date": created,
            "ttl": lock_ttl,
        }
    )
    transaction.put(
        item={
            **keys.enrollment_item_key(enrollment.id, keys.DEDUPLICATION_WINDOW_SK).as_key(),
            "offset_days": window.offset_days,
            "create_date": created,
        }
    )


def _consume_seat(
    transaction: TransactionBuilder,
    persistence_layer: PersistenceLayer,
    enrollment: Enrollment,
    vacancy: Vacancy,
    created: str,
) -> None:
    seat = keys.seat_key(vacancy.org_id, vacancy.order_id, vacancy.slot_id)
    orders = persistence_layer.order_table_name
    # Seats move only while their order exists (cancel() needs it to return the seat).
    transaction.condition(
        key=keys.order_key(vacancy.order_id),
        cond=Attr(keys.SORT_KEY).exists(),
        exc_cls=OrderNotFound,
        table_name=orders,
    )
    transaction.delete(
        key=seat,
        cond=Attr(keys.SORT_KEY).exists() & Attr("course.id").eq(enrollment.course.id),
        exc_cls=VacancyUnavailable,
    )
    transaction.update(
        key=keys.generated_item_key(vacancy.order_id, vacancy.slot_id),
        set={
            "status": SeatStatus.USED.value,
            "update_date": created,
            "enrollment_id": enrollment.id,
        },
        cond=Attr("status").eq(SeatStatus.AVAILABLE.value),
        exc_cls=VacancyUnavailable,
        table_name=orders,
    )
    transaction.put(
        item={
            **keys.enrollment_item_key(enrollment.id, keys.PARENT_VACANCY_SK).as_key(),
            "vacancy": seat.as_key(),
            "order_id": vacancy.order_id,
            "create_date": created,
        }
    )
