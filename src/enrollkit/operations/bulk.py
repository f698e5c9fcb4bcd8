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

from enrollkit.errors import (
    CanceledEnrollmentId,
    DeduplicationConflictError,
    EnrollkitError,
    EnrollmentIdConflict,
    InvalidInput,
    VacancyUnavailable,
)
from enrollkit.layout import enrollment as enrollment_layout
from enrollkit.models import (
    CancelPolicy,
    Course,
    DeduplicationWindow,
    Enrollment,
    EnrollOutcome,
    SeatStatus,
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
_TENANT_ENROLLMENT_NAMESPACE = uuid.UUID("6a3c0f2e-93d4-4a57-b1a8-2c7e5d4f9b16")
# A user enrolled and canceled this many times in one course and order is not
# enrolled again by enroll_many() (a bound on the ids it tries).
MAX_GENERATIONS = 100


class BulkOutcome(str, Enum):
    """What enroll_many() did for one user."""

    ENROLLED = "ENROLLED"
    ALREADY_ENROLLED = "ALREADY_ENROLLED"
    NO_SEAT = "NO_SEAT"
    INVALID = "INVALID"
    FAILED = "FAILED"
    """An error for this user (in ``detail``); nothing was written for them: re-run."""


@dataclass(frozen=True)
class BulkResult:
    """The outcome for one user of enroll_many(), in input order."""

    user_id: str | None
    outcome: BulkOutcome
    enrollment_id: str | None = None
    detail: str | None = None


def bulk_enrollment_id(
    tenant_id: str, order_id: str, course_id: str, user_id: str, generation: int = 0
) -> str:
    """The id enroll_many() gives a user's enrollment: the same on every run, so a
    re-run recognises the enrollments an earlier run made. The tenant is part of it, so
    two tenants never derive one id. ``generation`` counts the user's canceled
    enrollments before this one (a canceled id is spent)."""
    name = f"{tenant_id}#{order_id}#{course_id}#{user_id}#{generation}"
    return str(uuid.uuid5(_TENANT_ENROLLMENT_NAMESPACE, name))


def _tenantless_enrollment_id(order_id: str, course_id: str, user_id: str) -> str:
    """The id versions up to 0.1.0 derived (without the tenant), to recognise their
    enrollments on a re-run."""
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
    derive from (tenant, order, course, user): re-running after a partial failure finds
    the enrollments already made (``ALREADY_ENROLLED``) and takes no extra seat. A user
    whose enrollment was canceled is enrolled again, under the next id of the same
    derivation (a canceled id is spent).

    One result per input entry, in input order, whatever happens to the others: a user
    who is not valid gets ``INVALID``; when seats run out, ``NO_SEAT`` (unless the
    user's enrollment exists by then: ``ALREADY_ENROLLED``); a user listed again gets
    the first listing's result as ``ALREADY_ENROLLED`` (``INVALID`` if the details
    differ); an error for one user is ``FAILED`` for that user, with nothing written
    for them.

    Raises, before writing anything: ``OrderNotFound``, ``OrderOwnershipConflict`` (the
    order is another organization's), ``InvalidInput``.
    """
    now = require_aware(now)
    course = require_instance("course", course, Course)
    tenant = require_instance("tenant", tenant, Tenant)
    order_id = require_identifier("order_id", order_id)
    if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
        raise InvalidInput("concurrency must be a positive int")

    # Only the tenant's seats (and another organization's order is refused here).
    ledger = seat_ledger(order_id=order_id, persistence_layer=persistence_layer, org_id=tenant.id)
    holders = ledger.holders()
    released = {
        record.enrollment_id
        for record in ledger.seats
        if record.status is SeatStatus.ROLLBACK and record.enrollment_id is not None
    }
    # Seats of the course and of the original layout (course unknown): enroll() checks
    # the seat's course in its transaction and refuses a seat of other terms.
    pool = _SeatPool(
        [
            record.vacancy
            for record in ledger.seats
            if record.status is SeatStatus.AVAILABLE and record.course_id in (course.id, None)
        ]
    )

    def enroll_with_a_seat(user: User, enrollment_id: str) -> BulkResult | None:
        """The user's result, or ``None`` when ``enrollment_id`` is a canceled one."""
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
                continue  # taken since the ledger was read, or of other terms: next seat
            except CanceledEnrollmentId:
                pool.give_back(seat)
                return None
            except DeduplicationConflictError as conflict:
                pool.give_back(seat)
                return BulkResult(user.id, BulkOutcome.ALREADY_ENROLLED, None, str(conflict))
            except EnrollmentIdConflict:
                pool.give_back(seat)
                detail = "this user's enrollment exists with other user details or course terms"
                return BulkResult(user.id, BulkOutcome.INVALID, enrollment_id, detail)
            except InvalidInput as error:
                pool.give_back(seat)
                return BulkResult(user.id, BulkOutcome.INVALID, enrollment_id, str(error))
            except EnrollkitError as error:
                pool.give_back(seat)
                return BulkResult(user.id, BulkOutcome.FAILED, enrollment_id, str(error))
            if outcome is EnrollOutcome.CREATED:
                return BulkResult(user.id, BulkOutcome.ENROLLED, enrollment_id)
            pool.give_back(seat)
            return BulkResult(user.id, BulkOutcome.ALREADY_ENROLLED, enrollment_id)
        # No seat left. The ledger was read before this run's writes: another run may
        # have enrolled this user since (taking the seats this one counted on).
        try:
            existing = persistence_layer.get_item(enrollment_layout.root_key(enrollment_id))
        except EnrollkitError as error:
            return BulkResult(user.id, BulkOutcome.FAILED, enrollment_id, str(error))
        if existing is not None and not enrollment_layout.is_canceled(existing):
            return BulkResult(user.id, BulkOutcome.ALREADY_ENROLLED, enrollment_id)
        return BulkResult(user.id, BulkOutcome.NO_SEAT, enrollment_id)

    def enroll_one(user: User) -> BulkResult:
        # Enrolled by a version that derived ids without the tenant: still recognised
        # (the ledger lists only the tenant's own seats, so the holder is the tenant's).
        earlier_id = _tenantless_enrollment_id(order_id, course.id, user.id)
        if earlier_id in holders:
            return BulkResult(user.id, BulkOutcome.ALREADY_ENROLLED, earlier_id)
        for generation in range(MAX_GENERATIONS):
            enrollment_id = bulk_enrollment_id(tenant.id, order_id, course.id, user.id, generation)
            if enrollment_id in holders:
                return BulkResult(user.id, BulkOutcome.ALREADY_ENROLLED, enrollment_id)
            if enrollment_id in released:
                continue  # canceled, its seat given back: a spent id
            result = enroll_with_a_seat(user, enrollment_id)
            if result is not None:
                return result
        detail = f"enrolled and canceled {MAX_GENERATIONS} times in this course and order"
        return BulkResult(user.id, BulkOutcome.FAILED, None, detail)

    parsed = [_parse_user(candidate) for candidate in users]
    first_listing: dict[str, int] = {}
    for index, entry in enumerate(parsed):
        if isinstance(entry, User):
            first_listing.setdefault(entry.id, index)
    firsts = sorted(first_listing.values())
    with ThreadPoolExecutor(max_workers=concurrency) as executor:
        done = dict(zip(firsts, executor.map(enroll_one, [parsed[i] for i in firsts]), strict=True))
    results: list[BulkResult] = []
    for index, entry in enumerate(parsed):
        if isinstance(entry, BulkResult):
            results.append(entry)
        elif index in done:
            results.append(done[index])
        else:
            first = first_listing[entry.id]
            results.append(_listed_again(entry, parsed[first], done[first]))
    return results


def _parse_user(candidate: User | Mapping[str, Any]) -> User | BulkResult:
    """A valid user, as validated, or the ``INVALID`` result of this entry."""
    if isinstance(candidate, User):
        # Its id derives the enrollment id and matches the listings: one that skipped
        # validation is validated again here, so an id in NFD derives the NFC one's.
        try:
            return require_instance("user", candidate, User)
        except InvalidInput as error:
            user_id = getattr(candidate, "id", None)
            return BulkResult(
                str(user_id) if user_id is not None else None,
                BulkOutcome.INVALID,
                detail=str(error),
            )
    try:
        return User.model_validate(candidate)
    except ValidationError as error:
        user_id = candidate.get("id") if isinstance(candidate, Mapping) else None
        return BulkResult(
            str(user_id) if user_id is not None else None, BulkOutcome.INVALID, detail=str(error)
        )


def _listed_again(user: User, first: User | BulkResult, result: BulkResult) -> BulkResult:
    """The result of a user listed again: the first listing's, which alone was enrolled."""
    if first != user:
        detail = "listed earlier in this call with other details; the first listing counts"
        return BulkResult(user.id, BulkOutcome.INVALID, result.enrollment_id, detail)
    outcome = (
        BulkOutcome.ALREADY_ENROLLED
        if result.outcome in (BulkOutcome.ENROLLED, BulkOutcome.ALREADY_ENROLLED)
        else result.outcome
    )
    return BulkResult(user.id, outcome, result.enrollment_id, "listed earlier in this call")
