"""What the reads return: typed, frozen records of what enrollkit stored.

The layout modules parse stored items into these (one home per stored thing);
:func:`enrollkit.get_enrollment` and :func:`enrollkit.list_enrollments` return them.
Pure: no AWS here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Generic, TypeVar

from enrollkit.models import Author, Course, EnrollmentStatus, LifecycleEvent, User, Vacancy

T = TypeVar("T")


@dataclass(frozen=True)
class LockRecord:
    """The (user, course) de-duplication lock an enrollment holds: the lock item's sort
    key (``lock_hash(user id, course id)``) and when it expires."""

    hash: str
    until: datetime


@dataclass(frozen=True)
class CancelPolicyRecord:
    """The enrollment's cancel policy: cancel() is allowed until ``deadline`` (``None``:
    no limit)."""

    deadline: datetime | None


@dataclass(frozen=True)
class CancellationRecord:
    """Who canceled the enrollment, and when."""

    author: Author
    at: datetime


@dataclass(frozen=True)
class EnrollmentSummary:
    """One enrollment as a listing shows it (what the listing indexes carry)."""

    id: str
    tenant_id: str
    user: User
    course: Course
    status: EnrollmentStatus
    created_at: datetime


@dataclass(frozen=True)
class EnrollmentRecord:
    """Everything enrollkit stored about one enrollment, as of ``now``.

    Items whose ``ttl`` has passed are left out, as DynamoDB will delete them: a
    schedule event that is due, an expired lock, a cancel policy whose window has passed.
    """

    id: str
    tenant_id: str
    user: User
    course: Course
    status: EnrollmentStatus
    progress: int
    created_at: datetime
    updated_at: datetime | None
    schedule: Mapping[LifecycleEvent, datetime]
    """Each event still to come, and when it is due (timezone-aware, UTC)."""
    lock: LockRecord | None
    """The de-duplication lock it holds, if it took one and it has not expired."""
    deduplication_window: int | None
    """The window's ``offset_days``, if the enrollment was made with one."""
    cancel_policy: CancelPolicyRecord | None
    """Its cancel policy, if it has one still open."""
    seat: Vacancy | None
    """The prepaid seat it holds, if any (a canceled enrollment gave its seat back)."""
    canceled: CancellationRecord | None
    """Who canceled it and when, if it was canceled."""


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a listing: its items, and the cursor of the next page (``None`` on the
    last page). Pass the cursor back as is: it is opaque."""

    items: Sequence[T] = field(default_factory=tuple)
    cursor: str | None = None
