"""The reads on every backend: get_enrollment (one Query, a typed record) and
list_enrollments (one index Query per page, newest first, an opaque cursor), each test with
another tenant's enrollments present; unreadable items; the listing indexes following
status changes; the backfill of items written before the indexes."""

from __future__ import annotations

import base64
import dataclasses
import json
from collections.abc import Iterator, Mapping
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from enrollkit import (
    Author,
    CancelPolicy,
    DeduplicationWindow,
    Enrollment,
    EnrollmentNotFound,
    EnrollmentRecord,
    EnrollmentStatus,
    InvalidInput,
    LifecycleEvent,
    Page,
    Tenant,
    UnreadableItem,
    User,
    add_vacancies,
    cancel,
    create_order,
    enroll,
    get_enrollment,
    list_enrollments,
    lock_hash,
)
from enrollkit.operations.backfill import backfill_indexes
from enrollkit.persistence.base import BasePersistence
from enrollkit.persistence.indexes import IndexPage
from tests.conftest import NOW, OTHER_TENANT, TENANT, make_course, make_user

ADMIN = Author(id="admin", name="Admin")


class Counting:
    """Counts the reads a function makes of a backend."""

    def __init__(self, inner: BasePersistence) -> None:
        self.inner = inner
        self.calls: list[str] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def query(self, pk: str, **kwargs: Any) -> list[dict[str, Any]]:
        self.calls.append("query")
        return self.inner.query(pk, **kwargs)

    def query_index(self, index_name: str, partition_value: str, **kwargs: Any) -> IndexPage:
        self.calls.append("query_index")
        return self.inner.query_index(index_name, partition_value, **kwargs)

    def get_item(self, *args: Any, **kwargs: Any) -> Any:
        self.calls.append("get_item")
        return self.inner.get_item(*args, **kwargs)

    def scan_page(self, **kwargs: Any) -> IndexPage:
        self.calls.append("scan_page")
        return self.inner.scan_page(**kwargs)


def enroll_at(
    persistence: BasePersistence,
    when: datetime,
    *,
    user: str = "ana",
    course: str = "nr-10",
    tenant: Tenant = TENANT,
    **options: Any,
) -> Enrollment:
    enrollment = Enrollment(user=make_user(user), course=make_course(course))
    enroll(enrollment, tenant=tenant, persistence_layer=persistence, now=when, **options)
    return enrollment


@pytest.fixture
def other_tenant(persistence: BasePersistence) -> Iterator[list[str]]:
    """Another tenant's enrollments, of the same users and courses, present in each test."""
    ids = [
        enroll_at(
            persistence, NOW + timedelta(minutes=n), user=user, course=course, tenant=OTHER_TENANT
        ).id
        for n, (user, course) in enumerate([("ana", "nr-10"), ("bob", "nr-35"), ("ana", "nr-35")])
    ]
    yield ids


# -- get_enrollment ------------------------------------------------------------------------


