"""enroll(): the seed's item layout, the schedule, the lock, idempotency, input checks.

Every test runs on both backends (the ``persistence`` fixture).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from enrollkit import (
    Author,
    CanceledEnrollmentId,
    CancelPolicy,
    DeduplicationConflictError,
    DeduplicationWindow,
    DynamoDBPersistence,
    Enrollment,
    EnrollmentIdConflict,
    EnrollmentStatus,
    EnrollOutcome,
    InMemoryPersistence,
    InvalidInput,
    KeyPair,
    LifecycleEvent,
    Tenant,
    Vacancy,
    VacancyUnavailable,
    add_vacancies,
    cancel,
    enroll,
    lock_hash,
)
from enrollkit.persistence.base import BasePersistence
from enrollkit.persistence.marshal import deserialize_item
from tests.conftest import OTHER_TENANT, TENANT, make_course, make_user

DAY = timedelta(days=1)


# -- helpers (also used by the cancel, seed-defect and race tests) ------------------------


def all_items(persistence: Any) -> dict[str, list[dict[str, Any]]]:
    """Every item of both tables, sorted: a snapshot to compare before/after."""
    inner = getattr(persistence, "inner", persistence)
    snapshot: dict[str, list[dict[str, Any]]] = {}
    for label, table in (("enrollments", inner.table_name), ("orders", inner.order_table_name)):
        if isinstance(inner, InMemoryPersistence):
            items = inner.scan(table_name=table)
        else:
            assert isinstance(inner, DynamoDBPersistence)
            pages = inner.client.get_paginator("scan").paginate(
                TableName=table, ConsistentRead=True
            )
            items = [deserialize_item(item) for page in pages for item in page["Items"]]
        snapshot[label] = sorted(items, key=lambda item: (item["id"], item["sk"]))
    return snapshot


def by_sk(persistence: Any, pk: str) -> dict[str, dict[str, Any]]:
    return {item["sk"]: item for item in persistence.query(pk)}


def epoch(instant: datetime) -> int:
    return int(instant.timestamp())


def iso_utc(instant: datetime) -> str:
    return instant.astimezone(timezone.utc).isoformat()


def enrollment(
    enrollment_id: str = "enr-1",
    user_id: str = "user-1",
    course_id: str = "course-1",
    access_period: int = 90,
) -> Enrollment:
    return Enrollment(
        id=enrollment_id,
        user=make_user(user_id),
        course=make_course(course_id, access_period),
    )


def seed_seats(
    persistence: BasePersistence, now: datetime, course_id: str = "course-1", quantity: int = 1
) -> list[Vacancy]:
    persistence.put_item({"id": "order-1", "sk": "0"}, table_name=persistence.order_table_name)
    return add_vacancies(
        org_id=TENANT.id,
        order_id="order-1",
        course=make_course(course_id),
        quantity=quantity,
        persistence_layer=persistence,
        now=now,
    )


# -- layout -------------------------------------------------------------------------------


def test_enroll_writes_the_seed_layout(persistence: BasePersistence, now: datetime) -> None:
    outcome = enroll(
        enrollment(),
        tenant=TENANT,
        persistence_layer=persistence,
        deduplication_window=DeduplicationWindow(offset_days=10),
        cancel_policy=CancelPolicy(days=7),
        now=now,
    )
    assert outcome is EnrollOutcome.CREATED

    created = "2036-03-02T12:30:15.123456+00:00"
    assert iso_utc(now) == created
    hash_ = lock_hash("user-1", "course-1")
    lock_ttl = epoch(now + 80 * DAY)
    schedule = {
        "name": "Name user-1",
        "email": "user-1@example.com",
        "course": "Course course-1",
        "create_date": created,
    }
    assert by_sk(persistence, "enr-1") == {
        "0": {
            "id": "enr-1",
            "sk": "0",
            "user": {"id": "user-1", "name": "Name user-1", "email": "user-1@example.com"},
            "course": {"id": "course-1", "name": "Course course-1", "access_period": 90},
            "status": "PENDING",
            "progress": 0,
            "create_date": created,
            "metadata__tenant_id": "tenant-1",
            "metadata__related_ids": {"tenant-1", "user-1"},
            # The listing index keys (added to the seed's layout; see access-patterns.md).
            "index__created": "2036-03-02T12:30:15.123456Z#enr-1",
            "index__user": "tenant-1#user-1",
            "index__course": "tenant-1#course-1",
            "index__status": "tenant-1#PENDING",
            "index__user_status": "tenant-1#user-1#PENDING",
            "index__course_status": "tenant-1#course-1#PENDING",
        },
        "metadata#tenant": {
            "id": "enr-1",
            "sk": "metadata#tenant",
            "tenant_id": "ORG#tenant-1",
            "name": "Acme Training",
            "create_date": created,
        },
        "schedules#reminder_no_access_3_days": {
            "id": "enr-1",
            "sk": "schedules#reminder_no_access_3_days",
            **schedule,
            "ttl": epoch(now + 3 * DAY),
            # the due-time index: <day>#<shard of the enrollment id>, the due second
            "due_shard": "2036-03-05#11",
            "due_at": "2036-03-05T12:30:15Z",
        },
        "schedules#access_period_reminder_30_days": {
            "id": "enr-1",
            "sk": "schedules#access_period_reminder_30_days",
            **schedule,
            "ttl": epoch(now + 60 * DAY),
            # the due-time index: <day>#<shard of the enrollment id>, the due second
            "due_shard": "2036-05-01#11",
            "due_at": "2036-05-01T12:30:15Z",
        },
        "schedules#course_expired": {
            "id": "enr-1",
            "sk": "schedules#course_expired",
            **schedule,
            "ttl": epoch(now + 90 * DAY),
            # the due-time index: <day>#<shard of the enrollment id>, the due second
            "due_shard": "2036-05-31#11",
            "due_at": "2036-05-31T12:30:15Z",
        },
        "metadata#lock": {
            "id": "enr-1",
            "sk": "metadata#lock",
            "hash": hash_,
            "create_date": created,
            "ttl": lock_ttl,
        },
        "metadata#deduplication_window": {
            "id": "enr-1",
            "sk": "metadata#deduplication_window",
            "offset_days": 10,
            "create_date": created,
        },
        "cancel_policy": {
            "id": "enr-1",
            "sk": "cancel_policy",
            "create_date": created,
            "ttl": epoch(now + 7 * DAY),
        },
    }
    assert persistence.query("lock") == [
        {
            "id": "lock",
            "sk": hash_,
            "enrollment_id": "enr-1",
            "tenant_id": TENANT.id,
            "create_date": created,
            "ttl": lock_ttl,
        }
    ]
    # ttl is whole epoch seconds, truncated: NOW has microseconds.
    assert (
        by_sk(persistence, "enr-1")["schedules#course_expired"]["ttl"] == 2095849815
    )  # NOW + 90 days
    assert all_items(persistence)["orders"] == []


def test_enroll_without_window_or_policy_writes_no_lock_and_no_policy(
    persistence: BasePersistence, now: datetime
) -> None:
    assert enroll(enrollment(), tenant=TENANT, persistence_layer=persistence, now=now) is (
        EnrollOutcome.CREATED
    )
    assert set(by_sk(persistence, "enr-1")) == {
        "0",
        "metadata#tenant",
        "schedules#reminder_no_access_3_days",
        "schedules#access_period_reminder_30_days",
        "schedules#course_expired",
    }
    assert persistence.query("lock") == []


def test_cancel_policy_without_days_has_no_ttl(persistence: BasePersistence, now: datetime) -> None:
    enroll(
        enrollment(),
        tenant=TENANT,
        persistence_layer=persistence,
        cancel_policy=CancelPolicy(),
        now=now,
    )
    assert by_sk(persistence, "enr-1")["cancel_policy"] == {
        "id": "enr-1",
        "sk": "cancel_policy",
        "create_date": iso_utc(now),
    }


def test_enroll_with_a_vacancy_consumes_the_seat(
    persistence: BasePersistence, now: datetime
) -> None:
    (seat,) = seed_seats(persistence, now)
    seat_key = KeyPair(pk=f"vacancies#{seat.org_id}", sk=f"order-1#{seat.slot_id}")
    assert persistence.get_item(seat_key) is not None
    later = now + DAY

    enroll(enrollment(), tenant=TENANT, persistence_layer=persistence, vacancy=seat, now=later)

    assert persistence.get_item(seat_key) is None
    assert by_sk(persistence, "enr-1")["parent_vacancy"] == {
        "id": "enr-1",
        "sk": "parent_vacancy",
        "vacancy": {"id": f"vacancies#{TENANT.id}", "sk": f"order-1#{seat.slot_id}"},
        "order_id": "order-1",
        "create_date": iso_utc(later),
    }
    record = persistence.get_item(
        KeyPair(pk="order-1", sk=f"generated_items#{seat.slot_id}"),
        table_name=persistence.order_table_name,
    )
    assert record is not None
    assert record["status"] == "USED"
    assert record["update_date"] == iso_utc(later)


@pytest.mark.parametrize("problem", ["missing", "other-course", "used"])
def test_enroll_with_an_unavailable_vacancy_writes_nothing(
    persistence: BasePersistence, now: datetime, problem: str
) -> None:
    (seat,) = seed_seats(
        persistence, now, course_id="course-2" if problem == "other-course" else "course-1"
    )
    if problem == "missing":
        seat = Vacancy(org_id=seat.org_id, order_id=seat.order_id, slot_id="no-such-slot")
    if problem == "used":
        enroll(
            enrollment("first", user_id="user-0"),
            tenant=TENANT,
            persistence_layer=persistence,
            vacancy=seat,
            now=now,
        )
    before = all_items(persistence)
    with pytest.raises(VacancyUnavailable):
        enroll(enrollment(), tenant=TENANT, persistence_layer=persistence, vacancy=seat, now=now)
    assert all_items(persistence) == before


# -- the schedule ---------------------------------------------------------------------------

REMINDER_3 = LifecycleEvent.REMINDER_NO_ACCESS_3_DAYS
REMINDER_30 = LifecycleEvent.ACCESS_PERIOD_REMINDER_30_DAYS
EXPIRED = LifecycleEvent.COURSE_EXPIRED


@pytest.mark.parametrize(
    ("access_period", "expected"),
    [
        (90, {REMINDER_3: 3, REMINDER_30: 60, EXPIRED: 90}),
        (33, {REMINDER_3: 3, REMINDER_30: 3, EXPIRED: 33}),
        (31, {REMINDER_3: 3, REMINDER_30: 1, EXPIRED: 31}),
        (30, {REMINDER_3: 3, EXPIRED: 30}),  # the 30-day reminder would be due at enrollment
        (20, {REMINDER_3: 3, EXPIRED: 20}),  # ... or before it
        (4, {REMINDER_3: 3, EXPIRED: 4}),
        (3, {EXPIRED: 3}),  # the 3-day reminder would be due at expiry
        (2, {EXPIRED: 2}),  # ... or after it
        (1, {EXPIRED: 1}),
    ],
)
def test_reminders_are_never_in_the_past_nor_at_or_after_expiry(
    persistence: BasePersistence,
    now: datetime,
    access_period: int,
    expected: dict[LifecycleEvent, int],
) -> None:
    enroll(
        enrollment(access_period=access_period),
        tenant=TENANT,
        persistence_layer=persistence,
        now=now,
    )
    schedules = {
        item["sk"]: item["ttl"] for item in persistence.query("enr-1", sk_prefix="schedules#")
    }
    assert schedules == {event.value: epoch(now + days * DAY) for event, days in expected.items()}
    assert all(ttl > epoch(now) for ttl in schedules.values())


def test_enroll_converts_an_aware_now_to_utc(persistence: BasePersistence, now: datetime) -> None:
    elsewhere = now.astimezone(timezone(timedelta(hours=-3)))
    enroll(
        enrollment(),
        tenant=TENANT,
        persistence_layer=persistence,
        deduplication_window=DeduplicationWindow(offset_days=0),
        now=elsewhere,
    )
    items = by_sk(persistence, "enr-1")
    assert items["0"]["create_date"] == "2036-03-02T12:30:15.123456+00:00"
    assert items["schedules#course_expired"]["ttl"] == epoch(now + 90 * DAY)
    assert items["metadata#lock"]["ttl"] == epoch(now + 90 * DAY)


# -- the (user, course) lock ------------------------------------------------------------------


def window(offset_days: int = 80) -> DeduplicationWindow:
    return DeduplicationWindow(offset_days=offset_days)


def test_an_unexpired_lock_blocks_and_the_loser_writes_nothing(
    persistence: BasePersistence, now: datetime
) -> None:
    enroll(
        enrollment("first"),
        tenant=TENANT,
        persistence_layer=persistence,
        deduplication_window=window(),
        now=now,
    )
    before = all_items(persistence)
    # One second before the lock's ttl: still held, with or without a window.
    almost = now + 10 * DAY - timedelta(seconds=1)
    for second_window in (window(), None):
        with pytest.raises(DeduplicationConflictError) as raised:
            enroll(
                enrollment("second"),
                tenant=TENANT,
                persistence_layer=persistence,
                deduplication_window=second_window,
                cancel_policy=CancelPolicy(days=3),
                now=almost,
            )
        assert raised.value.failed_item is not None
        assert raised.value.failed_item["enrollment_id"] == "first"
    assert all_items(persistence) == before
    assert persistence.query("second") == []


@pytest.mark.parametrize("after", [timedelta(0), timedelta(hours=1), timedelta(days=400)])
def test_an_expired_lock_still_present_does_not_block(
    persistence: BasePersistence, now: datetime, after: timedelta
) -> None:
    enroll(
        enrollment("first"),
        tenant=TENANT,
        persistence_layer=persistence,
        deduplication_window=window(),
        now=now,
    )
    expired_at = now + 10 * DAY
    lock_before = persistence.query("lock")
    assert [item["ttl"] for item in lock_before] == [epoch(expired_at)]  # never swept here

    later = expired_at + after
    assert (
        enroll(
            enrollment("second"),
            tenant=TENANT,
            persistence_layer=persistence,
            deduplication_window=window(),
            now=later,
        )
        is EnrollOutcome.CREATED
    )
    (lock,) = persistence.query("lock")
    assert lock["enrollment_id"] == "second"
    assert lock["ttl"] == epoch(later + 10 * DAY)
    assert by_sk(persistence, "second")["metadata#lock"]["hash"] == lock["sk"]


def test_enroll_without_window_passes_an_expired_lock_and_leaves_it(
    persistence: BasePersistence, now: datetime
) -> None:
    enroll(
        enrollment("first"),
        tenant=TENANT,
        persistence_layer=persistence,
        deduplication_window=window(),
        now=now,
    )
    lock_before = persistence.query("lock")
    enroll(enrollment("second"), tenant=TENANT, persistence_layer=persistence, now=now + 11 * DAY)
    assert persistence.query("lock") == lock_before
    assert "metadata#lock" not in by_sk(persistence, "second")


def test_enroll_without_window_checks_but_does_not_take_the_lock(
    persistence: BasePersistence, now: datetime
) -> None:
    enroll(enrollment("first"), tenant=TENANT, persistence_layer=persistence, now=now)
    assert persistence.query("lock") == []
    assert (
        enroll(
            enrollment("second"),
            tenant=TENANT,
            persistence_layer=persistence,
            deduplication_window=window(),
            now=now,
        )
        is EnrollOutcome.CREATED
    )


def test_locks_are_per_user_and_course(persistence: BasePersistence, now: datetime) -> None:
    pairs = [("user-1", "course-1"), ("user-1", "course-2"), ("user-2", "course-1")]
    for index, (user_id, course_id) in enumerate(pairs):
        enroll(
            enrollment(f"e{index}", user_id=user_id, course_id=course_id),
            tenant=TENANT,
            persistence_layer=persistence,
            deduplication_window=window(),
            now=now,
        )
    assert sorted(item["sk"] for item in persistence.query("lock")) == sorted(
        lock_hash(user_id, course_id) for user_id, course_id in pairs
    )


def test_window_offset_zero_locks_for_the_whole_access_period(
    persistence: BasePersistence, now: datetime
) -> None:
    enroll(
        enrollment(),
        tenant=TENANT,
        persistence_layer=persistence,
        deduplication_window=window(0),
        now=now,
    )
    (lock,) = persistence.query("lock")
    assert lock["ttl"] == epoch(now + 90 * DAY)


# -- idempotency and id conflicts ------------------------------------------------------------


@pytest.mark.parametrize("with_window", [False, True])
@pytest.mark.parametrize("with_policy", [False, True])
def test_a_retried_enroll_returns_already_enrolled_and_changes_nothing(
    persistence: BasePersistence, now: datetime, with_window: bool, with_policy: bool
) -> None:
    options: dict[str, Any] = {
        "deduplication_window": window(10) if with_window else None,
        "cancel_policy": CancelPolicy(days=7) if with_policy else None,
    }
    first = enroll(enrollment(), tenant=TENANT, persistence_layer=persistence, now=now, **options)
    assert first is EnrollOutcome.CREATED
    before = all_items(persistence)
    for retry_at in (now, now + timedelta(minutes=5)):
        again = enroll(
            enrollment(), tenant=TENANT, persistence_layer=persistence, now=retry_at, **options
        )
        assert again is EnrollOutcome.ALREADY_ENROLLED
        assert all_items(persistence) == before


def test_a_retried_enroll_with_a_vacancy_takes_no_second_seat(
    persistence: BasePersistence, now: datetime
) -> None:
    first, second = seed_seats(persistence, now, quantity=2)
    enroll(enrollment(), tenant=TENANT, persistence_layer=persistence, vacancy=first, now=now)
    before = all_items(persistence)
    outcome = enroll(
        enrollment(), tenant=TENANT, persistence_layer=persistence, vacancy=second, now=now
    )
    assert outcome is EnrollOutcome.ALREADY_ENROLLED
    assert all_items(persistence) == before


@pytest.mark.parametrize(
    ("other", "tenant"),
    [
        (enrollment(user_id="user-2"), TENANT),
        (enrollment(course_id="course-2"), TENANT),
        (enrollment(access_period=60), TENANT),
        (enrollment(), OTHER_TENANT),
    ],
    ids=["other-user", "other-course", "other-course-content", "other-tenant"],
)
def test_same_id_with_other_content_is_an_id_conflict(
    persistence: BasePersistence, now: datetime, other: Enrollment, tenant: Tenant
) -> None:
    enroll(
        enrollment(),
        tenant=TENANT,
        persistence_layer=persistence,
        deduplication_window=window(),
        now=now,
    )
    before = all_items(persistence)
    with pytest.raises(EnrollmentIdConflict) as raised:
        enroll(other, tenant=tenant, persistence_layer=persistence, now=now + DAY)
    # It names the failed operation, but does not hand out the existing enrollment,
    # which may be another tenant's.
    assert raised.value.failed_index == 0
    assert raised.value.reasons[0].code == "ConditionalCheckFailed"
    assert all(reason.item is None for reason in raised.value.reasons)
    assert all_items(persistence) == before


# -- input checks -------------------------------------------------------------------------------


def test_naive_now_is_invalid_input_and_writes_nothing(persistence: BasePersistence) -> None:
    with pytest.raises(InvalidInput):
        enroll(
            enrollment(),
            tenant=TENANT,
            persistence_layer=persistence,
            deduplication_window=window(),
            now=datetime(2026, 3, 2, 12, 0),
        )
    assert all_items(persistence) == {"enrollments": [], "orders": []}


@pytest.mark.parametrize("offset_days", [90, 91, 36500])
def test_window_offset_not_shorter_than_the_access_period_is_invalid_and_writes_nothing(
    persistence: BasePersistence, now: datetime, offset_days: int
) -> None:
    with pytest.raises(InvalidInput):
        enroll(
            enrollment(access_period=90),
            tenant=TENANT,
            persistence_layer=persistence,
            deduplication_window=window(offset_days),
            now=now,
        )
    assert all_items(persistence) == {"enrollments": [], "orders": []}


def test_window_offset_one_day_short_of_the_access_period_locks_for_one_day(
    persistence: BasePersistence, now: datetime
) -> None:
    enroll(
        enrollment(access_period=90),
        tenant=TENANT,
        persistence_layer=persistence,
        deduplication_window=window(89),
        now=now,
    )
    (lock,) = persistence.query("lock")
    assert lock["ttl"] == epoch(now + DAY)


@pytest.mark.parametrize(
    "bad",
    [
        {"enrollment": {"id": "x"}},
        {"tenant": {"id": "tenant-1", "name": "Acme"}},
        {"deduplication_window": {"offset_days": 1}},
        {"cancel_policy": 7},
        {"vacancy": "vacancies#tenant-1/order-1#slot"},
        {"now": "2026-03-02T12:00:00+00:00"},
    ],
    ids=lambda bad: next(iter(bad)),
)
def test_wrongly_typed_arguments_are_invalid_input_and_write_nothing(
    persistence: BasePersistence, now: datetime, bad: dict[str, Any]
) -> None:
    arguments: dict[str, Any] = {
        "enrollment": enrollment(),
        "tenant": TENANT,
        "persistence_layer": persistence,
        "now": now,
        **bad,
    }
    subject = arguments.pop("enrollment")
    with pytest.raises(InvalidInput):
        enroll(subject, **arguments)
    assert all_items(persistence) == {"enrollments": [], "orders": []}


# -- issue 8: status and canceled ids -------------------------------------------------------


@pytest.mark.parametrize(
    "status", [status for status in EnrollmentStatus if status is not EnrollmentStatus.PENDING]
)
def test_enroll_refuses_a_status_other_than_pending_and_writes_nothing(
    persistence: BasePersistence, now: datetime, status: EnrollmentStatus
) -> None:
    """Defect 2: Enrollment(status=CANCELED) took a seat and a lock cancel() never returned."""
    (seat,) = seed_seats(persistence, now)
    before = all_items(persistence)
    with pytest.raises(InvalidInput, match="PENDING"):
        enroll(
            enrollment().model_copy(update={"status": status}),
            tenant=TENANT,
            persistence_layer=persistence,
            vacancy=seat,
            deduplication_window=DeduplicationWindow(offset_days=10),
            now=now,
        )
    assert all_items(persistence) == before


def test_enroll_again_with_a_canceled_enrollments_id_is_not_already_enrolled(
    persistence: BasePersistence, now: datetime
) -> None:
    """Defect 3: the id of a canceled enrollment is spent; enroll() says so, and writes
    nothing."""
    enroll(
        enrollment(),
        tenant=TENANT,
        persistence_layer=persistence,
        cancel_policy=CancelPolicy(),
        now=now,
    )
    cancel("enr-1", author=Author(id="admin", name="Admin"), persistence_layer=persistence, now=now)
    before = all_items(persistence)

    with pytest.raises(CanceledEnrollmentId) as raised:
        enroll(enrollment(), tenant=TENANT, persistence_layer=persistence, now=now + DAY)

    assert isinstance(raised.value, EnrollmentIdConflict)
    assert all_items(persistence) == before


def test_a_canceled_enrollment_of_another_tenant_is_a_plain_id_conflict(
    persistence: BasePersistence, now: datetime
) -> None:
    """Whether another tenant's enrollment was canceled is not told."""
    enroll(
        enrollment(),
        tenant=TENANT,
        persistence_layer=persistence,
        cancel_policy=CancelPolicy(),
        now=now,
    )
    cancel("enr-1", author=Author(id="admin", name="Admin"), persistence_layer=persistence, now=now)
    with pytest.raises(EnrollmentIdConflict) as raised:
        enroll(enrollment(), tenant=OTHER_TENANT, persistence_layer=persistence, now=now)
    assert not isinstance(raised.value, CanceledEnrollmentId)
