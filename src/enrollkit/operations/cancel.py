"""cancel(): one read of the enrollment's items, then one transaction that undoes enroll()."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from boto3.dynamodb.conditions import Attr

from enrollkit import keys
from enrollkit.errors import (
    CancelNotAllowed,
    EnrollmentNotFound,
    OrderNotFound,
    TransactionCanceled,
)
from enrollkit.models import Author, EnrollmentStatus, SeatStatus, Vacancy
from enrollkit.operations._validation import (
    require_enrollment_id,
    require_identifier,
    require_instance,
)
from enrollkit.operations.seats import generated_item
from enrollkit.persistence.base import PersistenceLayer
from enrollkit.timing import iso, require_aware, ttl
from enrollkit.transaction.builder import TransactionBuilder

_CANCELED = EnrollmentStatus.CANCELED.value


@dataclass(frozen=True)
class CancelResult:
    """What cancel() did. ``returned_seat`` is the seat put back into the order, if any."""

    enrollment_id: str
    returned_seat: Vacancy | None = None


class _AlreadyCanceled(TransactionCanceled):
    """``canceled_date`` exists: this cancel was applied already (a retry), or another was."""


class _LockTakenOver(TransactionCanceled):
    """The lock item now belongs to a newer enrollment (ours expired): leave it alone."""


@dataclass(frozen=True)
class _EnrollmentItems:
    """The enrollment's item collection, as read by the one Query cancel() makes."""

    by_sk: Mapping[str, Mapping[str, Any]]

    @property
    def root(self) -> Mapping[str, Any] | None:
        return self.by_sk.get(keys.ENROLLMENT_SK)

    def get(self, sk: str) -> Mapping[str, Any] | None:
        return self.by_sk.get(sk)

    @property
    def schedule_sks(self) -> list[str]:
        return [sk for sk in self.by_sk if sk.startswith(keys.SCHEDULES_PREFIX)]


def cancel(
    enrollment_id: str,
    *,
    author: Author,
    persistence_layer: PersistenceLayer,
    tenant_id: str | None = None,
    now: datetime | None = None,
) -> CancelResult:
    """Cancel an enrollment: status CANCELED, who canceled it, every schedule and its lock
    removed, its seat returned to the order. One Query, then one transaction.

    Args:
        enrollment_id: The enrollment to cancel.
        author: Who cancels it (recorded in its ``canceled_date`` item).
        persistence_layer: Where the enrollment lives.
        tenant_id: When given, the enrollment must belong to this tenant (else
            ``EnrollmentNotFound``, so one tenant cannot probe another's ids).
        now: The cancel time, timezone-aware; default the current UTC time.

    Returns:
        The enrollment id, and the new seat put back into the order, if the enrollment
        had taken one.

    Raises:
        EnrollmentNotFound: No such enrollment, or ``tenant_id`` given and different.
        CancelNotAllowed: No cancel policy, its window has passed, or already canceled.
        OrderNotFound: The order of the enrollment's seat does not exist.
        InvalidInput: A bad id, a naive ``now``, an argument of the wrong type.
    """
    now = require_aware(now)
    enrollment_id = require_enrollment_id(enrollment_id)
    require_instance("author", author, Author)
    if tenant_id is not None:
        tenant_id = require_identifier("tenant_id", tenant_id)

    items = _EnrollmentItems(
        {item[keys.SORT_KEY]: item for item in persistence_layer.query(enrollment_id)}
    )
    root = items.root
    if root is None or (tenant_id is not None and root.get("metadata__tenant_id") != tenant_id):
        raise EnrollmentNotFound(f"no enrollment {enrollment_id!r}")
    if root.get("status") == _CANCELED:
        raise CancelNotAllowed(f"enrollment {enrollment_id!r} is already canceled")
    policy = items.get(keys.CANCEL_POLICY_SK)
    if policy is None:
        raise CancelNotAllowed(f"enrollment {enrollment_id!r} has no cancel policy")
    if _expired(policy, now):
        raise CancelNotAllowed(f"the cancel window of enrollment {enrollment_id!r} has passed")

    request_token = str(uuid.uuid4())
    returned_seat = _new_seat(items)
    # An expired lock blocks nobody, DynamoDB's TTL deletes it, and it may already be a
    # newer enrollment's: release only a live one (still conditioned on owning it).
    lock_metadata = items.get(keys.LOCK_METADATA_SK)
    release_lock = lock_metadata is not None and not _expired(lock_metadata, now)
    try:
        _send(persistence_layer, items, author, now, request_token, returned_seat, release_lock)
    except _LockTakenOver:
        # Only with clocks out of step: our lock was taken between our read and our write.
        _send(persistence_layer, items, author, now, request_token, returned_seat, False)
    return CancelResult(enrollment_id=enrollment_id, returned_seat=returned_seat)