def test_get_enrollment_reads_everything_in_one_query(
    persistence: BasePersistence, other_tenant: list[str]
) -> None:
    create_order("order-1", org_id=TENANT.id, persistence_layer=persistence, now=NOW)
    (seat,) = add_vacancies(
        org_id=TENANT.id,
        order_id="order-1",
        course=make_course("nr-10"),
        quantity=1,
        persistence_layer=persistence,
        now=NOW,
    )
    enrollment = enroll_at(
        persistence,
        NOW,
        vacancy=seat,
        deduplication_window=DeduplicationWindow(offset_days=10),
        cancel_policy=CancelPolicy(days=7),
    )
    counting = Counting(persistence)
    later = NOW + timedelta(days=4)  # the 3-day reminder is due: left out
    record = get_enrollment(
        enrollment.id, persistence_layer=counting, tenant_id=TENANT.id, now=later
    )  # type: ignore[arg-type]
    assert counting.calls == ["query"]
    assert isinstance(record, EnrollmentRecord)
    assert (record.id, record.tenant_id, record.status, record.progress) == (
        enrollment.id,
        TENANT.id,
        EnrollmentStatus.PENDING,
        0,
    )
    assert (record.user, record.course) == (enrollment.user, enrollment.course)
    assert (
        record.created_at == NOW.replace(microsecond=NOW.microsecond) and record.updated_at is None
    )
    assert dict(record.schedule) == {
        LifecycleEvent.ACCESS_PERIOD_REMINDER_30_DAYS: NOW.replace(microsecond=0)
        + timedelta(days=60),
        LifecycleEvent.COURSE_EXPIRED: NOW.replace(microsecond=0) + timedelta(days=90),
    }
    assert all(due.tzinfo is not None for due in record.schedule.values())
    assert record.lock is not None
    assert record.lock.hash == lock_hash("ana", "nr-10")
    assert record.lock.until == NOW.replace(microsecond=0) + timedelta(days=80)
    assert record.deduplication_window == 10
    assert record.cancel_policy is not None
    assert record.cancel_policy.deadline == NOW.replace(microsecond=0) + timedelta(days=7)
    assert record.seat == seat and record.canceled is None
    with pytest.raises(dataclasses.FrozenInstanceError):
        record.status = EnrollmentStatus.CANCELED  # type: ignore[misc]  # frozen


def test_get_enrollment_of_a_canceled_enrollment(
    persistence: BasePersistence, other_tenant: list[str]
) -> None:
    enrollment = enroll_at(persistence, NOW, cancel_policy=CancelPolicy())
    later = NOW + timedelta(hours=1)
    cancel(enrollment.id, author=ADMIN, persistence_layer=persistence, now=later)
    record = get_enrollment(enrollment.id, persistence_layer=persistence, now=later)
    assert record.status is EnrollmentStatus.CANCELED
    assert record.updated_at == later
    assert record.canceled is not None
    assert (record.canceled.author, record.canceled.at) == (ADMIN, later)
    assert record.schedule == {} and record.lock is None and record.cancel_policy is None


def test_expired_items_are_left_out(persistence: BasePersistence, other_tenant: list[str]) -> None:
    enrollment = enroll_at(
        persistence,
        NOW,
        deduplication_window=DeduplicationWindow(offset_days=10),
        cancel_policy=CancelPolicy(days=7),
    )
    record = get_enrollment(
        enrollment.id, persistence_layer=persistence, now=NOW + timedelta(days=85)
    )
    assert record.lock is None and record.cancel_policy is None
    assert list(record.schedule) == [LifecycleEvent.COURSE_EXPIRED]


def test_another_tenants_enrollment_is_not_found(
    persistence: BasePersistence, other_tenant: list[str]
) -> None:
    with pytest.raises(EnrollmentNotFound):
        get_enrollment(other_tenant[0], persistence_layer=persistence, tenant_id=TENANT.id, now=NOW)
    with pytest.raises(EnrollmentNotFound):
        get_enrollment("no-such-id", persistence_layer=persistence, now=NOW)
    assert (
        get_enrollment(
            other_tenant[0], persistence_layer=persistence, tenant_id=OTHER_TENANT.id, now=NOW
        ).tenant_id
        == OTHER_TENANT.id
    )


