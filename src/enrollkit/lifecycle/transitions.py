"""The allowed status transitions: the one table every step and every due event obeys.

============================  ======================  ============
step                          from                    to
============================  ======================  ============
enroll                        (new)                   PENDING
record_access (first)         PENDING                 IN_PROGRESS
record_access                 IN_PROGRESS             IN_PROGRESS
complete                      PENDING, IN_PROGRESS    COMPLETED
COURSE_EXPIRED due            PENDING, IN_PROGRESS    EXPIRED
COURSE_ARCHIVED due           COMPLETED               ARCHIVED
cancel (policy or override)   PENDING, IN_PROGRESS    CANCELED
============================  ======================  ============

Everything else is refused (:class:`~enrollkit.TransitionNotAllowed`, or
:class:`~enrollkit.CancelNotAllowed` for cancel) and writes nothing. Reminders change no
status; they are delivered unless the enrollment is CANCELED (the schedule item's existence
says the rest: each step removes the reminders that no longer apply).
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import Enum
from types import MappingProxyType

from enrollkit.models import EnrollmentStatus, LifecycleEvent

PENDING = EnrollmentStatus.PENDING
IN_PROGRESS = EnrollmentStatus.IN_PROGRESS
COMPLETED = EnrollmentStatus.COMPLETED
CANCELED = EnrollmentStatus.CANCELED
EXPIRED = EnrollmentStatus.EXPIRED
ARCHIVED = EnrollmentStatus.ARCHIVED


class Step(str, Enum):
    """What moves an enrollment: a call, or an event falling due."""

    ENROLL = "enroll"
    RECORD_ACCESS = "record_access"
    COMPLETE = "complete"
    COURSE_EXPIRED = "COURSE_EXPIRED due"
    COURSE_ARCHIVED = "COURSE_ARCHIVED due"
    CANCEL = "cancel"


TRANSITIONS: Mapping[Step, Mapping[EnrollmentStatus | None, EnrollmentStatus]] = MappingProxyType(
    {
        Step.ENROLL: {None: PENDING},
        Step.RECORD_ACCESS: {PENDING: IN_PROGRESS, IN_PROGRESS: IN_PROGRESS},
        Step.COMPLETE: {PENDING: COMPLETED, IN_PROGRESS: COMPLETED},
        Step.COURSE_EXPIRED: {PENDING: EXPIRED, IN_PROGRESS: EXPIRED},
        Step.COURSE_ARCHIVED: {COMPLETED: ARCHIVED},
        Step.CANCEL: {PENDING: CANCELED, IN_PROGRESS: CANCELED},
    }
)
"""step -> {status before: status after}; ``None`` before means "no enrollment yet"."""

# The due events that move the status, and the step each one is.
STATUS_EVENTS: Mapping[LifecycleEvent, Step] = MappingProxyType(
    {
        LifecycleEvent.COURSE_EXPIRED: Step.COURSE_EXPIRED,
        LifecycleEvent.COURSE_ARCHIVED: Step.COURSE_ARCHIVED,
    }
)

# A reminder is delivered to an enrollment in any of these (not to a canceled one).
REMINDER_STATUSES = frozenset(EnrollmentStatus) - {CANCELED}


def sources(step: Step) -> frozenset[EnrollmentStatus]:
    """The statuses ``step`` applies to."""
    return frozenset(status for status in TRANSITIONS[step] if status is not None)


def target(step: Step, status: EnrollmentStatus | None) -> EnrollmentStatus | None:
    """The status ``step`` leads to from ``status``; ``None`` when it is not allowed."""
    return TRANSITIONS[step].get(status)


def allowed(step: Step, status: EnrollmentStatus | None) -> bool:
    return status in TRANSITIONS[step]
