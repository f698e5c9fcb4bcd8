"""Racing writers, started together by a barrier: 16 threads on the embedded backend and
on DynamoDB Local, 8 on moto (a single-threaded server, which serialises them at its
socket)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TypeVar

from enrollkit import (
    Author,
    CancelNotAllowed,
    CancelPolicy,
    CancelResult,
    DeduplicationConflictError,
    DeduplicationWindow,
    EnrollOutcome,
    cancel,
    enroll,
    lock_hash,
)
from enrollkit.persistence.base import BasePersistence
from tests.conftest import TENANT
from tests.support.concurrency import race, race_width
from tests.test_enroll import all_items, by_sk, enrollment

T = TypeVar("T")
WINDOW = DeduplicationWindow(offset_days=10)


def test_racing_enrolls_of_one_user_and_course_leave_exactly_one(
    persistence: BasePersistence, now: datetime
) -> None:
    count = race_width(persistence)

    def attempt(index: int) -> EnrollOutcome:
        return enroll(
            enrollment(f"racer-{index}"),
            tenant=TENANT,
            persistence_layer=persistence,
            deduplication_window=WINDOW,
            cancel_policy=CancelPolicy(days=7),
            now=now,
        )

    results = race(count, attempt)

    winners = [index for index, result in enumerate(results) if result is EnrollOutcome.CREATED]
    assert len(winners) == 1, results
    (winner,) = winners
    losers = [index for index in range(count) if index != winner]
    for index in losers:
        assert isinstance(results[index], DeduplicationConflictError), results[index]
        assert persistence.query(f"racer-{index}") == []
    assert [item["enrollment_id"] for item in persistence.query("lock")] == [f"racer-{winner}"]
    assert {item["sk"] for item in persistence.query(f"racer-{winner}")} >= {
        "0",
        "metadata#lock",
        "metadata#deduplication_window",
        "cancel_policy",
    }
    # Only the winner's items exist, plus its one lock.
    assert {item["id"] for item in all_items(persistence)["enrollments"]} == {
        f"racer-{winner}",
        "lock",
    }


def test_racing_retries_of_one_enrollment_create_it_once(
    persistence: BasePersistence, now: datetime
) -> None:
    count = race_width(persistence)

    def attempt(index: int) -> EnrollOutcome:
        return enroll(
            enrollment("same"),
            tenant=TENANT,
            persistence_layer=persistence,
            deduplication_window=WINDOW,
            now=now + timedelta(seconds=index),
        )

    results = race(count, attempt)

    assert results.count(EnrollOutcome.CREATED) == 1, results
    assert results.count(EnrollOutcome.ALREADY_ENROLLED) == count - 1, results
    assert [item["enrollment_id"] for item in persistence.query("lock")] == ["same"]


def test_racing_enrolls_of_different_users_all_succeed(
    persistence: BasePersistence, now: datetime
) -> None:
    count = race_width(persistence)

    def attempt(index: int) -> EnrollOutcome:
        return enroll(
            enrollment(f"user-{index}-enr", user_id=f"user-{index}"),
            tenant=TENANT,
            persistence_layer=persistence,
            deduplication_window=WINDOW,
            now=now,
        )

    results = race(count, attempt)

    assert results == [EnrollOutcome.CREATED] * count
    assert sorted(item["sk"] for item in persistence.query("lock")) == sorted(
        lock_hash(f"user-{index}", "course-1") for index in range(count)
    )


def test_racing_cancels_cancel_once(persistence: BasePersistence, now: datetime) -> None:
    enroll(
        enrollment(),
        tenant=TENANT,
        persistence_layer=persistence,
        deduplication_window=WINDOW,
        cancel_policy=CancelPolicy(days=7),
        now=now,
    )
    count = race_width(persistence)

    def attempt(index: int) -> CancelResult:
        return cancel(
            "enr-1",
            author=Author(id=f"admin-{index}", name=f"Admin {index}"),
            persistence_layer=persistence,
            now=now + timedelta(hours=1),
        )

    results = race(count, attempt)

    winners = [index for index, result in enumerate(results) if isinstance(result, CancelResult)]
    assert len(winners) == 1, results
    assert all(
        isinstance(result, CancelNotAllowed)
        for index, result in enumerate(results)
        if index != winners[0]
    ), results
    items = by_sk(persistence, "enr-1")
    assert items["0"]["status"] == "CANCELED"
    assert items["canceled_date"]["author"]["id"] == f"admin-{winners[0]}"
    assert persistence.query("lock") == []