@pytest.mark.parametrize(
    ("sk", "attributes", "message"),
    [
        ("0", {"user": "ana"}, "item 'odd'/'0': attribute 'user' is str, not Mapping"),
        (
            "0",
            {"status": "LOST"},
            "item 'odd'/'0': attribute 'status' is 'LOST', not an enrollment status",
        ),
        (
            "0",
            {"create_date": "yesterday"},
            "item 'odd'/'0': attribute 'create_date' is not an ISO-8601 date",
        ),
        (
            "0",
            {"course": {"id": "c", "name": "C", "access_period": "90"}},
            "item 'odd'/'0': attribute 'course' is not a course: access_period",
        ),
        (
            "schedules#course_expired",
            {"ttl": 2**60},
            "item 'odd'/'schedules#course_expired': attribute 'ttl' is 1152921504606846976, "
            "not an instant",
        ),
        (
            "metadata#lock",
            {"ttl": int(NOW.timestamp()) + 99},
            "item 'odd'/'metadata#lock': attribute 'hash' is missing, not str",
        ),
        (
            "canceled_date",
            {"author": {"id": "a#b", "name": "X"}, "create_date": "2036-01-01T00:00:00+00:00"},
            "item 'odd'/'canceled_date': attribute 'author' is not an author: id",
        ),
    ],
)
def test_an_unreadable_item_is_a_clear_error(
    persistence: BasePersistence,
    other_tenant: list[str],
    sk: str,
    attributes: Mapping[str, Any],
    message: str,
) -> None:
    root = {
        "id": "odd",
        "sk": "0",
        "metadata__tenant_id": TENANT.id,
        "user": make_user().model_dump(),
        "course": make_course().model_dump(),
        "status": "PENDING",
        "create_date": NOW.isoformat(),
    }
    if sk == "0":
        persistence.put_item({**root, **attributes})
    else:
        persistence.put_item(root)
        persistence.put_item({"id": "odd", "sk": sk, **attributes})
    with pytest.raises(UnreadableItem) as raised:
        get_enrollment("odd", persistence_layer=persistence, now=NOW)
    assert str(raised.value).startswith(message), str(raised.value)


def test_get_enrollment_refuses_bad_input(persistence: BasePersistence) -> None:
    with pytest.raises(InvalidInput):
        get_enrollment("a#b", persistence_layer=persistence, now=NOW)
    with pytest.raises(InvalidInput):
        get_enrollment("x", persistence_layer=persistence, now=NOW.replace(tzinfo=None))


# -- list_enrollments ------------------------------------------------------------------------


def all_pages(persistence: BasePersistence, **listing: Any) -> list[Page[Any]]:
    pages = [list_enrollments(persistence_layer=persistence, **listing)]
    while pages[-1].cursor is not None:
        pages.append(
            list_enrollments(persistence_layer=persistence, cursor=pages[-1].cursor, **listing)
        )
    return pages


def test_listing_is_newest_first_paged_and_one_query_per_page(
    persistence: BasePersistence, other_tenant: list[str]
) -> None:
    ids = [enroll_at(persistence, NOW + timedelta(minutes=n), user=f"u{n}").id for n in range(7)]
    counting = Counting(persistence)
    pages = all_pages(counting, tenant_id=TENANT.id, limit=3)  # type: ignore[arg-type]
    assert [len(page.items) for page in pages] == [3, 3, 1]
    assert counting.calls == ["query_index"] * 3
    assert [summary.id for page in pages for summary in page.items] == ids[::-1]
    first = pages[0].items[0]
    assert (first.tenant_id, first.user.id, first.course.id, first.status) == (
        TENANT.id,
        "u6",
        "nr-10",
        EnrollmentStatus.PENDING,
    )
    assert first.created_at == NOW + timedelta(minutes=6)


def test_the_last_page_has_no_cursor_even_when_it_is_full(
    persistence: BasePersistence, other_tenant: list[str]
) -> None:
    """DynamoDB returns a LastEvaluatedKey when a page stops at its limit, even when nothing
    follows: the last full page must still say it is the last."""
    for n in range(4):
        enroll_at(persistence, NOW + timedelta(minutes=n), user=f"u{n}")
    pages = all_pages(persistence, tenant_id=TENANT.id, limit=2)
    assert [len(page.items) for page in pages] == [2, 2]
    assert pages[-1].cursor is None
    only = list_enrollments(persistence_layer=persistence, tenant_id=TENANT.id, limit=4)
    assert len(only.items) == 4 and only.cursor is None


