"""A small, pure reference model of enroll / cancel / add_vacancies (no store, no AWS).

It says, for each call, what the library must answer (a success value or an error
class) and what the store must then hold, from the contract in DESIGN.md alone:
enrollments by id, the live (user, course) locks, each order's available and held seats.

Times are whole epoch seconds, as DynamoDB's TTL reads them: a lock or cancel
policy whose ``ttl`` is at or before ``now`` is expired, whether or not the TTL
process has deleted it yet. The sweep matters only to a caller whose clock lags
behind the model's (``at=``): to it, a swept lock no longer blocks.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from enrollkit import (
    CanceledEnrollmentId,
    CancelNotAllowed,
    CancelPolicy,
    Course,
    DeduplicationConflictError,
    DeduplicationWindow,
    Enrollment,
    EnrollmentIdConflict,
    EnrollmentNotFound,
    EnrollOutcome,
    InvalidInput,
    OrderNotFound,
    OrderOwnershipConflict,
    Tenant,
    User,
    Vacancy,
    VacancyUnavailable,
)

SeatId = tuple[str, str, str]
"""(org id, order id, slot id): one seat."""

Expected = EnrollOutcome | type[Exception] | str
"""What a call must return: an EnrollOutcome, ``"ok"``, or the class of the error it raises."""

OK = "ok"


def seconds(instant: datetime) -> int:
    """Whole epoch seconds, as a TTL attribute holds them."""
    return int(instant.timestamp())


def seat_id(vacancy: Vacancy) -> SeatId:
    return (vacancy.org_id, vacancy.order_id, vacancy.slot_id)


@dataclass
class ModelEnrollment:
    id: str
    user: User
    course: Course
    tenant_id: str
    enrolled_at: datetime
    canceled: bool = False
    lock_until: int | None = None
    has_policy: bool = False
    policy_deadline: int | None = None
    seat: Vacancy | None = None
    expiry_swept: bool = False
    """DynamoDB's TTL deleted its COURSE_EXPIRED item: expired to every clock."""

    @property
    def expires(self) -> int:
        """When its access period ends (its COURSE_EXPIRED is due), in epoch seconds."""
        return seconds(self.enrolled_at) + self.course.access_period * 86_400

    def cancel_allowed(self, now: int) -> bool:
        # An expired enrollment (expiry due, delivered or not) keeps its seat.
        if self.canceled or not self.has_policy or self.expiry_swept or self.expires <= now:
            return False
        return self.policy_deadline is None or self.policy_deadline > now


