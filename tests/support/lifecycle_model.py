"""A small, pure reference model of the lifecycle (no store, no AWS): which events each
enrollment has scheduled, which occurrences fell due while it was live (and so must be
delivered exactly once), and what each step must answer.

Events happen at their due time, in due order, whoever delivers them and whenever: an
occurrence is (enrollment, event, due). ``COURSE_EXPIRED`` moves PENDING/IN_PROGRESS to
EXPIRED (nothing of a live enrollment is due after its expiry), ``COURSE_ARCHIVED`` moves
COMPLETED to ARCHIVED, reminders move nothing. Times are whole epoch seconds, as a TTL is.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from enrollkit import (
    AccessPeriodEnded,
    CancelNotAllowed,
    EnrollmentNotFound,
    LifecycleEvent,
    TransitionNotAllowed,
)

DAY = 86_400
NO_ACCESS = LifecycleEvent.REMINDER_NO_ACCESS_3_DAYS
NO_ACTIVITY = LifecycleEvent.NO_ACTIVITY_7_DAYS
ACCESS_REMINDER = LifecycleEvent.ACCESS_PERIOD_REMINDER_30_DAYS
CERT_REMINDER = LifecycleEvent.CERT_EXPIRATION_REMINDER_30_DAYS
ARCHIVED = LifecycleEvent.COURSE_ARCHIVED
EXPIRED = LifecycleEvent.COURSE_EXPIRED

Occurrence = tuple[str, LifecycleEvent, int]
"""(enrollment id, event, due in epoch seconds)"""
OK = "ok"


def seconds(instant: datetime) -> int:
    return int(instant.timestamp())


@dataclass
class ModelEnrollment:
    id: str
    status: str = "PENDING"
    schedule: dict[LifecycleEvent, int] = field(default_factory=dict)
    canceled_at: int | None = None
    certificate: tuple[datetime | None] | None = None
    """The certificate completion stored ((expires_at,)), ``None`` before completion."""


@dataclass
class LifecycleModel:
    now: datetime
    enrollments: dict[str, ModelEnrollment] = field(default_factory=dict)
    happened: dict[Occurrence, str] = field(default_factory=dict)
    """Every occurrence that fell due while its enrollment was live -> that enrollment id."""

    def advance(self, to: datetime) -> None:
        """Let every event due by ``to`` happen, in due order."""
        self.now = to
        limit = seconds(to)
        for record in self.enrollments.values():
            while record.schedule:
                event, due = min(record.schedule.items(), key=lambda item: item[1])
                if due > limit:
                    break
                del record.schedule[event]
                self.happened[(record.id, event, due)] = record.id
                if event is EXPIRED:
                    record.status = "EXPIRED"
                    record.schedule.clear()
                elif event is ARCHIVED:
                    record.status = "ARCHIVED"
                    record.schedule.clear()

    def next_due(self) -> int | None:
        dues = [due for r in self.enrollments.values() for due in r.schedule.values()]
        return min(dues) if dues else None

    # -- steps ------------------------------------------------------------------------------

    def enroll(self, enrollment_id: str, access_period: int) -> None:
        at = self.now
        expiry = at + timedelta(days=access_period)
        schedule = {EXPIRED: seconds(expiry)}
        for event, due in (
            (NO_ACCESS, at + timedelta(days=3)),
            (ACCESS_REMINDER, expiry - timedelta(days=30)),
        ):
            if at < due < expiry:
                schedule[event] = seconds(due)
        self.enrollments[enrollment_id] = ModelEnrollment(enrollment_id, schedule=schedule)

    def record_access(self, enrollment_id: str) -> object:
        record = self.enrollments.get(enrollment_id)
        if record is None:
            return EnrollmentNotFound
        if record.status not in ("PENDING", "IN_PROGRESS"):
            return TransitionNotAllowed  # (AccessPeriodEnded is one)
        new_due = seconds(self.now + timedelta(days=7))
        if record.status == "PENDING":
            record.status = "IN_PROGRESS"
            record.schedule.pop(NO_ACCESS, None)
        keep = new_due < record.schedule[EXPIRED]
        current = record.schedule.get(NO_ACTIVITY)
        if not keep:
            record.schedule.pop(NO_ACTIVITY, None)
        elif current is None or current < new_due:
            record.schedule[NO_ACTIVITY] = new_due
        return OK

    def complete(self, enrollment_id: str, expires_at: datetime | None) -> object:
        record = self.enrollments.get(enrollment_id)
        if record is None:
            return EnrollmentNotFound
        if record.status == "COMPLETED" and record.certificate == (expires_at,):
            return OK  # a retry of this very completion changes nothing
        if record.status not in ("PENDING", "IN_PROGRESS"):
            return TransitionNotAllowed
        record.status = "COMPLETED"
        record.certificate = (expires_at,)
        record.schedule.clear()
        if expires_at is not None:
            record.schedule[ARCHIVED] = seconds(expires_at)
            reminder = expires_at - timedelta(days=30)
            if self.now < reminder < expires_at:
                record.schedule[CERT_REMINDER] = seconds(reminder)
        return OK

    def cancel(self, enrollment_id: str) -> object:
        record = self.enrollments.get(enrollment_id)
        if record is None:
            return EnrollmentNotFound
        if record.status not in ("PENDING", "IN_PROGRESS"):
            return CancelNotAllowed
        record.status = "CANCELED"
        record.schedule.clear()
        record.canceled_at = seconds(self.now)
        return OK

    def live(self, enrollment_id: str) -> bool:
        return self.enrollments[enrollment_id].canceled_at is None


REFUSALS = (TransitionNotAllowed, AccessPeriodEnded, CancelNotAllowed, EnrollmentNotFound)