def test_filters_by_user_course_and_status(
    persistence: BasePersistence, other_tenant: list[str]
) -> None:
    made = {}
    for n, (user, course) in enumerate(
        [("ana", "nr-10"), ("ana", "nr-35"), ("bob", "nr-10"), ("bob", "nr-35"), ("cid", "nr-10")]
    ):
        made[user, course] = enroll_at(
            persistence,
            NOW + timedelta(minutes=n),
            user=user,
            course=course,
            cancel_policy=CancelPolicy(),
        ).id
    cancel(made["bob", "nr-10"], author=ADMIN, persistence_layer=persistence, now=NOW)
    cancel(made["ana", "nr-35"], author=ADMIN, persistence_layer=persistence, now=NOW)

    def listed(**filters: Any) -> list[str]:
        return [
            summary.id
            for page in all_pages(persistence, tenant_id=TENANT.id, limit=2, **filters)
            for summary in page.items
        ]

    assert listed(user_id="ana") == [made["ana", "nr-35"], made["ana", "nr-10"]]
    assert listed(course_id="nr-10") == [
        made["cid", "nr-10"],
        made["bob", "nr-10"],
        made["ana", "nr-10"],
    ]
    assert listed(status="CANCELED") == [made["bob", "nr-10"], made["ana", "nr-35"]]
    assert listed(status=EnrollmentStatus.PENDING) == [
        made["cid", "nr-10"],
        made["bob", "nr-35"],
        made["ana", "nr-10"],
    ]
    assert listed(user_id="ana", status="PENDING") == [made["ana", "nr-10"]]
    assert listed(course_id="nr-35", status="CANCELED") == [made["ana", "nr-35"]]
    assert listed(user_id="nobody") == []
    statuses = {
        s.id: s.status for page in all_pages(persistence, tenant_id=TENANT.id) for s in page.items
    }
    assert statuses[made["bob", "nr-10"]] is EnrollmentStatus.CANCELED
    # Never another tenant's: theirs are listed under theirs only.
    assert sorted(
        listed_other := [
            s.id for page in all_pages(persistence, tenant_id=OTHER_TENANT.id) for s in page.items
        ]
    ) == sorted(other_tenant)
    assert not set(listed_other) & set(made.values())


def _cursor_payload(cursor: str) -> list[Any]:
    decoded: list[Any] = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    return decoded


