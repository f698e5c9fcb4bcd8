"""enroll_many(): a list of users into a course from an order's seats, bounded
concurrency, one result per user, never more seats taken than enrollments made,
safe to re-run after a crash. Both backends."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import pytest

from enrollkit import (
    Author,
    BulkOutcome,
    BulkResult,
    CancelPolicy,
    DeduplicationWindow,
    Enrollment,
    InvalidInput,
    KeyPair,
    OrderNotFound,
    User,
    add_vacancies,
    cancel,
    enroll,
    enroll_many,
)
from enrollkit.operations.bulk import bulk_enrollment_id
from enrollkit.persistence.base import BasePersistence
from enrollkit.transaction.operations import Operation
from tests.conftest import TENANT, make_course, make_user
from tests.support.concurrency import race
from tests.support.seats import (
    CrashingPersistence,
    SimulatedCrash,
    assert_seats_conserved,
    seat_census,
    seed_order,
)

ORG = "tenant-1"
ORDER = "order-1"
COURSE = make_course("course-1")
OTHER_COURSE = make_course("course-2")


@pytest.fixture
def store(persistence: BasePersistence) -> BasePersistence:
    seed_order(persistence, ORDER)
    return persistence


def add_seats(store: BasePersistence, now: datetime, quantity: int, course: Any = COURSE) -> None:
    add_vacancies(
        org_id=ORG,
        order_id=ORDER,
        course=course,
        quantity=quantity,
        persistence_layer=store,
        now=now,
    )


def run(
    store: BasePersistence,
    now: datetime,
    users: Sequence[User | Mapping[str, Any]],
    *,
    concurrency: int = 4,
    **options: Any,
) -> list[BulkResult]:
    return enroll_many(
        users,
        course=COURSE,
        tenant=TENANT,
        order_id=ORDER,
        persistence_layer=store,
        concurrency=concurrency,
        now=now,
        **options,
    )


def users(count: int) -> list[User]:
    return [make_user(f"user-{i}") for i in range(count)]


def enrolled_ids(store: BasePersistence, people: Sequence[User]) -> set[str]:
    """Ids of the users whose enroll_many enrollment exists."""
    return {
        user.id
        for user in people
        if store.get_item(
            KeyPair(pk=bulk_enrollment_id(TENANT.id, ORDER, COURSE.id, user.id), sk="0")
        )
        is not None
    }


def test_enroll_many_enrolls_every_user_on_a_seat(store: BasePersistence, now: datetime) -> None:
    add_seats(store, now, 6)
    people = users(5)

    results = run(store, now, people)

    assert [result.user_id for result in results] == [user.id for user in people]
    assert all(result.outcome is BulkOutcome.ENROLLED for result in results)
    expected_ids = [bulk_enrollment_id(TENANT.id, ORDER, COURSE.id, user.id) for user in people]
    assert [result.enrollment_id for result in results] == expected_ids
    census = assert_seats_conserved(store, ORDER, 6)
    assert set(census.holders) == set(expected_ids)
    assert len(census.available) == 1
    for user, enrollment_id in zip(people, expected_ids, strict=True):
        root = store.get_item(KeyPair(pk=enrollment_id, sk="0"))
        assert root is not None
        assert root["user"]["id"] == user.id
        assert root["course"]["id"] == COURSE.id


def test_enroll_many_reports_no_seat_once_seats_run_out(
    store: BasePersistence, now: datetime
) -> None:
    add_seats(store, now, 3)
    people = users(7)

    results = run(store, now, people)

    tally = Counter(result.outcome for result in results)
    assert tally == {BulkOutcome.ENROLLED: 3, BulkOutcome.NO_SEAT: 4}
    enrolled = {r.user_id for r in results if r.outcome is BulkOutcome.ENROLLED}
    assert enrolled_ids(store, people) == enrolled
    census = assert_seats_conserved(store, ORDER, 3)
    assert census.available == {}


def test_enroll_many_uses_only_seats_of_its_course(store: BasePersistence, now: datetime) -> None:
    add_seats(store, now, 2)
    add_seats(store, now, 5, OTHER_COURSE)

    results = run(store, now, users(4))

    tally = Counter(result.outcome for result in results)
    assert tally == {BulkOutcome.ENROLLED: 2, BulkOutcome.NO_SEAT: 2}
    census = assert_seats_conserved(store, ORDER, 7)
    assert sorted(census.available.values()) == [OTHER_COURSE.id] * 5


def test_enroll_many_reports_invalid_users_and_takes_no_seat_for_them(
    store: BasePersistence, now: datetime
) -> None:
    add_seats(store, now, 5)
    batch: list[Any] = [
        make_user("good-1"),
        {"id": "no-email", "name": "No Email"},
        {"id": "bad#id", "name": "Bad Id", "email": "bad@example.com"},
        {"id": "good-2", "name": "Good Two", "email": "good2@example.com"},
        {"id": "extra", "name": "Extra", "email": "extra@example.com", "role": "admin"},
        "not a user",
    ]

    results = run(store, now, batch)

    assert [(r.user_id, r.outcome) for r in results] == [
        ("good-1", BulkOutcome.ENROLLED),
        ("no-email", BulkOutcome.INVALID),
        ("bad#id", BulkOutcome.INVALID),
        ("good-2", BulkOutcome.ENROLLED),
        ("extra", BulkOutcome.INVALID),
        (None, BulkOutcome.INVALID),
    ]
    assert all(r.detail for r in results if r.outcome is BulkOutcome.INVALID)
    census = assert_seats_conserved(store, ORDER, 5)
    assert len(census.holders) == 2


def test_enroll_many_rerun_takes_no_seat_and_writes_nothing(
    store: BasePersistence, now: datetime
) -> None:
    add_seats(store, now, 5)
    people = users(4)
    first = run(store, now, people)
    counting = CrashingPersistence(store)

    again = run(counting, now, people)

    assert all(result.outcome is BulkOutcome.ALREADY_ENROLLED for result in again)
    assert [r.enrollment_id for r in again] == [r.enrollment_id for r in first]
    assert counting.committed == 0
    census = assert_seats_conserved(store, ORDER, 5)
    assert len(census.available) == 1


def test_enroll_many_counts_a_user_listed_twice_once(store: BasePersistence, now: datetime) -> None:
    add_seats(store, now, 3)
    twice = make_user("twice")

    results = run(store, now, [twice, make_user("once"), twice])

    tally = Counter((r.user_id, r.outcome) for r in results)
    assert tally == {
        ("twice", BulkOutcome.ENROLLED): 1,
        ("twice", BulkOutcome.ALREADY_ENROLLED): 1,
        ("once", BulkOutcome.ENROLLED): 1,
    }
    census = assert_seats_conserved(store, ORDER, 3)
    assert len(census.available) == 1


def test_enroll_many_takes_no_seat_for_a_user_holding_the_course_lock(
    store: BasePersistence, now: datetime
) -> None:
    add_seats(store, now, 3)
    already = make_user("already")
    enroll(
        Enrollment(user=already, course=COURSE),
        tenant=TENANT,
        persistence_layer=store,
        deduplication_window=DeduplicationWindow(offset_days=0),
        now=now,
    )

    results = run(
        store,
        now,
        [already, make_user("new")],
        deduplication_window=DeduplicationWindow(offset_days=0),
    )

    assert [(r.user_id, r.outcome) for r in results] == [
        ("already", BulkOutcome.ALREADY_ENROLLED),
        ("new", BulkOutcome.ENROLLED),
    ]
    census = assert_seats_conserved(store, ORDER, 3)
    assert len(census.available) == 2


def test_enroll_many_reports_a_user_enrolled_since_its_ledger_read_as_already_enrolled(
    store: BasePersistence, now: datetime
) -> None:
    # Another run enrolls "late" and "other" (taking two of the three seats) after this
    # run has read the ledger but before its first write. This run's "new" user then
    # finds those two seats gone and takes the third; "late" finds no seat left -- but
    # it is enrolled, and must be reported so, not as NO_SEAT.
    add_seats(store, now, 3)
    new, late, other = make_user("new"), make_user("late"), make_user("other")
    other_run_done = threading.Event()

    def other_run_first(_: Sequence[Operation]) -> None:
        if not other_run_done.is_set():
            other_run_done.set()
            assert [r.outcome for r in run(store, now, [late, other], concurrency=1)] == [
                BulkOutcome.ENROLLED,
                BulkOutcome.ENROLLED,
            ]

    results = run(
        CrashingPersistence(store, on_transaction=other_run_first), now, [new, late], concurrency=1
    )

    assert other_run_done.is_set()
    assert [(r.user_id, r.outcome) for r in results] == [
        ("new", BulkOutcome.ENROLLED),
        ("late", BulkOutcome.ALREADY_ENROLLED),
    ]
    assert results[1].enrollment_id == bulk_enrollment_id(TENANT.id, ORDER, COURSE.id, "late")
    census = assert_seats_conserved(store, ORDER, 3)
    assert census.available == {}


@pytest.mark.parametrize("concurrency", [1, 4])
@pytest.mark.parametrize("crash_mode", ["before", "after"])
def test_enroll_many_rerun_after_a_crash_enrolls_the_rest_and_takes_no_extra_seat(
    store: BasePersistence, now: datetime, crash_mode: Any, concurrency: int
) -> None:
    add_seats(store, now, 12)
    people = users(10)
    crashing = CrashingPersistence(store, crash_after=4, crash_mode=crash_mode)

    with pytest.raises(SimulatedCrash):
        run(crashing, now, people, concurrency=concurrency)

    made = enrolled_ids(store, people)
    assert 4 <= len(made) < len(people)
    census = assert_seats_conserved(store, ORDER, 12)
    assert len(census.holders) == len(made)  # no seat taken without its enrollment

    counting = CrashingPersistence(store)
    results = run(counting, now, people, concurrency=concurrency)

    outcomes = {r.user_id: r.outcome for r in results}
    assert outcomes == {
        user.id: BulkOutcome.ALREADY_ENROLLED if user.id in made else BulkOutcome.ENROLLED
        for user in people
    }
    assert counting.committed == len(people) - len(made)
    census = assert_seats_conserved(store, ORDER, 12)
    assert len(census.holders) == len(people)
    assert len(census.available) == 2


def test_concurrent_runs_enroll_each_user_once(store: BasePersistence, now: datetime) -> None:
    # As many seats as users: a run may find every seat gone, but only once every user
    # is enrolled, so no user is ever told NO_SEAT.
    add_seats(store, now, 6)
    people = users(6)

    results = race(2, lambda _: run(store, now, people, concurrency=3))

    assert not [r for r in results if isinstance(r, BaseException)], results
    per_user = Counter(
        (r.user_id, r.outcome)
        for run_results in results
        for r in run_results  # type: ignore[union-attr]
    )
    assert per_user == {
        **{(user.id, BulkOutcome.ENROLLED): 1 for user in people},
        **{(user.id, BulkOutcome.ALREADY_ENROLLED): 1 for user in people},
    }
    census = assert_seats_conserved(store, ORDER, 6)
    assert len(census.holders) == len(people)
    assert census.available == {}


class _Meeting(CrashingPersistence):
    """Holds each transaction until `group` of them are in flight together, and records
    the largest number in flight at once (from arrival until the store answered)."""

    def __init__(self, inner: BasePersistence, group: int) -> None:
        super().__init__(inner)
        self.together = threading.Barrier(group)
        self.in_flight = 0
        self.peak = 0
        self.guard = threading.Lock()

    def execute_transaction(
        self, operations: Sequence[Operation], *, client_request_token: str
    ) -> None:
        with self.guard:
            self.in_flight += 1
            self.peak = max(self.peak, self.in_flight)
        try:
            self.together.wait(timeout=30)
            super().execute_transaction(operations, client_request_token=client_request_token)
        finally:
            with self.guard:
                self.in_flight -= 1


def test_enroll_many_runs_at_most_concurrency_enrolls_at_once(
    store: BasePersistence, now: datetime
) -> None:
    # Every group of `concurrency` transactions waits for its whole group, so this passes
    # only if `concurrency` enrolls do run at once; the peak shows no more ever do.
    concurrency, count = 3, 12
    add_seats(store, now, count)
    meeting = _Meeting(store, concurrency)

    results = run(meeting, now, users(count), concurrency=concurrency)

    assert all(r.outcome is BulkOutcome.ENROLLED for r in results)
    assert meeting.committed == count
    assert meeting.peak == concurrency


def test_enroll_many_needs_the_order(persistence: BasePersistence, now: datetime) -> None:
    with pytest.raises(OrderNotFound):
        run(persistence, now, users(2))


@pytest.mark.parametrize("concurrency", [0, -1, True, 1.5])
def test_enroll_many_refuses_a_bad_concurrency(
    store: BasePersistence, now: datetime, concurrency: Any
) -> None:
    add_seats(store, now, 2)

    with pytest.raises(InvalidInput):
        run(store, now, users(2), concurrency=concurrency)

    assert len(seat_census(store, ORDER).available) == 2


def test_enroll_many_of_nobody_does_nothing(store: BasePersistence, now: datetime) -> None:
    add_seats(store, now, 2)

    assert run(store, now, []) == []
    assert_seats_conserved(store, ORDER, 2)


# -- issue 8: canceled users, users listed twice -------------------------------------------------


def test_enroll_many_enrolls_a_canceled_user_again_under_a_new_id(
    store: BasePersistence, now: datetime
) -> None:
    """Defect 3: a canceled enrollment is not "already enrolled"; its id is spent, so the
    new enrollment gets the next id of the same derivation, and a re-run finds it."""
    add_seats(store, now, 2)
    ana = make_user("ana")
    (first,) = run(store, now, [ana], cancel_policy=CancelPolicy())
    cancel(
        str(first.enrollment_id),
        author=Author(id="admin", name="Admin"),
        persistence_layer=store,
        now=now,
    )

    (again,) = run(store, now, [ana])
    (rerun,) = run(store, now, [ana])

    assert first.outcome is BulkOutcome.ENROLLED
    assert again.outcome is BulkOutcome.ENROLLED
    assert again.enrollment_id == bulk_enrollment_id(TENANT.id, ORDER, COURSE.id, "ana", 1)
    assert (rerun.outcome, rerun.enrollment_id) == (
        BulkOutcome.ALREADY_ENROLLED,
        again.enrollment_id,
    )
    root = store.get_item(KeyPair(pk=str(again.enrollment_id), sk="0"))
    assert root is not None and root["status"] == "PENDING"
    assert_seats_conserved(store, ORDER, 2)


def test_enroll_many_with_a_user_listed_twice_with_other_details_reports_per_user(
    store: BasePersistence, now: datetime
) -> None:
    """Defect 4: the second listing (other name) used to raise for the whole call after
    seats were spent."""
    add_seats(store, now, 3)
    ana = make_user("ana")
    other_ana = User(id="ana", name="Ana Other", email="other@example.com")

    results = run(store, now, [ana, make_user("bob"), other_ana])

    assert [(r.user_id, r.outcome) for r in results] == [
        ("ana", BulkOutcome.ENROLLED),
        ("bob", BulkOutcome.ENROLLED),
        ("ana", BulkOutcome.INVALID),
    ]
    assert results[2].enrollment_id == results[0].enrollment_id
    census = assert_seats_conserved(store, ORDER, 3)
    assert len(census.available) == 1
