"""One test per defect of the seed (DESIGN.md, "Defects of the seed"), on both backends.

Each test fails on the seed's behaviour: the comment above it says how.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import pytest
from boto3.dynamodb.conditions import Attr

from enrollkit import (
    Author,
    CancelPolicy,
    DeduplicationWindow,
    EnrollmentIdConflict,
    EnrollOutcome,
    InvalidInput,
    KeyPair,
    LifecycleEvent,
    cancel,
    enroll,
    lock_hash,
)
from enrollkit.errors import TransactionCanceled, TransactionError
from enrollkit.persistence.base import BasePersistence
from enrollkit.transaction.operations import Operation
from tests.conftest import TENANT
from tests.test_enroll import all_items, by_sk, enrollment, seed_seats

DAY = timedelta(days=1)
ADMIN = Author(id="admin-1", name="Admin One")


def window(offset_days: int) -> DeduplicationWindow:
    return DeduplicationWindow(offset_days=offset_days)


# Seed: transact.condition(lock) and transact.put(lock) in one transaction, which
# DynamoDB rejects ("multiple operations on one item"): every enroll with a window failed.
def test_defect_1_enroll_with_window_touches_the_lock_item_once(
    persistence: BasePersistence, now: datetime, monkeypatch: pytest.MonkeyPatch
) -> None:
    sent: list[tuple[Operation, ...]] = []
    original = persistence.execute_transaction

    def spy(operations: Sequence[Operation], *, client_request_token: str) -> None:
        sent.append(tuple(operations))
        original(operations, client_request_token=client_request_token)

    monkeypatch.setattr(persistence, "execute_transaction", spy)

    outcome = enroll(
        enrollment(),
        tenant=TENANT,
        persistence_layer=persistence,
        deduplication_window=window(10),
        now=now,
    )

    assert outcome is EnrollOutcome.CREATED
    (operations,) = sent
    targets = [(op.table_name, op.key.pk, op.key.sk) for op in operations]
    assert len(targets) == len(set(targets))
    lock = (persistence.table_name, "lock", lock_hash("user-1", "course-1"))
    assert targets.count(lock) == 1
    assert [item["enrollment_id"] for item in persistence.query("lock")] == ["enr-1"]


# Seed: cancel deleted schedules#archive_it, #no_activity, #access_period_ends,
# #does_not_access and "lock": none of them is what enroll writes.
def test_defect_2_cancel_removes_the_schedules_enroll_wrote(
    persistence: BasePersistence, now: datetime
) -> None:
    enroll(
        enrollment(),
        tenant=TENANT,
        persistence_layer=persistence,
        cancel_policy=CancelPolicy(days=7),
        now=now,
    )
    persistence.put_item(
        {"id": "enr-1", "sk": LifecycleEvent.NO_ACTIVITY_7_DAYS.value, "ttl": 1}
    )  # written later by another lifecycle step
    written = {item["sk"] for item in persistence.query("enr-1", sk_prefix="schedules#")}
    assert written == {
        LifecycleEvent.REMINDER_NO_ACCESS_3_DAYS.value,
        LifecycleEvent.ACCESS_PERIOD_REMINDER_30_DAYS.value,
        LifecycleEvent.COURSE_EXPIRED.value,
        LifecycleEvent.NO_ACTIVITY_7_DAYS.value,
    }

    cancel("enr-1", author=ADMIN, persistence_layer=persistence, now=now + DAY)

    assert persistence.query("enr-1", sk_prefix="schedules#") == []


# Seed: cancel deleted lock/<hash> unconditionally, freeing a newer enrollment's lock.
def test_defect_3_cancel_keeps_a_newer_enrollments_lock(
    persistence: BasePersistence, now: datetime
) -> None:
    enroll(
        enrollment("old"),
        tenant=TENANT,
        persistence_layer=persistence,
        deduplication_window=window(80),  # lock expires after 10 days
        cancel_policy=CancelPolicy(),
        now=now,
    )
    enroll(
        enrollment("new"),
        tenant=TENANT,
        persistence_layer=persistence,
        deduplication_window=window(80),
        now=now + 11 * DAY,
    )
    newer_lock = persistence.query("lock")

    cancel("old", author=ADMIN, persistence_layer=persistence, now=now + 12 * DAY)

    assert persistence.query("lock") == newer_lock
    assert [item["enrollment_id"] for item in newer_lock] == ["new"]


# Seed: md5(user_id + course_id), so ("ab", "c") and ("a", "bc") shared one lock.
def test_defect_4_lock_hash_does_not_collide(persistence: BasePersistence, now: datetime) -> None:
    assert lock_hash("ab", "c") != lock_hash("a", "bc")
    for enrollment_id, user_id, course_id in [("e1", "ab", "c"), ("e2", "a", "bc")]:
        outcome = enroll(
            enrollment(enrollment_id, user_id=user_id, course_id=course_id),
            tenant=TENANT,
            persistence_layer=persistence,
            deduplication_window=window(10),
            now=now,
        )
        assert outcome is EnrollOutcome.CREATED
    assert len(persistence.query("lock")) == 2


# The '#'-joined encoding is injective only for ids without '#': lock_hash refuses them,
# as ("a#b", "c") and ("a", "b#c") would share one lock.
@pytest.mark.parametrize(
    ("user_id", "course_id"), [("a#b", "c"), ("a", "b#c"), ("", "c"), ("a", "x\n"), (1, "c")]
)
def test_lock_hash_refuses_ids_it_cannot_encode_injectively(user_id: Any, course_id: Any) -> None:
    with pytest.raises(InvalidInput):
        lock_hash(user_id, course_id)


# Seed compatibility: the original code builds keys positionally, KeyPair('lock', hash).
def test_key_pair_is_built_positionally_or_by_keyword(persistence: BasePersistence) -> None:
    assert KeyPair("lock", "h") == KeyPair(pk="lock", sk="h") == KeyPair("lock", sk="h")
    persistence.put_item({"id": "lock", "sk": "h"})
    assert persistence.get_item(KeyPair("lock", "h")) == {"id": "lock", "sk": "h"}
    with pytest.raises(ValueError):
        KeyPair("", "h")


# Seed compatibility: its exc_cls is a plain exception class. The reasons reach the caller
# on the raised error, and its __cause__ is the TransactionCanceled.
def test_exc_cls_may_be_any_exception_class_and_carries_the_reasons(
    persistence: BasePersistence,
) -> None:
    class SeedDeduplicationConflictError(Exception):  # as in the original code
        def __init__(self, *args: object) -> None:
            super().__init__("Enrollment already exists")

    persistence.put_item({"id": "lock", "sk": "h", "enrollment_id": "other"})
    with (
        pytest.raises(SeedDeduplicationConflictError) as raised,
        persistence.transact_writer() as transact,
    ):
        transact.put(item={"id": "new", "sk": "0"})
        transact.condition(
            key=KeyPair("lock", "h"),
            cond=Attr("sk").not_exists(),
            exc_cls=SeedDeduplicationConflictError,
        )
    error: Any = raised.value
    assert str(error) == "Enrollment already exists"
    assert [reason.code for reason in error.reasons] == ["None", "ConditionalCheckFailed"]
    assert error.failed_index == 1
    assert error.reasons[1].item == {"id": "lock", "sk": "h", "enrollment_id": "other"}
    assert isinstance(error.__cause__, TransactionCanceled)
    assert error.__cause__.reasons == error.reasons
    assert persistence.get_item(KeyPair("new", "0")) is None


def test_an_exc_cls_that_takes_no_message_is_a_transaction_error(
    persistence: BasePersistence,
) -> None:
    class NeedsTwoArguments(Exception):
        def __init__(self, first: str, second: str) -> None:
            super().__init__(first, second)

    with (
        pytest.raises(TransactionError, match="NeedsTwoArguments") as raised,
        persistence.transact_writer() as transact,
    ):
        transact.condition(
            key=KeyPair("absent", "0"), cond=Attr("sk").exists(), exc_cls=NeedsTwoArguments
        )
    assert isinstance(raised.value.__cause__, TransactionCanceled)


# Seed: the lock condition was attribute_not_exists(sk): an expired lock that DynamoDB's
# TTL had not deleted yet still blocked re-enrollment.
def test_defect_5_expired_lock_does_not_block(persistence: BasePersistence, now: datetime) -> None:
    enroll(
        enrollment("first"),
        tenant=TENANT,
        persistence_layer=persistence,
        deduplication_window=window(80),
        now=now,
    )
    later = now + 10 * DAY + timedelta(seconds=1)
    (lock,) = persistence.query("lock")
    assert lock["ttl"] < int(later.timestamp())  # expired, still there

    outcome = enroll(
        enrollment("second"),
        tenant=TENANT,
        persistence_layer=persistence,
        deduplication_window=window(80),
        now=later,
    )
    assert outcome is EnrollOutcome.CREATED


# Seed: ttl(now + access_period - 30 days) for any course: in the past below 30 days.
def test_defect_6_short_course_gets_no_reminder_in_the_past(
    persistence: BasePersistence, now: datetime
) -> None:
    for enrollment_id, access_period in [("twenty", 20), ("two", 2)]:
        enroll(
            enrollment(enrollment_id, course_id=f"c-{access_period}", access_period=access_period),
            tenant=TENANT,
            persistence_layer=persistence,
            now=now,
        )
        schedules = persistence.query(enrollment_id, sk_prefix="schedules#")
        assert schedules, "the expiry is scheduled"
        assert all(item["ttl"] > int(now.timestamp()) for item in schedules)
    assert LifecycleEvent.ACCESS_PERIOD_REMINDER_30_DAYS.value not in by_sk(persistence, "twenty")
    assert set(by_sk(persistence, "two")) == {"0", "metadata#tenant", "schedules#course_expired"}


# Seed: the enrollment put had no condition: an existing id was silently overwritten.
def test_defect_6_enroll_with_an_existing_id_does_not_overwrite(
    persistence: BasePersistence, now: datetime
) -> None:
    enroll(enrollment("same-id"), tenant=TENANT, persistence_layer=persistence, now=now)
    before = all_items(persistence)
    with pytest.raises(EnrollmentIdConflict):
        enroll(
            enrollment("same-id", user_id="user-2", course_id="course-2"),
            tenant=TENANT,
            persistence_layer=persistence,
            now=now + DAY,
        )
    assert all_items(persistence) == before


# Seed: enroll ignored its vacancy parameter; cancel needed the lock hash, the course
# and the vacancy key from its caller.
def test_defect_7_enroll_consumes_the_vacancy(persistence: BasePersistence, now: datetime) -> None:
    (seat,) = seed_seats(persistence, now)
    seat_key = KeyPair(pk=f"vacancies#{seat.org_id}", sk=f"{seat.order_id}#{seat.slot_id}")
    enroll(enrollment(), tenant=TENANT, persistence_layer=persistence, vacancy=seat, now=now)
    assert persistence.get_item(seat_key) is None
    assert by_sk(persistence, "enr-1")["parent_vacancy"]["vacancy"] == seat_key.as_key()


def test_defect_7_cancel_needs_only_the_enrollment_id(
    persistence: BasePersistence, now: datetime
) -> None:
    parameters = set(inspect.signature(cancel).parameters)
    assert parameters == {
        "enrollment_id",
        "author",
        "persistence_layer",
        "tenant_id",
        "idempotency_key",
        "override",
        "now",
    }

    (seat,) = seed_seats(persistence, now)
    enroll(
        enrollment(),
        tenant=TENANT,
        persistence_layer=persistence,
        vacancy=seat,
        deduplication_window=window(10),
        cancel_policy=CancelPolicy(days=7),
        now=now,
    )
    result = cancel("enr-1", author=ADMIN, persistence_layer=persistence, now=now + DAY)

    assert persistence.query("lock") == []
    assert result.returned_seat is not None
    returned = result.returned_seat
    assert (returned.org_id, returned.order_id) == (seat.org_id, seat.order_id)
    new_seat = persistence.get_item(
        KeyPair(pk=f"vacancies#{returned.org_id}", sk=f"{returned.order_id}#{returned.slot_id}")
    )
    assert new_seat is not None
    assert new_seat["course"]["id"] == "course-1"