def _cursor(payload: list[Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=")


def test_a_cursor_is_for_its_own_listing_only(
    persistence: BasePersistence, other_tenant: list[str]
) -> None:
    for n in range(3):
        enroll_at(persistence, NOW + timedelta(minutes=n), user=f"u{n}")
    other_page = list_enrollments(persistence_layer=persistence, tenant_id=OTHER_TENANT.id, limit=1)
    page = list_enrollments(persistence_layer=persistence, tenant_id=TENANT.id, limit=1)
    assert other_page.cursor is not None and page.cursor is not None
    payload = _cursor_payload(page.cursor)
    forged_tenant = _cursor([payload[0], payload[1], OTHER_TENANT.id, payload[3]])
    forged_position = _cursor([*payload[:3], "2036-01-01T00:00:00.000000Z#x#y"])
    for cursor, listing in [
        (other_page.cursor, {"tenant_id": TENANT.id}),  # another tenant's cursor
        (page.cursor, {"tenant_id": OTHER_TENANT.id}),  # ours, on their listing
        (page.cursor, {"tenant_id": TENANT.id, "status": "PENDING"}),  # another filter
        (forged_tenant, {"tenant_id": TENANT.id}),
        (forged_position, {"tenant_id": TENANT.id}),
        ("not base64 at all!", {"tenant_id": TENANT.id}),
        (_cursor({"a": 1}), {"tenant_id": TENANT.id}),  # type: ignore[arg-type]
        ("", {"tenant_id": TENANT.id}),
    ]:
        with pytest.raises(InvalidInput, match="not a cursor of this listing"):
            list_enrollments(persistence_layer=persistence, cursor=cursor, **listing)
    following = list_enrollments(
        persistence_layer=persistence, tenant_id=TENANT.id, limit=1, cursor=page.cursor
    )
    assert following.items[0].id != page.items[0].id


@pytest.mark.parametrize(
    "listing",
    [
        {"tenant_id": "a#b"},
        {"tenant_id": TENANT.id, "user_id": "u", "course_id": "c"},
        {"tenant_id": TENANT.id, "status": "LOST"},
        {"tenant_id": TENANT.id, "limit": 0},
        {"tenant_id": TENANT.id, "limit": 1001},
        {"tenant_id": TENANT.id, "limit": True},
        {"tenant_id": None},
    ],
)
def test_listing_refuses_bad_input(persistence: BasePersistence, listing: dict[str, Any]) -> None:
    with pytest.raises(InvalidInput):
        list_enrollments(persistence_layer=persistence, **listing)


def test_an_unreadable_item_in_a_listing_is_a_clear_error(
    persistence: BasePersistence, other_tenant: list[str]
) -> None:
    persistence.put_item(
        {
            "id": "odd",
            "sk": "0",
            "metadata__tenant_id": TENANT.id,
            "status": "PENDING",
            "index__created": "2036-01-01T00:00:00.000000Z#odd",
            "user": {"id": "x"},
        }
    )
    with pytest.raises(UnreadableItem, match="item 'odd'/'0': attribute 'user' is not a user"):
        list_enrollments(persistence_layer=persistence, tenant_id=TENANT.id)


def test_an_id_too_long_for_an_index_key_is_refused_before_anything_is_written(
    persistence: BasePersistence,
) -> None:
    wide = "\U0001f600" * 256  # 1,024 bytes: the ids fit, the index keys joining them do not
    user = User(id=wide, name="Wide", email="wide@example.com")
    enrollment = Enrollment(user=user, course=make_course(wide))
    with pytest.raises(InvalidInput, match="index key"):
        enroll(
            enrollment, tenant=Tenant(id=wide, name="Wide"), persistence_layer=persistence, now=NOW
        )
    assert persistence.query(enrollment.id) == []


# -- backfill ----------------------------------------------------------------------------------


def seed_original(persistence: BasePersistence, n: int, *, tenant: str, minute: int) -> str:
    """An enrollment as the original code wrote it (and enrollkit before the indexes):
    no index attributes, a Brazilian offset in its dates, more fields in its maps."""
    enrollment_id = f"orig-{tenant}-{n}"
    when = datetime(2036, 3, 1, 9, minute, tzinfo=timezone(timedelta(hours=-3)))
    persistence.put_item(
        {
            "id": enrollment_id,
            "sk": "0",
            "create_date": when.isoformat(),
            "metadata__tenant_id": tenant,
            "metadata__related_ids": {tenant, f"user-{n}"},
            "user": {"id": f"user-{n}", "name": "Ana", "email": "ana@example.com", "cpf": "1"},
            "course": {"id": "nr-10", "name": "NR-10", "access_period": 90, "cert": None},
            "status": "PENDING",
            "progress": 0,
        }
    )
    persistence.put_item(
        {
            "id": enrollment_id,
            "sk": "metadata#tenant",
            "tenant_id": f"ORG#{tenant}",
            "name": tenant,
            "create_date": when.isoformat(),
        }
    )
    # Its expiry, as the original code scheduled it (without the due-time index's keys).
    persistence.put_item(
        {
            "id": enrollment_id,
            "sk": "schedules#course_expired",
            "name": "Ana",
            "email": "ana@example.com",
            "course": "NR-10",
            "create_date": when.isoformat(),
            "ttl": int((when + timedelta(days=90)).timestamp()),
        }
    )
    return enrollment_id


def test_backfill_brings_original_items_into_the_indexes_idempotently_and_resumably(
    persistence: BasePersistence, other_tenant: list[str]
) -> None:
    fresh = enroll_at(persistence, NOW + timedelta(days=1), user="new").id
    originals = [seed_original(persistence, n, tenant=TENANT.id, minute=n) for n in range(5)]
    theirs = seed_original(persistence, 9, tenant=OTHER_TENANT.id, minute=9)
    persistence.put_item({"id": "broken", "sk": "0", "metadata__tenant_id": TENANT.id})
    assert [
        s.id for s in list_enrollments(persistence_layer=persistence, tenant_id=TENANT.id).items
    ] == [fresh]

    # A run interrupted after two pages, then resumed from its checkpoint.
    run = backfill_indexes(persistence_layer=persistence, page_size=4)
    first, second = next(run), next(run)
    assert (first.scanned, second.scanned) == (4, 8) and second.checkpoint is not None
    resumed = list(
        backfill_indexes(persistence_layer=persistence, page_size=4, checkpoint=second.checkpoint)
    )
    total_updated = second.updated + resumed[-1].updated
    assert total_updated == 6  # five originals and the other tenant's one
    assert resumed[-1].checkpoint is None
    # Each page tells its own unreadable items; the totals count the run's.
    pages = [first, second, *resumed]
    assert [problem for page in pages for problem in page.unreadable] == [
        "item 'broken'/'0': attribute 'user' is missing, not Mapping"
    ]
    assert second.unreadable_total + resumed[-1].unreadable_total == 1
    listed = [
        s.id for s in list_enrollments(persistence_layer=persistence, tenant_id=TENANT.id).items
    ]
    assert listed == [fresh, *originals[::-1]]
    assert [
        s.id
        for s in list_enrollments(
            persistence_layer=persistence, tenant_id=TENANT.id, user_id="user-3", status="PENDING"
        ).items
    ] == [originals[3]]
    assert theirs in [
        s.id
        for s in list_enrollments(persistence_layer=persistence, tenant_id=OTHER_TENANT.id).items
    ]

    # Again: nothing to write, and nothing written.
    stored_before = _stored(persistence)
    again = list(backfill_indexes(persistence_layer=persistence, page_size=4))
    assert again[-1].updated == 0 and again[-1].up_to_date == 6 + 1 + len(other_tenant)
    assert _stored(persistence) == stored_before

    # A backfilled original cancels like any other, and the status index follows.
    persistence.put_item(
        {"id": originals[0], "sk": "cancel_policy", "create_date": NOW.isoformat()}
    )
    cancel(originals[0], author=ADMIN, persistence_layer=persistence, now=NOW)
    assert [
        s.id
        for s in list_enrollments(
            persistence_layer=persistence, tenant_id=TENANT.id, status="CANCELED"
        ).items
    ] == [originals[0]]
    record = get_enrollment(originals[0], persistence_layer=persistence, now=NOW)
    assert record.created_at == datetime(2036, 3, 1, 12, 0, tzinfo=timezone.utc)


def _stored(persistence: BasePersistence) -> Any:
    """A fingerprint of every stored item (what a write would change)."""
    pages, start = [], None
    while True:
        page = persistence.scan_page(limit=100, start_after=start)
        pages.extend(page.items)
        start = page.last_key
        if start is None:
            return sorted(json.dumps(item, default=str, sort_keys=True) for item in pages)


def test_backfill_does_not_overwrite_a_concurrent_status_change(
    persistence: BasePersistence,
) -> None:
    original = seed_original(persistence, 1, tenant=TENANT.id, minute=1)

    class ChangesStatusFirst(Counting):
        def __init__(self, inner: BasePersistence) -> None:
            super().__init__(inner)
            self.changed = False

        def transact_writer(self, **kwargs: Any) -> Any:
            if not self.changed:  # someone cancels between the backfill's read and write
                self.changed = True
                root = self.inner.get_item(key_of_root(original))
                assert root is not None
                from enrollkit.layout.enrollment import canceled_changes

                with self.inner.transact_writer() as transaction:
                    transaction.update(key=key_of_root(original), set=canceled_changes(root, NOW))
            return self.inner.transact_writer(**kwargs)

    progress = list(backfill_indexes(persistence_layer=ChangesStatusFirst(persistence)))  # type: ignore[arg-type]
    assert progress[-1].updated == 1
    listed = list_enrollments(persistence_layer=persistence, tenant_id=TENANT.id, status="CANCELED")
    assert [s.id for s in listed.items] == [original]
    assert (
        list_enrollments(persistence_layer=persistence, tenant_id=TENANT.id, status="PENDING").items
        == ()
    )


def key_of_root(enrollment_id: str) -> Any:
    from enrollkit.layout.enrollment import root_key

    return root_key(enrollment_id)


def test_backfill_refuses_a_checkpoint_it_did_not_make(persistence: BasePersistence) -> None:
    with pytest.raises(InvalidInput, match="not a backfill checkpoint"):
        next(backfill_indexes(persistence_layer=persistence, checkpoint="bogus"))


def test_backfill_puts_original_schedule_items_into_the_due_time_index(
    persistence: BasePersistence, other_tenant: list[str]
) -> None:
    """The original code's schedule items lack the due-time index's keys: only the TTL
    stream would deliver them. After the backfill the sweeper finds them on time."""
    from enrollkit import LifecycleEvent, deliver_due

    original = seed_original(persistence, 0, tenant=TENANT.id, minute=0)
    progress = list(backfill_indexes(persistence_layer=persistence))
    assert progress[-1].schedules_indexed == 1
    again = list(backfill_indexes(persistence_layer=persistence))
    assert again[-1].schedules_indexed == 0  # idempotent: nothing left to write

    due = datetime(2036, 3, 1, 9, 0, tzinfo=timezone(timedelta(hours=-3))) + timedelta(days=90)
    delivered: list[str] = []
    handlers = {LifecycleEvent.COURSE_EXPIRED: lambda event: delivered.append(event.enrollment_id)}
    deliver_due(persistence_layer=persistence, handlers=handlers, now=due - timedelta(seconds=1))
    assert delivered == []
    deliver_due(persistence_layer=persistence, handlers=handlers, now=due + timedelta(seconds=30))
    assert delivered == [original]
    record = get_enrollment(original, persistence_layer=persistence, now=due)
    assert record.status.value == "EXPIRED"


def test_a_status_change_keys_the_indexes_by_the_stored_ids_alone() -> None:
    """The status indexes follow a status change whenever the stored tenant, user and course
    ids can key them: a user's name or email another writer left unreadable does not stop
    them (only the ids are checked); an id that cannot key them does."""
    from enrollkit.layout.enrollment import BY_STATUS, listing_keys_of, status_changes

    root = {
        "id": "e-1",
        "sk": "0",
        "metadata__tenant_id": TENANT.id,
        "user": {"id": "user-1", "name": " ", "email": "not an email"},
        "course": {**make_course().model_dump(), "access_period": "ninety"},
        "status": "PENDING",
    }
    changes = status_changes(root, EnrollmentStatus.CANCELED, NOW)
    assert changes[BY_STATUS] == f"{TENANT.id}#CANCELED"

    unkeyable = {**root, "user": {"id": "user#1", "name": "Ana", "email": "ana@example.com"}}
    assert BY_STATUS not in status_changes(unkeyable, EnrollmentStatus.CANCELED, NOW)
    with pytest.raises(UnreadableItem, match="attribute 'user' is not a user: id: must not"):
        listing_keys_of(unkeyable)
    with pytest.raises(UnreadableItem, match="attribute 'course' is not a course: id: is int"):
        listing_keys_of({**root, "course": {"id": 7}})