def _send(
    persistence_layer: PersistenceLayer,
    items: _EnrollmentItems,
    author: Author,
    now: datetime,
    request_token: str,
    returned_seat: Vacancy | None,
    release_lock: bool,
) -> None:
    root = items.root
    assert root is not None
    enrollment_id = str(root[keys.PARTITION_KEY])
    try:
        # The builder's own ClientRequestToken covers re-sends of this very request;
        # request_token, stored in canceled_date, lets a later attempt recognise it.
        with persistence_layer.transact_writer() as transaction:
            # First, so that a retry of an applied cancel fails here and is recognised.
            transaction.put(
                item={
                    **keys.enrollment_item_key(enrollment_id, keys.CANCELED_DATE_SK).as_key(),
                    "author": author.model_dump(mode="json"),
                    "create_date": iso(now),
                    "request_token": request_token,
                },
                cond=Attr(keys.SORT_KEY).not_exists(),
                exc_cls=_AlreadyCanceled,
            )
            transaction.update(
                key=keys.enrollment_key(enrollment_id),
                set={"status": _CANCELED, "update_date": iso(now)},
                cond=Attr("status").ne(_CANCELED)
                & Attr("metadata__tenant_id").eq(root.get("metadata__tenant_id")),
                exc_cls=CancelNotAllowed,
            )
            transaction.delete(
                key=keys.enrollment_item_key(enrollment_id, keys.CANCEL_POLICY_SK),
                cond=Attr(keys.SORT_KEY).exists()
                & (Attr(keys.TTL_ATTRIBUTE).not_exists() | Attr(keys.TTL_ATTRIBUTE).gt(ttl(now))),
                exc_cls=CancelNotAllowed,
            )
            for sk in items.schedule_sks:
                transaction.delete(key=keys.enrollment_item_key(enrollment_id, sk))
            lock_metadata = items.get(keys.LOCK_METADATA_SK)
            if lock_metadata is not None:
                transaction.delete(
                    key=keys.enrollment_item_key(enrollment_id, keys.LOCK_METADATA_SK)
                )
                if release_lock:
                    transaction.delete(
                        key=keys.lock_item_key(str(lock_metadata["hash"])),
                        cond=Attr("enrollment_id").not_exists()
                        | Attr("enrollment_id").eq(enrollment_id),
                        exc_cls=_LockTakenOver,
                    )
            if returned_seat is not None:
                _return_seat(transaction, persistence_layer, items, returned_seat, now)
    except _AlreadyCanceled as already:
        previous = already.failed_item or {}
        if previous.get("request_token") == request_token:
            return  # our own earlier attempt was applied; its response was lost
        raise CancelNotAllowed(
            f"enrollment {enrollment_id!r} is already canceled",
            reasons=already.reasons,
            failed_index=already.failed_index,
        ) from None


def _expired(item: Mapping[str, Any], now: datetime) -> bool:
    deadline = item.get(keys.TTL_ATTRIBUTE)
    return isinstance(deadline, int) and deadline <= ttl(now)


def _new_seat(items: _EnrollmentItems) -> Vacancy | None:
    """The seat cancel() will put back: same order, a new slot."""
    parent = items.get(keys.PARENT_VACANCY_SK)
    if parent is None:
        return None
    org_id = str(parent["vacancy"][keys.PARTITION_KEY]).removeprefix(keys.VACANCIES_PREFIX)
    return Vacancy(org_id=org_id, order_id=str(parent["order_id"]), slot_id=str(uuid.uuid4()))


def _return_seat(
    transaction: TransactionBuilder,
    persistence_layer: PersistenceLayer,
    items: _EnrollmentItems,
    seat: Vacancy,
    now: datetime,
) -> None:
    root, parent = items.root, items.get(keys.PARENT_VACANCY_SK)
    assert root is not None and parent is not None
    enrollment_id = str(root[keys.PARTITION_KEY])
    orders = persistence_layer.order_table_name
    old_slot = str(parent["vacancy"][keys.SORT_KEY]).removeprefix(f"{seat.order_id}#")
    course = root["course"]
    transaction.delete(
        key=keys.enrollment_item_key(enrollment_id, keys.PARENT_VACANCY_SK),
        cond=Attr(keys.SORT_KEY).exists(),
        exc_cls=CancelNotAllowed,
    )
    transaction.condition(
        key=keys.order_key(seat.order_id),
        cond=Attr(keys.SORT_KEY).exists(),
        exc_cls=OrderNotFound,
        table_name=orders,
    )
    transaction.put(
        item={
            **keys.seat_key(seat.org_id, seat.order_id, seat.slot_id).as_key(),
            "course": course,
            "create_date": iso(now),
        },
        cond=Attr(keys.SORT_KEY).not_exists(),
    )
    transaction.update(
        key=keys.generated_item_key(seat.order_id, old_slot),
        set={"status": SeatStatus.ROLLBACK.value, "update_date": iso(now)},
        cond=Attr(keys.SORT_KEY).exists(),
        table_name=orders,
    )
    transaction.put(
        item=generated_item(seat, course_id=str(course["id"]), now=now),
        cond=Attr(keys.SORT_KEY).not_exists(),
        table_name=orders,
    )
