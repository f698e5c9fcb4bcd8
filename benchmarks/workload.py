"""The operations every benchmark times: the same calls on every backend."""

from __future__ import annotations

import gc
import itertools
import statistics
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timezone

from enrollkit import (
    Author,
    CancelPolicy,
    Course,
    DeduplicationWindow,
    Enrollment,
    Tenant,
    User,
    Vacancy,
    add_vacancies,
    cancel,
    enroll,
)
from enrollkit.persistence.base import BasePersistence

# Near the real clock: DynamoDB Local's TTL really deletes items whose ttl has passed.
NOW = datetime.now(timezone.utc).replace(microsecond=0)
TENANT = Tenant(id="acme", name="Acme Training")
COURSE = Course(id="nr-10", name="NR-10 Electrical Safety", access_period=90)
ADMIN = Author(id="admin", name="Admin")
WINDOW = DeduplicationWindow(offset_days=10)
POLICY = CancelPolicy(days=7)

_user_numbers = itertools.count()


def new_enrollment() -> Enrollment:
    """A fresh user each time, so no enrollment meets another's lock."""
    n = next(_user_numbers)
    user = User(id=f"u{n}", name=f"User {n}", email=f"u{n}@example.com")
    return Enrollment(user=user, course=COURSE)


def new_enrollments(count: int) -> list[Enrollment]:
    """Built before the timing starts: building the caller's models is not enroll()'s cost."""
    return [new_enrollment() for _ in range(count)]


def enroll_one(store: BasePersistence, enrollment: Enrollment | None = None) -> str:
    """enroll() with a window and a cancel policy: 9 items, one transaction."""
    enrollment = enrollment or new_enrollment()
    enroll(
        enrollment,
        tenant=TENANT,
        persistence_layer=store,
        deduplication_window=WINDOW,
        cancel_policy=POLICY,
        now=NOW,
    )
    return enrollment.id


def cancel_one(store: BasePersistence, enrollment_id: str) -> None:
    cancel(enrollment_id, author=ADMIN, persistence_layer=store, now=NOW)


def enroll_with_seat(store: BasePersistence, seat: Vacancy, enrollment: Enrollment) -> None:
    enroll(enrollment, tenant=TENANT, persistence_layer=store, vacancy=seat, now=NOW)


def seats(store: BasePersistence, order_id: str, quantity: int) -> list[Vacancy]:
    store.put_item({"id": order_id, "sk": "0"}, table_name=store.order_table_name)
    return add_vacancies(
        org_id=TENANT.id,
        order_id=order_id,
        course=COURSE,
        quantity=quantity,
        persistence_layer=store,
        now=NOW,
    )


def per_call(
    run: Callable[[object], object],
    arguments: Sequence[object],
    clock: Callable[[], float] = time.perf_counter,
) -> float:
    """Seconds per call of ``run`` over ``arguments`` (wall-clock unless told otherwise).

    A full garbage collection first, untimed: the arguments were just built (the callers'
    models are not the call's cost), and their promotion through the collector's
    generations would otherwise land in the timing. Collections the calls themselves
    cause are timed."""
    gc.collect()
    start = clock()
    for argument in arguments:
        run(argument)
    return (clock() - start) / len(arguments)


def median(samples: Sequence[float]) -> float:
    return statistics.median(samples)
