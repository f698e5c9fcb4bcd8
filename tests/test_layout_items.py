"""The exact items and changes the operations hand their transaction: every attribute, in
order, with its value and its type (``True`` is not ``1`` here, nor a list a set).

What an operation hands the builder does not depend on the backend, so these run on the
embedded one; the contract tests (test_enroll.py, test_cancel.py, ...) show what each
backend then stores. A change to an item builder that changes a stored byte fails here.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from enrollkit import (
    AdminOverride,
    Author,
    CancelPolicy,
    Certificate,
    DeduplicationConflictError,
    DeduplicationWindow,
    Enrollment,
    InMemoryPersistence,
    KeyPair,
    cancel,
    complete,
    enroll,
    lock_hash,
    record_access,
)
from enrollkit.layout.table import attr
from enrollkit.transaction.builder import TransactionBuilder
from tests.conftest import NOW, TENANT, make_course, make_user
from tests.test_enroll import seed_seats

DAY = timedelta(days=1)
CREATED = "2036-03-02T12:30:15.123456+00:00"
NOW_TTL = 2088073815  # NOW in whole epoch seconds


def typed(value: Any) -> Any:
    """``value`` with the type of each part, a dict as its (name, value) pairs in order."""
    if isinstance(value, dict):
        return (dict, [(name, typed(part)) for name, part in value.items()])
    if isinstance(value, (set, frozenset)):
        return (type(value), sorted(value))
    if isinstance(value, (list, tuple)):
        return (type(value), [typed(part) for part in value])
    return (type(value), value)


Handed = list[tuple[str, dict[str, Any]]]


@pytest.fixture
def handed(monkeypatch: pytest.MonkeyPatch) -> Iterator[Handed]:
    """Every call the operations make on their transaction builder, with its arguments."""
    calls: Handed = []
    for method in ("put", "update", "delete", "condition"):
        original = getattr(TransactionBuilder, method)

        def spy(
            self: TransactionBuilder,
            *,
            _original: Any = original,
            _method: str = method,
            **arguments: Any,
        ) -> None:
            calls.append((_method, arguments))
            _original(self, **arguments)

        monkeypatch.setattr(TransactionBuilder, method, spy)
    yield calls


def items_of(calls: Handed) -> list[Any]:
    """The items put, typed."""
    return [typed(arguments["item"]) for method, arguments in calls if method == "put"]


def enrollment(number: int) -> Enrollment:
    return Enrollment(
        id=f"enr-{number}", user=make_user(f"user-{number}"), course=make_course("course-1")
    )


def root(number: int) -> dict[str, Any]:
    user = f"user-{number}"
    return {
        "id": f"enr-{number}",
        "user": {"id": user, "name": f"Name {user}", "email": f"{user}@example.com"},
        "course": {"id": "course-1", "name": "Course course-1", "access_period": 90},
        "status": "PENDING",
        "progress": 0,
        "sk": "0",
        "create_date": CREATED,
        "metadata__tenant_id": "tenant-1",
        "metadata__related_ids": {"tenant-1", user},
        "index__created": f"2036-03-02T12:30:15.123456Z#enr-{number}",
        "index__user": f"tenant-1#{user}",
        "index__course": "tenant-1#course-1",
        "index__status": "tenant-1#PENDING",
        "index__user_status": f"tenant-1#{user}#PENDING",
        "index__course_status": "tenant-1#course-1#PENDING",
    }


def tenant_item(number: int) -> dict[str, Any]:
    return {
        "id": f"enr-{number}",
        "sk": "metadata#tenant",
        "tenant_id": "ORG#tenant-1",
        "name": "Acme Training",
        "create_date": CREATED,
    }


def schedule_items(number: int, shard: str) -> list[dict[str, Any]]:
    user = f"user-{number}"
    return [
        {
            "id": f"enr-{number}",
            "sk": f"schedules#{event}",
            "name": f"Name {user}",
            "email": f"{user}@example.com",
            "course": "Course course-1",
            "create_date": CREATED,
            "ttl": NOW_TTL + days * 86400,
            "due_shard": f"{day}#{shard}",
            "due_at": f"{day}T12:30:15Z",
        }
        for event, days, day in (
            ("reminder_no_access_3_days", 3, "2036-03-05"),
            ("access_period_reminder_30_days", 60, "2036-05-01"),
            ("course_expired", 90, "2036-05-31"),
        )
    ]


def lock_is_free() -> Any:
    return attr("sk").not_exists() | attr("ttl").lte(NOW_TTL)


def test_enroll_with_a_window_and_a_policy(handed: Handed) -> None:
    enroll(
        enrollment(1),
        tenant=TENANT,
        persistence_layer=InMemoryPersistence(),
        deduplication_window=DeduplicationWindow(offset_days=10),
        cancel_policy=CancelPolicy(days=7),
        now=NOW,
    )
    hash_ = lock_hash("user-1", "course-1")
    lock_ttl = NOW_TTL + 80 * 86400
    assert items_of(handed) == [
        typed(item)
        for item in (
            root(1),
            tenant_item(1),
            *schedule_items(1, "11"),
            {
                "id": "lock",
                "sk": hash_,
                "enrollment_id": "enr-1",
                "tenant_id": "tenant-1",
                "create_date": CREATED,
                "ttl": lock_ttl,
            },
            {
                "id": "enr-1",
                "sk": "metadata#lock",
                "hash": hash_,
                "create_date": CREATED,
                "ttl": lock_ttl,
            },
            {
                "id": "enr-1",
                "sk": "metadata#deduplication_window",
                "offset_days": 10,
                "create_date": CREATED,
            },
            {
                "id": "enr-1",
                "sk": "cancel_policy",
                "create_date": CREATED,
                "ttl": NOW_TTL + 7 * 86400,
            },
        )
    ]
    conditions = [(method, arguments.get("cond")) for method, arguments in handed]
    assert conditions == [("put", attr("id").not_exists())] + [("put", None)] * 4 + [
        ("put", lock_is_free()),
        *[("put", None)] * 3,
    ]
    assert handed[5][1]["exc_cls"] is DeduplicationConflictError
    assert all("table_name" not in arguments for _, arguments in handed)


def test_enroll_without_a_window_checks_the_lock(handed: Handed) -> None:
    enroll(enrollment(2), tenant=TENANT, persistence_layer=InMemoryPersistence(), now=NOW)
    assert items_of(handed) == [
        typed(item) for item in (root(2), tenant_item(2), *schedule_items(2, "01"))
    ]
    method, check = handed[-1]
    assert method == "condition"
    assert check["key"] == KeyPair("lock", lock_hash("user-2", "course-1"))
    assert check["cond"] == lock_is_free()
    assert check["exc_cls"] is DeduplicationConflictError


def test_enroll_with_a_seat_and_an_unlimited_policy(handed: Handed) -> None:
    store = InMemoryPersistence()
    (seat,) = seed_seats(store, NOW)
    handed.clear()
    enroll(
        enrollment(3),
        tenant=TENANT,
        persistence_layer=store,
        vacancy=seat,
        cancel_policy=CancelPolicy(),
        now=NOW,
    )
    seat_key = {"id": "vacancies#tenant-1", "sk": f"order-1#{seat.slot_id}"}
    assert items_of(handed) == [
        typed(item)
        for item in (
            root(3),
            tenant_item(3),
            *schedule_items(3, "07"),
            {
                "id": "enr-3",
                "sk": "parent_vacancy",
                "vacancy": seat_key,
                "order_id": "order-1",
                "create_date": CREATED,
            },
            {"id": "enr-3", "sk": "cancel_policy", "create_date": CREATED},
        )
    ]
    (used,) = [arguments for method, arguments in handed if method == "update"]
    assert used["key"] == KeyPair("order-1", f"generated_items#{seat.slot_id}")
    assert typed(used["set"]) == typed(
        {"status": "USED", "update_date": CREATED, "enrollment_id": "enr-3"}
    )
    assert used["table_name"] == "orders"
    (taken,) = [arguments for method, arguments in handed if method == "delete"]
    assert taken["key"] == KeyPair(seat_key["id"], seat_key["sk"])
    exists = attr("sk").exists()
    assert [(method, arguments.get("cond")) for method, arguments in handed] == [
        ("put", attr("id").not_exists()),
        *[("put", None)] * 4,
        ("condition", lock_is_free()),
        ("condition", exists & (attr("org_id").not_exists() | attr("org_id").eq("tenant-1"))),
        (
            "delete",
            exists & attr("course.id").eq("course-1") & attr("course.access_period").eq(90),
        ),
        ("update", attr("status").eq("AVAILABLE")),
        ("put", None),
        ("put", None),
    ]


def test_cancel_and_the_lifecycle_steps(handed: Handed) -> None:
    store = InMemoryPersistence()
    enroll(
        enrollment(1), tenant=TENANT, persistence_layer=store, cancel_policy=CancelPolicy(), now=NOW
    )
    enroll(
        enrollment(2), tenant=TENANT, persistence_layer=store, cancel_policy=CancelPolicy(), now=NOW
    )
    handed.clear()

    admin = Author(id="admin-1", name="Admin One")
    cancel("enr-2", author=admin, persistence_layer=store, now=NOW + DAY)
    later = "2036-03-03T12:30:15.123456+00:00"
    (canceled_date,) = [arguments["item"] for method, arguments in handed if method == "put"]
    assert typed({**canceled_date, "request_token": "?"}) == typed(
        {
            "id": "enr-2",
            "sk": "canceled_date",
            "author": {"id": "admin-1", "name": "Admin One"},
            "create_date": later,
            "request_token": "?",
        }
    )
    (canceled,) = [arguments for method, arguments in handed if method == "update"]
    assert typed(canceled["set"]) == typed(
        {
            "status": "CANCELED",
            "update_date": later,
            "index__status": "tenant-1#CANCELED",
            "index__user_status": "tenant-1#user-2#CANCELED",
            "index__course_status": "tenant-1#course-1#CANCELED",
        }
    )
    handed.clear()

    record_access("enr-1", persistence_layer=store, progress=5, now=NOW + DAY)
    no_activity = {"ttl": NOW_TTL + 8 * 86400, "due_shard": "2036-03-10#11"}
    no_activity["due_at"] = "2036-03-10T12:30:15Z"
    sets = [typed(arguments["set"]) for method, arguments in handed if method == "update"]
    assert sets == [
        typed({"last_access_date": later, "progress": 5}),
        typed(no_activity),
        typed(
            {
                "status": "IN_PROGRESS",
                "update_date": later,
                "first_access_date": later,
                "last_access_date": later,
                "progress": 5,
                "index__status": "tenant-1#IN_PROGRESS",
                "index__user_status": "tenant-1#user-1#IN_PROGRESS",
                "index__course_status": "tenant-1#course-1#IN_PROGRESS",
            }
        ),
    ]
    (scheduled,) = items_of(handed)
    assert scheduled == typed(
        {
            "id": "enr-1",
            "sk": "schedules#no_activity_7_days",
            "name": "Name user-1",
            "email": "user-1@example.com",
            "course": "Course course-1",
            "create_date": later,
            **no_activity,
        }
    )
    handed.clear()

    expires = NOW + 365 * DAY
    certificate = Certificate(expires_at=expires)
    complete("enr-1", persistence_layer=store, certificate=certificate, now=NOW + 20 * DAY)
    done = "2036-03-22T12:30:15.123456+00:00"
    (completed,) = [typed(arguments["set"]) for method, arguments in handed if method == "update"]
    assert completed == typed(
        {
            "status": "COMPLETED",
            "update_date": done,
            "completed_date": done,
            "index__status": "tenant-1#COMPLETED",
            "index__user_status": "tenant-1#user-1#COMPLETED",
            "index__course_status": "tenant-1#course-1#COMPLETED",
        }
    )
    # (The claimed no-activity event's delivery record is layout.delivery's: not pinned here.)
    puts = [
        typed(arguments["item"])
        for method, arguments in handed
        if method == "put" and not arguments["item"]["sk"].startswith("deliveries#")
    ]
    recipient = {"name": "Name user-1", "email": "user-1@example.com", "course": "Course course-1"}
    assert puts == [
        typed(
            {
                "id": "enr-1",
                "sk": "certificate",
                "expires_at": "2037-03-02T12:30:15.123456+00:00",
                "create_date": done,
            }
        ),
        *[
            typed(
                {
                    "id": "enr-1",
                    "sk": f"schedules#{event}",
                    **recipient,
                    "create_date": done,
                    "ttl": NOW_TTL + days * 86400,
                    "due_shard": f"{day}#11",
                    "due_at": f"{day}T12:30:15Z",
                }
            )
            for event, days, day in (
                ("cert_expiration_reminder_30_days", 335, "2037-01-31"),
                ("course_archived", 365, "2037-03-02"),
            )
        ],
    ]


def handed_calls(calls: Handed) -> list[tuple[str, dict[str, Any]]]:
    """Each call with its arguments: items and assignments typed, exception classes named
    (keys and conditions compare as they are)."""
    return [
        (
            method,
            {
                name: typed(value)
                if name in ("item", "set")
                else value.__name__
                if name == "exc_cls"
                else value
                for name, value in arguments.items()
            },
        )
        for method, arguments in calls
    ]


def every_event_delete(enrollment_id: str, expiry_due_after: int) -> list[Any]:
    """cancel()'s delete of each event's item, in sort key order; only the expiry's is
    conditioned (absent, or not due by then)."""
    deletes = []
    for event in sorted(
        (
            "access_period_reminder_30_days",
            "cert_expiration_reminder_30_days",
            "course_archived",
            "course_expired",
            "no_activity_7_days",
            "reminder_no_access_3_days",
        )
    ):
        condition = None
        if event == "course_expired":
            condition = attr("sk").not_exists() | attr("ttl").gt(expiry_due_after)
        deletes.append(
            (
                "delete",
                {
                    "key": KeyPair(enrollment_id, f"schedules#{event}"),
                    "cond": condition,
                    "exc_cls": "CancelNotAllowed",
                },
            )
        )
    return deletes


def test_cancel_with_a_seat_a_lock_and_an_idempotency_key(handed: Handed) -> None:
    store = InMemoryPersistence()
    (taken,) = seed_seats(store, NOW)
    enroll(
        enrollment(4),
        tenant=TENANT,
        persistence_layer=store,
        vacancy=taken,
        deduplication_window=DeduplicationWindow(offset_days=10),
        cancel_policy=CancelPolicy(days=7),
        now=NOW,
    )
    handed.clear()

    admin = Author(id="admin-1", name="Admin One")
    result = cancel(
        "enr-4", author=admin, persistence_layer=store, idempotency_key="key-1", now=NOW + DAY
    )
    later, later_ttl = "2036-03-03T12:30:15.123456+00:00", NOW_TTL + 86400
    new_seat = result.returned_seat
    assert new_seat is not None
    token = handed[0][1]["item"]["request_token"]
    exists, absent = attr("sk").exists(), attr("sk").not_exists()
    assert handed_calls(handed) == [
        (
            "put",
            {
                "item": typed(
                    {
                        "id": "enr-4",
                        "sk": "canceled_date",
                        "author": {"id": "admin-1", "name": "Admin One"},
                        "create_date": later,
                        "request_token": token,
                        "idempotency_key": "key-1",
                        "returned_seat": {
                            "org_id": "tenant-1",
                            "order_id": "order-1",
                            "slot_id": new_seat.slot_id,
                        },
                    }
                ),
                "cond": absent,
                "exc_cls": "_AlreadyCanceled",
            },
        ),
        (
            "update",
            {
                "key": KeyPair("enr-4", "0"),
                "set": typed(
                    {
                        "status": "CANCELED",
                        "update_date": later,
                        "index__status": "tenant-1#CANCELED",
                        "index__user_status": "tenant-1#user-4#CANCELED",
                        "index__course_status": "tenant-1#course-1#CANCELED",
                    }
                ),
                "cond": attr("status").is_in(["IN_PROGRESS", "PENDING"])
                & attr("metadata__tenant_id").eq("tenant-1"),
                "exc_cls": "CancelNotAllowed",
            },
        ),
        (
            "delete",
            {
                "key": KeyPair("enr-4", "cancel_policy"),
                "cond": exists & (attr("ttl").not_exists() | attr("ttl").gt(later_ttl)),
                "exc_cls": "CancelNotAllowed",
            },
        ),
        *every_event_delete("enr-4", later_ttl),
        ("delete", {"key": KeyPair("enr-4", "metadata#lock")}),
        (
            "delete",
            {
                "key": KeyPair("lock", lock_hash("user-4", "course-1")),
                "cond": attr("enrollment_id").not_exists() | attr("enrollment_id").eq("enr-4"),
                "exc_cls": "_LockTakenOver",
            },
        ),
        (
            "delete",
            {
                "key": KeyPair("enr-4", "parent_vacancy"),
                "cond": exists,
                "exc_cls": "CancelNotAllowed",
            },
        ),
        (
            "condition",
            {
                "key": KeyPair("order-1", "0"),
                "cond": exists,
                "exc_cls": "OrderNotFound",
                "table_name": "orders",
            },
        ),
        (
            "put",
            {
                "item": typed(
                    {
                        "id": "vacancies#tenant-1",
                        "sk": f"order-1#{new_seat.slot_id}",
                        "course": {
                            "id": "course-1",
                            "name": "Course course-1",
                            "access_period": 90,
                        },
                        "create_date": later,
                    }
                ),
                "cond": absent,
            },
        ),
        (
            "update",
            {
                "key": KeyPair("order-1", f"generated_items#{taken.slot_id}"),
                "set": typed({"status": "ROLLBACK", "update_date": later}),
                "cond": exists,
                "table_name": "orders",
            },
        ),
        (
            "put",
            {
                "item": typed(
                    {
                        "id": "order-1",
                        "sk": f"generated_items#{new_seat.slot_id}",
                        "status": "AVAILABLE",
                        "org_id": "tenant-1",
                        "course_id": "course-1",
                        "create_date": later,
                        "update_date": later,
                    }
                ),
                "cond": absent,
                "table_name": "orders",
            },
        ),
    ]


def test_cancel_overriding_the_policy(handed: Handed) -> None:
    store = InMemoryPersistence()
    enroll(
        enrollment(5),
        tenant=TENANT,
        persistence_layer=store,
        cancel_policy=CancelPolicy(days=7),
        now=NOW,
    )
    handed.clear()

    admin = Author(id="admin-1", name="Admin One")
    override = AdminOverride(reason="refund approved")
    cancel("enr-5", author=admin, persistence_layer=store, override=override, now=NOW + 8 * DAY)
    late, late_ttl = "2036-03-10T12:30:15.123456+00:00", NOW_TTL + 8 * 86400
    token = handed[0][1]["item"]["request_token"]
    assert handed_calls(handed) == [
        (
            "put",
            {
                "item": typed(
                    {
                        "id": "enr-5",
                        "sk": "canceled_date",
                        "author": {"id": "admin-1", "name": "Admin One"},
                        "create_date": late,
                        "request_token": token,
                        "admin_override": {"reason": "refund approved"},
                    }
                ),
                "cond": attr("sk").not_exists(),
                "exc_cls": "_AlreadyCanceled",
            },
        ),
        (
            "update",
            {
                "key": KeyPair("enr-5", "0"),
                "set": typed(
                    {
                        "status": "CANCELED",
                        "update_date": late,
                        "index__status": "tenant-1#CANCELED",
                        "index__user_status": "tenant-1#user-5#CANCELED",
                        "index__course_status": "tenant-1#course-1#CANCELED",
                    }
                ),
                "cond": attr("status").is_in(["IN_PROGRESS", "PENDING"])
                & attr("metadata__tenant_id").eq("tenant-1"),
                "exc_cls": "CancelNotAllowed",
            },
        ),
        # The policy's window has passed: its item is removed unconditionally.
        ("delete", {"key": KeyPair("enr-5", "cancel_policy")}),
        *every_event_delete("enr-5", late_ttl),
    ]
