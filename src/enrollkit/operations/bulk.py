"""enroll_many(): enroll a list of users into a course from an order's seats."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Any

from pydantic import ValidationError

from enrollkit import keys
from enrollkit.errors import (
    DeduplicationConflictError,
    InvalidInput,
    VacancyUnavailable,
)
from enrollkit.models import (
    CancelPolicy,
    Course,
    DeduplicationWindow,
    Enrollment,
    EnrollOutcome,
    Tenant,
    User,
    Vacancy,
)
from enrollkit.operations._validation import require_identifier, require_instance
from enrollkit.operations.enroll import enroll
from enrollkit.operations.seats import seat_ledger
from enrollkit.persistence.base import PersistenceLayer
from enrollkit.timing import require_aware

_ENROLLMENT_NAMESPACE = uuid.UUID("0b6f8f61-4a8e-4f1e-8d2b-8f3f1c1e6a90")


class BulkOutcome(str, Enum):
    """What enroll_many() did for one user."""

    ENROLLED = "ENROLLED"
    ALREADY_ENROLLED = "ALREADY_ENROLLED"
    NO_SEAT = "NO_SEAT"
    INVALID = "INVALID"


@dataclass(frozen=True)
class BulkResult:
    """The outcome for one user of enroll_many(), in input order."""

    user_id: str | None
    outcome: BulkOutcome
    enrollment_id: str | None = None
    detail: str | None = None


def bulk_enrollment_id(order_id: str, course_id: str, user_id: str) -> str:
    """The id enroll_many() gives a user's enrollment: the same on every run, so a
    re-run recognises the enrollments an earlier run made."""
    return str(uuid.uuid5(_ENROLLMENT_NAMESPACE, f"{order_id}#{course_id}#{user_id}"))


class _SeatPool:
    """The order's available seats, shared by the workers."""

    def __init__(self, seats: Sequence[Vacancy]) -> None:
        self._seats = list(reversed(seats))
        self._lock = threading.Lock()

    def take(self) -> Vacancy | None:
        with self._lock:
            return self._seats.pop() if self._seats else None

    def give_back(self, seat: Vacancy) -> None:
        with self._lock:
            self._seats.append(seat)


def enroll_many(
    users: Sequence[User | Mapping[str, Any]],
    *,
    course: Course,
    tenant: Tenant,
    order_id: str,
    persistence_layer: PersistenceLayer,
    deduplication_window: DeduplicationWindow | None = None,
    cancel_policy: CancelPolicy | None = None,
    concurrency: int = 8,
    now: datetime | None = None,
) -> list[BulkResult]:
    """Enroll ``users`` into ``course`` for ``tenant``, each taking one of the order's seats.

    Each user is one enroll() (one transaction, seat included), run ``concurrency`` at a
    time, so a seat is taken only by an enrollment that was written. Enrollment ids
    derive from (order, course, user): re-running after a partial failure finds the
    enrollments already made (``ALREADY_ENROLLED``) and takes no extra seat.
    A user who is not valid gets ``INVALID``; when seats run out, ``NO_SEAT`` (unless
    the user's enrollment exists by then: ``ALREADY_ENROLLED``).
    """
    now = require_aware(now)
    require_instance("course", course, Course)
    require_instance("tenant", tenant, Tenant)
    order_id = require_identifier("order_id", order_id)
    if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
        raise InvalidInput("concurrency must be a positive int")

    ledger = seat_ledger(order_id=order_id, persistence_layer=persistence_layer)
    holders = ledger.holders()
    pool = _SeatPool([seat for seat in ledger.available(course.id) if seat.org_id == tenant.id])

    def enroll_one(candidate: User | Mapping[str, Any]) -> BulkResult:
        try:
            user = candidate if isinstance(candidate, User) else User.model_validate(candidate)
        except ValidationError as error:
            user_id = candidate.get("id") if isinstance(candidate, Mapping) else None
            return BulkResult(
                str(user_id) if user_id is not None else None,
                BulkOutcome.INVALID,
                detail=str(error),
            )
        enrollment_id = bulk_enrollment_id(order_id, course.id, user.id)
        if enrollment_id in holders:
            return BulkResult(user.id, BulkOutcome.ALREADY_ENROLLED, enrollment_id)
        enrollment = Enrollment(id=enrollment_id, user=user, course=course)
        while (seat := pool.take()) is not None:
            try:
                outcome = enroll(
                    enrollment,
                    tenant=tenant,
                    persistence_layer=persistence_layer,
                    vacancy=seat,
                    deduplication_window=deduplication_window,
                    cancel_policy=cancel_policy,
                    now=now,
                )
            except VacancyUnavailable:
                continue  # taken since the ledger was read: try the next seat
            except DeduplicationConflictError as conflict:
                pool.give_back(seat)
                return BulkResult(user.id, BulkOutcome.ALREADY_ENROLLED, None, str(conflict))
            except InvalidInput as error:
                pool.give_back(seat)
                return BulkResult(user.id, BulkOutcome.INVALID, enrollment_id, str(error))
            if outcome is EnrollOutcome.CREATED:
                return BulkResult(user.id, BulkOutcome.ENROLLED, enrollment_id)
            pool.give_back(seat)
            return BulkResult(user.id, BulkOutcome.ALREADY_ENROLLED, enrollment_id)
        # No seat left. The ledger was read before this run's writes: another run may
        # have enrolled this user since (taking the seats this one counted on).
        if persistence_layer.get_item(keys.enrollment_key(enrollment_id)) is not None:
            return BulkResult(user.id, BulkOutcome.ALREADY_ENROLLED, enrollment_id)
        return BulkResult(user.id, BulkOutcome.NO_SEAT, enrollment_id)

    with ThreadPoolExecutor(max_workers=concurrency) as executor:
        return list(executor.map(enroll_one, users))
