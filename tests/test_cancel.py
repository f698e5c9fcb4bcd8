"""cancel(): what it removes, what it keeps, when it refuses, and how often it talks to the store.

Every test runs on both backends (the ``persistence`` fixture).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from datetime import datetime, timedelta
from typing import Any

import pytest

from enrollkit import (
    Author,
    CancelNotAllowed,
    CancelPolicy,
    CancelResult,
    DeduplicationConflictError,
    DeduplicationWindow,
    EnrollmentNotFound,
    EnrollOutcome,
    InvalidInput,
    KeyPair,
    LifecycleEvent,
    PersistenceLayer,
    cancel,
    enroll,
    lock_hash,
)
from enrollkit.persistence.base import BasePersistence
from enrollkit.persistence.indexes import IndexPage
from enrollkit.transaction.builder import TransactionBuilder
from enrollkit.transaction.operations import Operation
from tests.conftest import OTHER_TENANT, TENANT
from tests.test_enroll import all_items, by_sk, enrollment, epoch, iso_utc, seed_seats

DAY = timedelta(days=1)
SECOND = timedelta(seconds=1)
ADMIN = Author(id="admin-1", name="Admin One")


class CountingPersistence:
    """A PersistenceLayer that counts what is asked of the one it wraps."""

    def __init__(self, inner: BasePersistence) -> None:
        self.inner = inner
        self.queries = 0
        self.gets = 0
        self.puts = 0
        self.transactions = 0

    @property
    def table_name(self) -> str:
        return self.inner.table_name

    @property
    def order_table_name(self) -> str:
        return self.inner.order_table_name

    def transact_writer(
        self, *, client_request_token: str | None = None
    ) -> AbstractContextManager[TransactionBuilder]:
        self.transactions += 1
        return self.inner.transact_writer(client_request_token=client_request_token)

    def get_item(self, key: KeyPair, *, table_name: str | None = None) -> dict[str, Any] | None:
        self.gets += 1
        return self.inner.get_item(key, table_name=table_name)

    def query(
        self, pk: str, *, sk_prefix: str = "", table_name: str | None = None
    ) -> list[dict[str, Any]]:
        self.queries += 1
        return self.inner.query(pk, sk_prefix=sk_prefix, table_name=table_name)

    def put_item(self, item: Mapping[str, Any], *, table_name: str | None = None) -> None:
        self.puts += 1
        self.inner.put_item(item, table_name=table_name)

    def query_index(self, index_name: str, partition_value: str, **query: Any) -> IndexPage:
        self.queries += 1
        return self.inner.query_index(index_name, partition_value, **query)

    def scan_page(self, **scan: Any) -> IndexPage:
        return self.inner.scan_page(**scan)


@pytest.fixture
def sent(persistence: BasePersistence, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """How many transactions reached the backend (each attempt counts)."""
    count = [0]
    original = persistence.execute_transaction

    def spy(operations: Sequence[Operation], *, client_request_token: str) -> None:
        count[0] += 1
        original(operations, client_request_token=client_request_token)

    monkeypatch.setattr(persistence, "execute_transaction", spy)
    yield count


def enroll_cancelable(
    persistence: Any,
    now: datetime,
    enrollment_id: str = "enr-1",
    *,
    user_id: str = "user-1",
    days: int | None = 7,
    offset_days: int | None = 10,
    **options: Any,
) -> None:
    outcome = enroll(
        enrollment(enrollment_id, user_id=user_id),
        tenant=TENANT,
        persistence_layer=persistence,
        deduplication_window=(
            DeduplicationWindow(offset_days=offset_days) if offset_days is not None else None
        ),
        cancel_policy=CancelPolicy(days=days),
        now=now,
        **options,
    )
    assert outcome is EnrollOutcome.CREATED


# -- what cancel does ----------------------------------------------------------------------------


def test_cancel_undoes_enroll_and_records_who_canceled(
    persistence: BasePersistence, now: datetime
) -> None:
    enroll_cancelable(persistence, now)
    root_before = by_sk(persistence, "enr-1")["0"]
    later = now + DAY

    result = cancel("enr-1", author=ADMIN, persistence_layer=persistence, now=later)

    assert result == CancelResult(enrollment_id="enr-1", returned_seat=None)
    items = by_sk(persistence, "enr-1")
    assert set(items) == {"0", "metadata#tenant", "metadata#deduplication_window", "canceled_date"}
    assert items["0"] == {
        **root_before,
        "status": "CANCELED",
        "update_date": iso_utc(later),
        # The status listings follow the status (the user and course listings are unchanged).
        "index__status": "tenant-1#CANCELED",
        "index__user_status": "tenant-1#user-1#CANCELED",
        "index__course_status": "tenant-1#course-1#CANCELED",
    }
    assert items["canceled_date"]["author"] == {"id": "admin-1", "name": "Admin One"}
    assert items["canceled_date"]["create_date"] == iso_utc(later)
    assert persistence.query("lock") == []
    # The lock is free again: the user can enroll anew.
    assert (
        enroll(
            enrollment("enr-2"),
            tenant=TENANT,
            persistence_layer=persistence,
            deduplication_window=DeduplicationWindow(offset_days=10),
            now=later,
        )
        is EnrollOutcome.CREATED
    )


def test_cancel_removes_every_schedule_including_ones_written_later(
    persistence: BasePersistence, now: datetime
) -> None:
    enroll_cancelable(persistence, now)
    enroll_cancelable(persistence, now, "bystander", user_id="user-2")
    for event in (
        LifecycleEvent.NO_ACTIVITY_7_DAYS,
        LifecycleEvent.CERT_EXPIRATION_REMINDER_30_DAYS,
        LifecycleEvent.COURSE_ARCHIVED,
    ):
        persistence.put_item(
            {
                "id": "enr-1",
                "sk": event.value,
                "name": "Name user-1",
                "email": "user-1@example.com",
                "course": "Course course-1",
                "create_date": iso_utc(now),
                "ttl": epoch(now + 9 * DAY),
            }
        )
    # An event this version does not know (a newer writer's): read, so deleted too.
    persistence.put_item(
        {"id": "enr-1", "sk": "schedules#newer_event", "ttl": epoch(now + 9 * DAY)}
    )
    assert len(persistence.query("enr-1", sk_prefix="schedules#")) == 7
    bystander = persistence.query("bystander")

    cancel("enr-1", author=ADMIN, persistence_layer=persistence, now=now + DAY)

    assert persistence.query("enr-1", sk_prefix="schedules#") == []
    assert persistence.query("bystander") == bystander


def test_cancel_without_a_window_touches_no_lock(
    persistence: BasePersistence, now: datetime
) -> None:
    # "holder" keeps the (user-1, course-1) lock, expired after 10 days but not swept.
    enroll_cancelable(persistence, now, "holder", offset_days=80)
    lock = persistence.query("lock")
    enroll_cancelable(persistence, now + 11 * DAY, "no-window", offset_days=None)
    cancel("no-window", author=ADMIN, persistence_layer=persistence, now=now + 12 * DAY)
    assert persistence.query("lock") == lock


def test_cancel_policy_without_days_allows_cancel_any_time_of_the_access_period(
    persistence: BasePersistence, now: datetime
) -> None:
    enroll_cancelable(persistence, now, days=None)  # a 90-day course
    cancel("enr-1", author=ADMIN, persistence_layer=persistence, now=now + 90 * DAY - SECOND)
    assert by_sk(persistence, "enr-1")["0"]["status"] == "CANCELED"


def test_an_expired_enrollment_cannot_be_canceled_even_before_its_expiry_is_delivered(
    persistence: BasePersistence, now: datetime
) -> None:
    enroll_cancelable(persistence, now, days=None)  # a 90-day course
    before = all_items(persistence)
    with pytest.raises(CancelNotAllowed, match="access period"):
        cancel("enr-1", author=ADMIN, persistence_layer=persistence, now=now + 90 * DAY)
    assert all_items(persistence) == before


def test_cancel_just_inside_the_policy_window(persistence: BasePersistence, now: datetime) -> None:
    enroll_cancelable(persistence, now, days=7)
    cancel(
        "enr-1",
        author=ADMIN,
        persistence_layer=persistence,
        now=now + 7 * DAY - timedelta(seconds=1),
    )
    assert by_sk(persistence, "enr-1")["0"]["status"] == "CANCELED"


def test_cancel_with_tenant_id_of_its_tenant(persistence: BasePersistence, now: datetime) -> None:
    enroll_cancelable(persistence, now)
    cancel("enr-1", author=ADMIN, persistence_layer=persistence, tenant_id=TENANT.id, now=now)
    assert by_sk(persistence, "enr-1")["0"]["status"] == "CANCELED"


def test_cancel_leaves_an_expired_lock_to_ttl(persistence: BasePersistence, now: datetime) -> None:
    # An expired lock may already be a newer enrollment's, and it blocks nobody: cancel()
    # leaves it for DynamoDB's TTL instead of sending a second transaction to find out.
    enroll_cancelable(persistence, now, days=None, offset_days=80)  # lock ttl: now + 10 days
    counting = CountingPersistence(persistence)
    cancel("enr-1", author=ADMIN, persistence_layer=counting, now=now + 20 * DAY)
    assert counting.transactions == 1
    assert [item["enrollment_id"] for item in persistence.query("lock")] == ["enr-1"]
    assert "metadata#lock" not in by_sk(persistence, "enr-1")
    enroll_cancelable(persistence, now + 20 * DAY, "enr-2", days=None, offset_days=80)
    assert [item["enrollment_id"] for item in persistence.query("lock")] == ["enr-2"]


def test_cancel_after_the_lock_was_swept(persistence: BasePersistence, now: datetime) -> None:
    enroll_cancelable(persistence, now, days=None, offset_days=80)
    with persistence.transact_writer() as tx:  # what DynamoDB's TTL process does
        tx.delete(key=KeyPair(pk="lock", sk=lock_hash("user-1", "course-1")))
    cancel("enr-1", author=ADMIN, persistence_layer=persistence, now=now + 20 * DAY)
    assert set(by_sk(persistence, "enr-1")) == {
        "0",
        "metadata#tenant",
        "metadata#deduplication_window",
        "canceled_date",
    }
    assert persistence.query("lock") == []


# -- the lock belongs to its owner ------------------------------------------------------------


def test_cancel_leaves_a_newer_enrollments_lock(
    persistence: BasePersistence, now: datetime
) -> None:
    # The old enrollment's lock expires after 10 days; a newer one takes it on day 11.
    enroll_cancelable(persistence, now, "old", days=None, offset_days=80)
    enroll_cancelable(persistence, now + 11 * DAY, "new", days=None, offset_days=80)
    newer_lock = persistence.query("lock")
    assert [item["enrollment_id"] for item in newer_lock] == ["new"]
    new_items = by_sk(persistence, "new")

    counting = CountingPersistence(persistence)
    cancel("old", author=ADMIN, persistence_layer=counting, now=now + 12 * DAY)

    assert by_sk(persistence, "old")["0"]["status"] == "CANCELED"
    assert "metadata#lock" not in by_sk(persistence, "old")
    assert persistence.query("lock") == newer_lock
    assert by_sk(persistence, "new") == new_items
    assert counting.queries == 1
    assert counting.gets == 0
    # The lock still blocks a third enrollment.
    with pytest.raises(DeduplicationConflictError):
        enroll_cancelable(persistence, now + 13 * DAY, "third")


# -- one read, one transaction -------------------------------------------------------------------


@pytest.mark.parametrize("scenario", ["plain", "window", "vacancy", "window-and-vacancy"])
def test_cancel_makes_exactly_one_query_and_one_transaction(
    persistence: BasePersistence, now: datetime, sent: list[int], scenario: str
) -> None:
    options: dict[str, Any] = {}
    if "vacancy" in scenario:
        (options["vacancy"],) = seed_seats(persistence, now)
    enroll_cancelable(persistence, now, offset_days=10 if "window" in scenario else None, **options)
    counting = CountingPersistence(persistence)
    sent_before = sent[0]

    result = cancel("enr-1", author=ADMIN, persistence_layer=counting, now=now + DAY)

    assert (counting.queries, counting.gets, counting.puts, counting.transactions) == (1, 0, 0, 1)
    assert sent[0] - sent_before == 1
    assert (result.returned_seat is not None) == ("vacancy" in scenario)


def test_refused_cancels_send_no_transaction(
    persistence: BasePersistence, now: datetime, sent: list[int]
) -> None:
    enroll(enrollment("no-policy"), tenant=TENANT, persistence_layer=persistence, now=now)
    enroll_cancelable(persistence, now, "short", days=1, offset_days=None)
    counting = CountingPersistence(persistence)
    sent_before = sent[0]
    refusals: list[tuple[str, type[Exception]]] = [
        ("no-policy", CancelNotAllowed),
        ("short", CancelNotAllowed),  # its 1-day window ends exactly now
        ("missing", EnrollmentNotFound),
    ]
    for enrollment_id, error in refusals:
        with pytest.raises(error):
            cancel(enrollment_id, author=ADMIN, persistence_layer=counting, now=now + DAY)
    with pytest.raises(EnrollmentNotFound):
        cancel(
            "short", author=ADMIN, persistence_layer=counting, tenant_id=OTHER_TENANT.id, now=now
        )
    assert counting.queries == 4
    assert counting.transactions == 0
    assert sent[0] == sent_before


# -- refusals change nothing ------------------------------------------------------------------


def test_cancel_without_a_policy_is_not_allowed(
    persistence: BasePersistence, now: datetime
) -> None:
    enroll(
        enrollment(),
        tenant=TENANT,
        persistence_layer=persistence,
        deduplication_window=DeduplicationWindow(offset_days=10),
        now=now,
    )
    before = all_items(persistence)
    with pytest.raises(CancelNotAllowed):
        cancel("enr-1", author=ADMIN, persistence_layer=persistence, now=now)
    assert all_items(persistence) == before


@pytest.mark.parametrize("after", [7 * DAY, 7 * DAY + timedelta(seconds=1), 30 * DAY])
def test_cancel_after_the_policy_window_is_not_allowed(
    persistence: BasePersistence, now: datetime, after: timedelta
) -> None:
    enroll_cancelable(persistence, now, days=7)
    before = all_items(persistence)
    with pytest.raises(CancelNotAllowed):
        cancel("enr-1", author=ADMIN, persistence_layer=persistence, now=now + after)
    assert all_items(persistence) == before


def test_cancel_twice_is_not_allowed(persistence: BasePersistence, now: datetime) -> None:
    enroll_cancelable(persistence, now, days=None)
    cancel("enr-1", author=ADMIN, persistence_layer=persistence, now=now + DAY)
    before = all_items(persistence)
    with pytest.raises(CancelNotAllowed):
        cancel("enr-1", author=ADMIN, persistence_layer=persistence, now=now + 2 * DAY)
    assert all_items(persistence) == before


def test_cancel_of_a_canceled_status_is_not_allowed_even_with_a_policy(
    persistence: BasePersistence, now: datetime
) -> None:
    enroll_cancelable(persistence, now, days=None)
    root = by_sk(persistence, "enr-1")["0"]
    persistence.put_item({**root, "status": "CANCELED"})
    before = all_items(persistence)
    with pytest.raises(CancelNotAllowed):
        cancel("enr-1", author=ADMIN, persistence_layer=persistence, now=now)
    assert all_items(persistence) == before


def test_cancel_of_a_missing_enrollment_is_not_found(
    persistence: BasePersistence, now: datetime
) -> None:
    with pytest.raises(EnrollmentNotFound):
        cancel("nobody", author=ADMIN, persistence_layer=persistence, now=now)
    assert all_items(persistence) == {"enrollments": [], "orders": []}


def test_cancel_for_another_tenant_is_not_found_and_changes_nothing(
    persistence: BasePersistence, now: datetime
) -> None:
    enroll_cancelable(persistence, now)
    before = all_items(persistence)
    with pytest.raises(EnrollmentNotFound):
        cancel(
            "enr-1",
            author=ADMIN,
            persistence_layer=persistence,
            tenant_id=OTHER_TENANT.id,
            now=now,
        )
    assert all_items(persistence) == before


@pytest.mark.parametrize(
    "bad",
    [
        {"enrollment_id": "has#hash"},
        {"enrollment_id": ""},
        {"enrollment_id": 42},
        {"author": {"id": "admin-1", "name": "Admin One"}},
        {"tenant_id": "bad#tenant"},
        {"now": datetime(2026, 3, 3, 12, 0)},
    ],
    ids=["hash-in-id", "empty-id", "int-id", "dict-author", "bad-tenant", "naive-now"],
)
def test_invalid_input_is_refused_before_anything(
    persistence: BasePersistence, now: datetime, bad: dict[str, Any]
) -> None:
    enroll_cancelable(persistence, now)
    before = all_items(persistence)
    arguments: dict[str, Any] = {
        "enrollment_id": "enr-1",
        "author": ADMIN,
        "persistence_layer": persistence,
        "now": now + DAY,
        **bad,
    }
    with pytest.raises(InvalidInput):
        cancel(arguments.pop("enrollment_id"), **arguments)
    assert all_items(persistence) == before


def test_counting_proxy_is_a_persistence_layer(persistence: BasePersistence) -> None:
    assert isinstance(CountingPersistence(persistence), PersistenceLayer)


# -- issue 8 defect 9: an idempotency key makes cancel() safe to retry ---------------------------


def test_a_cancel_retried_with_its_idempotency_key_returns_the_same_result(
    persistence: BasePersistence, now: datetime
) -> None:
    """The first answer is lost to the caller; the retry returns it, seat included, and
    writes nothing."""
    (seat,) = seed_seats(persistence, now)
    enroll_cancelable(persistence, now, vacancy=seat)
    first = cancel(
        "enr-1", author=ADMIN, persistence_layer=persistence, idempotency_key="req-7", now=now
    )
    after_first = all_items(persistence)

    retried = cancel(
        "enr-1",
        author=ADMIN,
        persistence_layer=persistence,
        idempotency_key="req-7",
        now=now + DAY,
    )

    assert first.returned_seat is not None
    assert retried == first
    assert all_items(persistence) == after_first


def test_a_cancel_with_another_or_no_idempotency_key_is_still_refused(
    persistence: BasePersistence, now: datetime
) -> None:
    enroll_cancelable(persistence, now)
    cancel("enr-1", author=ADMIN, persistence_layer=persistence, idempotency_key="req-7", now=now)

    for key in ("req-8", None):
        with pytest.raises(CancelNotAllowed):
            cancel(
                "enr-1", author=ADMIN, persistence_layer=persistence, idempotency_key=key, now=now
            )


def test_an_idempotency_key_does_not_reach_another_tenants_enrollment(
    persistence: BasePersistence, now: datetime
) -> None:
    enroll_cancelable(persistence, now)
    cancel("enr-1", author=ADMIN, persistence_layer=persistence, idempotency_key="req-7", now=now)
    with pytest.raises(EnrollmentNotFound):
        cancel(
            "enr-1",
            author=ADMIN,
            persistence_layer=persistence,
            tenant_id=OTHER_TENANT.id,
            idempotency_key="req-7",
            now=now,
        )


def test_cancel_refuses_a_bad_idempotency_key_before_reading(
    persistence: BasePersistence, now: datetime
) -> None:
    counting = CountingPersistence(persistence)
    for key in ("", "a#b", 7):
        with pytest.raises(InvalidInput):
            cancel(
                "enr-1",
                author=ADMIN,
                persistence_layer=counting,
                idempotency_key=key,  # type: ignore[arg-type]
                now=now,
            )
    assert counting.queries == 0
