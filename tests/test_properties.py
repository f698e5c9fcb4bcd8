"""Properties (hypothesis): lock_hash is injective, the schedule and the lock window are
right for every access period, offset and instant, and enroll stores exactly those ttls."""

from __future__ import annotations

import unicodedata
from datetime import datetime, timedelta, timezone, tzinfo
from typing import Any

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from enrollkit import (
    CancelPolicy,
    Course,
    DeduplicationWindow,
    Enrollment,
    EnrollmentStatus,
    InMemoryPersistence,
    InvalidInput,
    LifecycleEvent,
    Tenant,
    User,
    enroll,
    lock_hash,
)
from enrollkit.models import MAX_ACCESS_PERIOD_DAYS, validate_identifier
from enrollkit.timing import enrollment_schedule, lock_expiry

DAY = timedelta(days=1)
UTC = timezone.utc


def _valid_id(text: str) -> bool:
    try:
        return validate_identifier(text) == text
    except ValueError:
        return False


# Valid ids: non-empty, in NFC, no '#', nothing invisible (controls, format characters,
# separators, spaces other than U+0020, which may not lead or trail), at most 256 characters.
ids = (
    st.text(
        st.characters(
            exclude_categories=("Cc", "Cf", "Cs", "Zl", "Zp", "Zs"), exclude_characters="#"
        ),
        min_size=1,
        max_size=256,
    )
    .map(lambda text: unicodedata.normalize("NFC", text))
    .filter(_valid_id)
)
pairs = st.tuples(ids, ids)


def _fixed_offsets() -> st.SearchStrategy[tzinfo]:
    minutes = st.integers(min_value=-(23 * 60 + 59), max_value=23 * 60 + 59)
    return minutes.map(lambda m: timezone(timedelta(minutes=m)))


zones: st.SearchStrategy[tzinfo] = st.one_of(st.just(UTC), _fixed_offsets(), st.timezones())
instants = st.datetimes(
    min_value=datetime(1971, 1, 1),
    max_value=datetime(2200, 12, 31),
    timezones=zones,
)
access_periods = st.integers(min_value=1, max_value=MAX_ACCESS_PERIOD_DAYS)


def absolute(instant: datetime, days: int) -> datetime:
    """``days`` whole days of 24 hours after an instant (the TTL clock has no DST)."""
    return instant.astimezone(UTC) + days * DAY


def epoch(instant: datetime) -> int:
    return int(instant.timestamp())


# -- lock_hash --------------------------------------------------------------------------------


@given(ids)
def test_the_id_strategy_only_makes_valid_ids(value: str) -> None:
    assert validate_identifier(value) == value


def test_lock_hash_separates_the_seed_collision() -> None:
    assert lock_hash("ab", "c") != lock_hash("a", "bc")
    assert lock_hash("a", "bc") != lock_hash("abc", "x")
    assert lock_hash("ab", "c") == lock_hash("ab", "c")


def _near(pair: tuple[str, str]) -> st.SearchStrategy[tuple[str, str]]:
    """Pairs that collide under naive encodings of ``pair``: same concatenation, swapped."""
    user, course = pair
    candidates = [pair, (course, user)]
    if len(course) > 1:
        candidates.append((user + course[0], course[1:]))
    if len(user) > 1:
        candidates.append((user[:-1], user[-1] + course))
    return st.sampled_from(candidates)


@given(st.data())
def test_lock_hash_is_equal_iff_the_pairs_are_equal(data: st.DataObject) -> None:
    first = data.draw(pairs, label="first")
    second = data.draw(st.one_of(pairs, _near(first)), label="second")
    assert (lock_hash(*first) == lock_hash(*second)) == (first == second)


@given(ids, ids, ids)
def test_lock_hash_does_not_depend_on_the_concatenation(a: str, b: str, c: str) -> None:
    assume(len(a + b) <= 256 and len(b + c) <= 256)
    assert lock_hash(a + b, c) != lock_hash(a, b + c)


@given(pairs, st.sampled_from(["NFC", "NFD"]))
def test_enroll_locks_the_key_lock_hash_names(pair: tuple[str, str], form: str) -> None:
    """enroll() hashes its validated models' ids without checking them again: the same
    key as lock_hash() of the ids however they were spelled."""
    from enrollkit.layout.lock import enrollment_lock_hash

    user_id, course_id = (unicodedata.normalize(form, value) for value in pair)
    assume(max(len(user_id), len(course_id)) <= 256)
    enrollment = Enrollment(
        user=User(id=user_id, name="N", email="n@example.com"),
        course=Course(id=course_id, name="C", access_period=30),
    )
    assert enrollment_lock_hash(enrollment) == lock_hash(user_id, course_id)


@given(pairs)
def test_lock_hash_is_a_short_stable_key(pair: tuple[str, str]) -> None:
    value = lock_hash(*pair)
    assert value == lock_hash(*pair)
    assert 0 < len(value.encode()) <= 1024  # a DynamoDB sort key
    assert "#" not in value