@dataclass
class Model:
    now: datetime
    enrollments: dict[str, ModelEnrollment] = field(default_factory=dict)
    locks: dict[tuple[str, str], tuple[str, int]] = field(default_factory=dict)
    """(user id, course id) -> (owner enrollment id, ttl) of the lock item written last."""
    orders: set[str] = field(default_factory=set)
    owners: dict[str, str] = field(default_factory=dict)
    """Order id -> its owning organization (an order written without owner has none)."""
    available: dict[SeatId, str] = field(default_factory=dict)
    """Seats enroll() may take -> their course id."""
    held: dict[SeatId, str] = field(default_factory=dict)
    """Seats taken -> the enrollment holding them (until it is canceled)."""
    numbered: dict[tuple[str, str, str], list[Vacancy]] = field(default_factory=dict)
    """(org, order, course id) -> the seats add_vacancies() reported, in number order."""
    added: Counter[str] = field(default_factory=Counter)
    """Order id -> seats add_vacancies() added to it (cancel moves seats, never adds)."""

    # -- time -------------------------------------------------------------------------

    @property
    def now_s(self) -> int:
        return seconds(self.now)

    def advance(self, delta: timedelta) -> None:
        self.now = self.now + delta

    def sweep(self, cutoff: datetime) -> None:
        """DynamoDB's TTL process deleted every item whose ttl is at or before ``cutoff``.

        Only a caller whose clock lags behind ``cutoff`` can tell: to it, a lock or cancel
        policy it would still see as live is gone."""
        limit = seconds(cutoff)
        self.locks = {key: lock for key, lock in self.locks.items() if lock[1] > limit}
        for record in self.enrollments.values():
            if record.policy_deadline is not None and record.policy_deadline <= limit:
                record.has_policy = False
            if record.expires <= limit:
                record.expiry_swept = True

    # -- orders -----------------------------------------------------------------------

    def create_order(self, order_id: str) -> None:
        """The order item written without owner (as before orders had owners)."""
        self.orders.add(order_id)
        self.owners.pop(order_id, None)

    def delete_order(self, order_id: str) -> None:
        self.orders.discard(order_id)
        self.owners.pop(order_id, None)

    # -- enroll -----------------------------------------------------------------------

    def enroll(
        self,
        enrollment: Enrollment,
        *,
        tenant: Tenant,
        vacancy: Vacancy | None = None,
        window: DeduplicationWindow | None = None,
        policy: CancelPolicy | None = None,
        at: datetime | None = None,
    ) -> Expected:
        """The answer to enroll() called with ``now=at`` (default: the model's clock;
        a caller's clock may lag behind it); on CREATED, the state it leaves."""
        at = self.now if at is None else at
        course, user = enrollment.course, enrollment.user
        if vacancy is not None and vacancy.org_id != tenant.id:
            return VacancyUnavailable  # a tenant takes only its own organization's seats
        if window is not None and not 0 <= window.offset_days < course.access_period:
            return InvalidInput
        existing = self.enrollments.get(enrollment.id)
        if existing is not None:
            same = (existing.user, existing.course, existing.tenant_id) == (
                user,
                course,
                tenant.id,
            )
            if same and existing.canceled:
                return CanceledEnrollmentId  # a canceled enrollment's id is spent
            return EnrollOutcome.ALREADY_ENROLLED if same else EnrollmentIdConflict
        lock = self.locks.get((user.id, course.id))
        if lock is not None and lock[1] > seconds(at):
            return DeduplicationConflictError
        if vacancy is not None and vacancy.order_id not in self.orders:
            return OrderNotFound  # seats move only while their order exists
        if vacancy is not None and self.owners.get(vacancy.order_id, tenant.id) != tenant.id:
            return OrderOwnershipConflict  # and only the owner's (or an unowned order's)
        if vacancy is not None and self.available.get(seat_id(vacancy)) != course.id:
            return VacancyUnavailable

        record = ModelEnrollment(
            id=enrollment.id,
            user=user,
            course=course,
            tenant_id=tenant.id,
            enrolled_at=at,
        )
        if window is not None:
            until = at + timedelta(days=course.access_period - window.offset_days)
            record.lock_until = seconds(until)
            self.locks[(user.id, course.id)] = (enrollment.id, record.lock_until)
        if vacancy is not None:
            del self.available[seat_id(vacancy)]
            self.held[seat_id(vacancy)] = enrollment.id
            record.seat = vacancy
        if policy is not None:
            record.has_policy = True
            if policy.days is not None:
                record.policy_deadline = seconds(at + timedelta(days=policy.days))
        self.enrollments[enrollment.id] = record
        return EnrollOutcome.CREATED

    # -- cancel -----------------------------------------------------------------------

    def cancel(
        self, enrollment_id: str, *, tenant_id: str | None = None, at: datetime | None = None
    ) -> Expected:
        """The answer to cancel() called with ``now=at``; on ``"ok"``, the state it leaves,
        except the seat it puts back, whose slot id the library draws: record it with
        :meth:`seat_returned`."""
        at = self.now if at is None else at
        record = self.enrollments.get(enrollment_id)
        if record is None or (tenant_id is not None and tenant_id != record.tenant_id):
            return EnrollmentNotFound
        if not record.cancel_allowed(seconds(at)):
            return CancelNotAllowed
        if record.seat is not None and record.seat.order_id not in self.orders:
            return OrderNotFound

        record.canceled = True
        record.has_policy = False
        # cancel() releases the lock only while it is live (by its own clock) and ours:
        # an expired lock blocks nobody on time, and may be a newer enrollment's by now.
        key = (record.user.id, record.course.id)
        owner, until = self.locks.get(key, ("", 0))
        if owner == enrollment_id and until > seconds(at):
            del self.locks[key]
        if record.seat is not None:
            del self.held[seat_id(record.seat)]
        return OK

    def returns_seat(self, enrollment_id: str) -> Vacancy | None:
        """The seat a successful cancel() of this enrollment gives back (its old one)."""
        return self.enrollments[enrollment_id].seat

    def seat_returned(self, enrollment_id: str, new_seat: Vacancy) -> None:
        record = self.enrollments[enrollment_id]
        assert record.seat is not None
        self.available[seat_id(new_seat)] = record.course.id
        record.seat = None

    # -- add_vacancies ----------------------------------------------------------------

    def add_vacancies(self, *, org_id: str, order_id: str) -> Expected:
        """The answer to add_vacancies(); on OK the order is ``org_id``'s (the first
        organization to add seats to an unowned order owns it)."""
        if order_id not in self.orders:
            return OrderNotFound
        if self.owners.setdefault(order_id, org_id) != org_id:
            return OrderOwnershipConflict
        return OK

    def seats_reported(
        self, *, org_id: str, order_id: str, course: Course, quantity: int, seats: list[Vacancy]
    ) -> str | None:
        """Record the seats add_vacancies() returned; a message when they break its contract
        (the first seats must be the ones reported before: it never adds a seat twice)."""
        key = (org_id, order_id, course.id)
        known = self.numbered.get(key, [])
        if len(seats) != quantity:
            return f"add_vacancies returned {len(seats)} seats, not {quantity}"
        if seats[: len(known)] != known[:quantity]:
            return "add_vacancies renumbered seats it had added before"
        if any((s.org_id, s.order_id) != (org_id, order_id) for s in seats):
            return "add_vacancies returned a seat of another org or order"
        for seat in seats[len(known) :]:
            if seat_id(seat) in self.available or seat_id(seat) in self.held:
                return f"add_vacancies reused slot {seat.slot_id}"
            self.available[seat_id(seat)] = course.id
            self.added[order_id] += 1
        if len(seats) > len(known):
            self.numbered[key] = list(seats)
        return None

    # -- views ------------------------------------------------------------------------

    def live_locks(self) -> dict[tuple[str, str], str]:
        """(user id, course id) -> owner, for locks not expired at ``now``."""
        return {key: owner for key, (owner, until) in self.locks.items() if until > self.now_s}

    def holders_by_order(self) -> Counter[str]:
        return Counter(order for (_, order, _) in self.held)


def utc(instant: datetime) -> datetime:
    return instant.astimezone(timezone.utc)