# -- schedule and lock window -------------------------------------------------------------------


@given(instants, access_periods)
def test_every_schedule_is_after_enrollment_and_not_after_expiry(
    enrolled: datetime, access_period: int
) -> None:
    schedule = enrollment_schedule(enrolled, access_period)
    expiry = absolute(enrolled, access_period)

    assert schedule[LifecycleEvent.COURSE_EXPIRED] == expiry
    for event, due in schedule.items():
        assert due > enrolled, event
        assert due <= expiry, event
        if event is not LifecycleEvent.COURSE_EXPIRED:
            assert due < expiry, event
    assert set(schedule) <= {
        LifecycleEvent.REMINDER_NO_ACCESS_3_DAYS,
        LifecycleEvent.ACCESS_PERIOD_REMINDER_30_DAYS,
        LifecycleEvent.COURSE_EXPIRED,
    }
    # Exactly the reminders that fit are kept, at their instants.
    if access_period > 3:
        assert schedule[LifecycleEvent.REMINDER_NO_ACCESS_3_DAYS] == absolute(enrolled, 3)
    else:
        assert LifecycleEvent.REMINDER_NO_ACCESS_3_DAYS not in schedule
    if access_period > 30:
        assert schedule[LifecycleEvent.ACCESS_PERIOD_REMINDER_30_DAYS] == absolute(
            enrolled, access_period - 30
        )
    else:
        assert LifecycleEvent.ACCESS_PERIOD_REMINDER_30_DAYS not in schedule


@given(st.data(), instants, access_periods)
def test_lock_expiry_is_access_period_minus_offset_days(
    data: st.DataObject, enrolled: datetime, access_period: int
) -> None:
    offset = data.draw(st.integers(min_value=0, max_value=access_period - 1), label="offset")
    expiry = lock_expiry(enrolled, access_period, offset)
    assert expiry == absolute(enrolled, access_period - offset)
    assert enrolled < expiry <= absolute(enrolled, access_period)


@given(st.data(), instants, access_periods)
def test_lock_expiry_refuses_an_offset_outside_the_access_period(
    data: st.DataObject, enrolled: datetime, access_period: int
) -> None:
    offset = data.draw(
        st.one_of(
            st.integers(min_value=access_period, max_value=access_period + 400),
            st.integers(max_value=-1),
        ),
        label="offset",
    )
    with pytest.raises(InvalidInput):
        lock_expiry(enrolled, access_period, offset)


# -- enroll stores those ttls -------------------------------------------------------------------

utc_like = st.datetimes(
    min_value=datetime(1971, 1, 1),
    max_value=datetime(2200, 12, 31),
    timezones=st.one_of(st.just(UTC), _fixed_offsets(), st.timezones()),
)


@given(
    data=st.data(),
    now=utc_like,
    access_period=access_periods,
    policy_days=st.one_of(st.none(), st.integers(min_value=1, max_value=MAX_ACCESS_PERIOD_DAYS)),
    with_window=st.booleans(),
    user_id=ids,
    course_id=ids,
)
def test_enroll_stores_the_ttls_of_its_schedule_lock_and_policy(
    data: st.DataObject,
    now: datetime,
    access_period: int,
    policy_days: int | None,
    with_window: bool,
    user_id: str,
    course_id: str,
) -> None:
    offset = (
        data.draw(st.integers(min_value=0, max_value=access_period - 1), label="offset")
        if with_window
        else None
    )
    store = InMemoryPersistence()
    enrollment = Enrollment(
        id="e-1",
        user=User(id=user_id, name="Someone", email="someone@example.com"),
        course=Course(id=course_id, name="A course", access_period=access_period),
    )
    enroll(
        enrollment,
        tenant=Tenant(id="t-1", name="Tenant"),
        persistence_layer=store,
        deduplication_window=DeduplicationWindow(offset_days=offset)
        if offset is not None
        else None,
        cancel_policy=CancelPolicy(days=policy_days),
        now=now,
    )
    items = {item["sk"]: item for item in store.query("e-1")}
    schedules = {sk: item["ttl"] for sk, item in items.items() if sk.startswith("schedules#")}
    expected = {LifecycleEvent.COURSE_EXPIRED.value: epoch(absolute(now, access_period))}
    if access_period > 3:
        expected[LifecycleEvent.REMINDER_NO_ACCESS_3_DAYS.value] = epoch(absolute(now, 3))
    if access_period > 30:
        expected[LifecycleEvent.ACCESS_PERIOD_REMINDER_30_DAYS.value] = epoch(
            absolute(now, access_period - 30)
        )
    assert schedules == expected
    assert all(ttl > epoch(now) for ttl in schedules.values())

    locks = store.query("lock")
    if offset is None:
        assert locks == []
        assert "metadata#lock" not in items
    else:
        lock_ttl = epoch(absolute(now, access_period - offset))
        assert [(lock["sk"], lock["ttl"]) for lock in locks] == [
            (lock_hash(user_id, course_id), lock_ttl)
        ]
        assert items["metadata#lock"]["ttl"] == lock_ttl
        assert items["metadata#deduplication_window"]["offset_days"] == offset

    policy = items["cancel_policy"]
    if policy_days is None:
        assert "ttl" not in policy
    else:
        assert policy["ttl"] == epoch(absolute(now, policy_days))
    assert items["0"]["create_date"] == now.astimezone(UTC).isoformat()


@pytest.mark.parametrize(
    "call",
    [
        lambda naive: enrollment_schedule(naive, 30),
        lambda naive: lock_expiry(naive, 30, 1),
    ],
    ids=["schedule", "lock-expiry"],
)
def test_time_arithmetic_refuses_a_naive_instant(call: Any) -> None:
    with pytest.raises(InvalidInput):
        call(datetime(2026, 3, 2, 12, 0))


# Instants of timing's range (from the epoch, in UTC), in UTC and two other offsets.
stored_instants = st.datetimes(
    min_value=datetime(1970, 1, 2),
    max_value=datetime(8999, 12, 31),
    timezones=st.sampled_from([UTC, timezone(timedelta(hours=-3)), timezone(timedelta(hours=9))]),
)


@given(stored_instants)
def test_stored_instants_read_as_their_strftime_formats(instant: datetime) -> None:
    """The index sort keys are built with isoformat() (faster); over timing's range of
    instants that is exactly the fixed-width strftime text they are parsed back with."""
    from enrollkit.layout import due
    from enrollkit.layout.enrollment import created_order

    utc = instant.astimezone(UTC)
    assert due.due_at(instant) == utc.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert due.partition(utc.date(), 7) == utc.strftime("%Y-%m-%d") + "#07"
    assert created_order(instant) == utc.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@given(stored_instants, st.text(alphabet="abcdef0123456789-", min_size=1, max_size=40))
def test_due_index_attributes_are_the_whole_second_and_its_day(
    instant: datetime, enrollment_id: str
) -> None:
    """index_attributes() cuts its partition from the sort key's text and drops the
    microseconds itself: the same as the day's partition and the TTL's whole second."""
    from enrollkit.layout import due
    from enrollkit.timing import whole_seconds

    expected = {
        due.SHARD: due.partition(due.day_of(instant), due.shard_of(enrollment_id)),
        due.DUE_AT: due.due_at(whole_seconds(instant)),
    }
    assert due.index_attributes(enrollment_id, instant) == expected
    assert due.index_attributes(enrollment_id, whole_seconds(instant)) == expected


def test_a_ttl_is_the_whole_second_even_far_ahead() -> None:
    """A float timestamp of 2515-01-01T00:00:00.999999 is the next second: the TTL is not."""
    from enrollkit.timing import ttl

    instant = datetime(2515, 1, 1, 0, 0, 0, 999_999, tzinfo=UTC)
    assert ttl(instant) == ttl(instant.replace(microsecond=0)) == 17_198_524_800


# -- the root item's copy of the enrollment -----------------------------------------------------

names = st.text(st.characters(exclude_categories=("Cc", "Cs")), min_size=1, max_size=40).filter(
    str.strip
)
emails = st.from_regex(r"[a-z0-9._+-]{1,16}@[a-z0-9-]{1,12}(\.[a-z]{2,6}){1,2}", fullmatch=True)
enrollments = st.builds(
    Enrollment,
    id=ids.filter(lambda value: value != "lock"),
    user=st.builds(User, id=ids, name=names, email=emails),
    course=st.builds(Course, id=ids, name=names, access_period=access_periods),
    status=st.sampled_from(EnrollmentStatus),
    progress=st.integers(min_value=0, max_value=100),
)


@given(enrollments)
def test_the_root_item_stores_the_enrollment_as_pydantic_dumps_it(enrollment: Enrollment) -> None:
    """stored_fields() writes out model_dump(mode="json"): the same fields, in the same
    order, with the same values and types. A field added to a model is in pydantic's dump
    and not in the written-out one, and fails this."""
    from enrollkit.layout.enrollment import stored_fields
    from tests.test_layout_items import typed

    assert typed(stored_fields(enrollment)) == typed(enrollment.model_dump(mode="json"))


@given(stored_instants)
def test_a_ttl_is_the_whole_epoch_second(instant: datetime) -> None:
    """ttl() counts in integers: the timestamp of the instant's whole second (a whole
    second's float timestamp is exact)."""
    from enrollkit.timing import ttl

    seconds = ttl(instant)
    assert type(seconds) is int
    assert seconds == int(instant.replace(microsecond=0).timestamp())
