"""Delivery of due events: the sweeper (deliver_due), the TTL stream consumer
(handle_stream_batch), exactly once across both, handler failures and retries, outages.
Every contract test runs on every backend.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from enrollkit import (
    Author,
    Certificate,
    DueEvent,
    InMemoryPersistence,
    InvalidInput,
    KeyPair,
    LifecycleEvent,
    SweepSettings,
    TransitionNotAllowed,
    cancel,
    complete,
    deliver_due,
    handle_stream_batch,
    record_access,
)
from enrollkit.errors import TransientFailure
from enrollkit.layout import due as due_index
from enrollkit.persistence.base import BasePersistence
from enrollkit.persistence.indexes import TableIndexes
from enrollkit.persistence.streams import ttl_removal_record
from enrollkit.transaction.operations import Operation
from tests.conftest import Endpoint, drop_tables, fresh_dynamodb
from tests.support.lifecycle import (
    Recorder,
    by_sk,
    deliveries,
    enroll_one,
    schedule,
    status,
    ttl_delete,
)

DAY = timedelta(days=1)
MINUTE = timedelta(minutes=1)
ADMIN = Author(id="admin-1", name="Admin One")
NO_ACCESS = LifecycleEvent.REMINDER_NO_ACCESS_3_DAYS
NO_ACTIVITY = LifecycleEvent.NO_ACTIVITY_7_DAYS
ACCESS_REMINDER = LifecycleEvent.ACCESS_PERIOD_REMINDER_30_DAYS
CERT_REMINDER = LifecycleEvent.CERT_EXPIRATION_REMINDER_30_DAYS
ARCHIVED = LifecycleEvent.COURSE_ARCHIVED
EXPIRED = LifecycleEvent.COURSE_EXPIRED
# Tests start the sweeper just before their enrollments: a short first look back.
FRESH = SweepSettings(first_run_lookback=DAY)


def whole(instant: datetime) -> datetime:
    return instant.replace(microsecond=0)


def sweep(store: Any, recorder: Recorder, at: datetime, **settings: Any) -> Any:
    return deliver_due(
        persistence_layer=store,
        handlers=recorder.handlers,
        now=at,
        settings=SweepSettings(**{"first_run_lookback": DAY, **settings}),
    )


# -- the sweeper ---------------------------------------------------------------------------------


def test_the_sweeper_delivers_what_is_due_oldest_first_and_none_early(
    persistence: BasePersistence, now: datetime
) -> None:
    enroll_one(persistence, now, "enr-a")
    enroll_one(persistence, now + MINUTE, "enr-b", user_id="user-2")
    recorder = Recorder()
    sweep(persistence, recorder, now)  # first run: nothing due
    assert recorder.calls == []

    just_before = now + 3 * DAY - timedelta(seconds=1)
    sweep(persistence, recorder, just_before)
    assert recorder.calls == []  # none early

    report = sweep(persistence, recorder, now + 3 * DAY + MINUTE)
    assert recorder.delivered() == [
        ("enr-a", NO_ACCESS, whole(now + 3 * DAY)),
        ("enr-b", NO_ACCESS, whole(now + MINUTE + 3 * DAY)),
    ]
    assert (report.delivered, report.failed, report.claimed) == (2, 0, 2)
    first = recorder.calls[0]
    assert (first.user_name, first.user_email, first.course_name) == (
        "Name user-1",
        "user-1@example.com",
        "Course course-1",
    )
    assert first.attempt == 1
    assert NO_ACCESS not in schedule(persistence, "enr-a")


def test_each_event_is_delivered_once(persistence: BasePersistence, now: datetime) -> None:
    enroll_one(persistence, now)
    recorder = Recorder()
    for day in (4, 4, 5, 61, 61, 95, 200):
        sweep(persistence, recorder, now + day * DAY)
    assert [event for _, event, _ in recorder.delivered()] == [NO_ACCESS, ACCESS_REMINDER, EXPIRED]
    keys = {call.idempotency_key for call in recorder.calls}
    assert len(keys) == 3


def test_course_expired_expires_and_ends_the_lifecycle(
    persistence: BasePersistence, now: datetime
) -> None:
    enroll_one(persistence, now, access_period=40)
    recorder = Recorder()
    sweep(persistence, recorder, now)
    sweep(persistence, recorder, now + 35 * DAY)
    # 7 days after this access falls after the end (day 40): no no-activity event.
    record_access("enr-1", persistence_layer=persistence, now=now + 35 * DAY)
    sweep(persistence, recorder, now + 40 * DAY)
    assert status(persistence, "enr-1") == "EXPIRED"
    assert schedule(persistence, "enr-1") == {}
    assert [e for _, e, _ in recorder.delivered()] == [NO_ACCESS, ACCESS_REMINDER, EXPIRED]
    with pytest.raises(TransitionNotAllowed):
        record_access("enr-1", persistence_layer=persistence, now=now + 41 * DAY)


def test_an_expiry_claimed_first_still_delivers_the_reminders_due_before_it(
    persistence: BasePersistence, now: datetime
) -> None:
    """TTL deletes in no order: the expiry's stream record may come before a reminder's.
    A reminder due before the expiry fell due while the enrollment was live: delivered."""
    enroll_one(persistence, now, access_period=40)
    recorder = Recorder()
    expiry = ttl_delete(persistence, KeyPair("enr-1", EXPIRED.value), now + 41 * DAY)
    reminder = ttl_delete(persistence, KeyPair("enr-1", ACCESS_REMINDER.value), now + 42 * DAY)
    for event in (expiry, reminder):
        handle_stream_batch(
            event, persistence_layer=persistence, handlers=recorder.handlers, now=now + 42 * DAY
        )
    assert status(persistence, "enr-1") == "EXPIRED"
    # the no-access reminder, still stored, was claimed with the expiry
    assert [e for _, e, _ in recorder.delivered()] == [EXPIRED, NO_ACCESS, ACCESS_REMINDER]


def test_course_archived_archives_a_completed_enrollment(
    persistence: BasePersistence, now: datetime
) -> None:
    enroll_one(persistence, now)
    complete(
        "enr-1",
        persistence_layer=persistence,
        certificate=Certificate(expires_at=now + 100 * DAY),
        now=now + DAY,
    )
    recorder = Recorder()
    sweep(persistence, recorder, now + DAY)
    sweep(persistence, recorder, now + 100 * DAY)
    assert [e for _, e, _ in recorder.delivered()] == [CERT_REMINDER, ARCHIVED]
    assert status(persistence, "enr-1") == "ARCHIVED"


def test_an_event_without_a_handler_still_moves_the_status(
    persistence: BasePersistence, now: datetime
) -> None:
    enroll_one(persistence, now, access_period=5)
    report = deliver_due(
        persistence_layer=persistence, handlers={}, now=now + 5 * DAY, settings=FRESH
    )
    assert status(persistence, "enr-1") == "EXPIRED"
    assert report.delivered == report.claimed == 2  # the 3-day reminder and the expiry
    assert {r["status"] for r in deliveries(persistence, "enr-1").values()} == {"DELIVERED"}


def test_nothing_is_delivered_for_a_canceled_enrollment(
    persistence: BasePersistence, now: datetime
) -> None:
    enroll_one(persistence, now)
    cancel("enr-1", author=ADMIN, persistence_layer=persistence, now=now + DAY)
    recorder = Recorder()
    sweep(persistence, recorder, now + 200 * DAY, first_run_lookback=300 * DAY)
    assert recorder.calls == []


# -- failures and retries ----------------------------------------------------------------------


def test_a_failed_handler_is_reported_and_retried_until_it_succeeds(
    persistence: BasePersistence, now: datetime
) -> None:
    enroll_one(persistence, now)
    recorder = Recorder(fail_next=2)
    at = now + 3 * DAY
    report = sweep(persistence, recorder, at)
    assert (report.delivered, report.failed) == (0, 1)
    (failure,) = report.failures
    assert failure.event is NO_ACCESS and failure.attempt == 1
    assert failure.retry_at == at + MINUTE and "handler down" in failure.error

    assert sweep(persistence, recorder, at + 30 * timedelta(seconds=1)).failed == 0  # backoff
    second = sweep(persistence, recorder, at + MINUTE)
    assert second.failed == 1 and second.failures[0].attempt == 2
    assert second.failures[0].retry_at == at + 3 * MINUTE  # doubled
    third = sweep(persistence, recorder, at + 3 * MINUTE)
    assert (third.delivered, third.failed) == (1, 0)
    assert [(c.event, c.attempt) for c in recorder.calls] == [(NO_ACCESS, 3)]
    assert {c.idempotency_key for c in recorder.failures} == {recorder.calls[0].idempotency_key}
    sweep(persistence, recorder, at + DAY)
    assert len(recorder.calls) == 1  # never again
    (record,) = [
        r for r in deliveries(persistence, "enr-1").values() if r["event"] == NO_ACCESS.value
    ]
    assert record["status"] == "DELIVERED" and record["attempts"] == 3
    assert "due_shard" not in record and "due_at" not in record  # out of the index


def test_a_failed_handler_is_not_retried_once_the_enrollment_is_canceled(
    persistence: BasePersistence, now: datetime
) -> None:
    enroll_one(persistence, now)
    recorder = Recorder(fail_next=1)
    sweep(persistence, recorder, now + 3 * DAY)
    cancel("enr-1", author=ADMIN, persistence_layer=persistence, now=now + 3 * DAY)
    report = sweep(persistence, recorder, now + 4 * DAY)
    assert recorder.calls == [] and report.failed == 0
    (record,) = deliveries(persistence, "enr-1").values()
    assert record["status"] == "CANCELED"


def test_a_run_that_dies_in_a_handler_leaves_it_to_a_run_after_the_lease(
    persistence: BasePersistence, now: datetime
) -> None:
    enroll_one(persistence, now)

    class Crash(BaseException):
        """The process dies: nothing after the handler call runs."""

    def dying(event: DueEvent) -> None:
        raise Crash

    at = now + 3 * DAY
    with pytest.raises(Crash):
        deliver_due(
            persistence_layer=persistence, handlers={NO_ACCESS: dying}, now=at, settings=FRESH
        )
    recorder = Recorder()
    sweep(persistence, recorder, at + 10 * MINUTE)  # within the 15-minute lease
    assert recorder.calls == []
    sweep(persistence, recorder, at + 15 * MINUTE)
    assert recorder.delivered() == [("enr-1", NO_ACCESS, whole(at))]


# -- outages, checkpoint, shards ----------------------------------------------------------------


def test_after_an_outage_of_any_length_everything_missed_is_delivered(
    persistence: BasePersistence, now: datetime
) -> None:
    enroll_one(persistence, now, "enr-a", access_period=45)
    enroll_one(persistence, now + DAY, "enr-b", user_id="user-2", access_period=45)
    recorder = Recorder()
    sweep(persistence, recorder, now + DAY)  # the sweeper's first run; then down for 200 days
    report = sweep(persistence, recorder, now + 200 * DAY)
    assert [(i, e) for i, e, _ in recorder.delivered()] == [
        ("enr-a", NO_ACCESS),
        ("enr-b", NO_ACCESS),
        ("enr-a", ACCESS_REMINDER),
        ("enr-b", ACCESS_REMINDER),
        ("enr-a", EXPIRED),
        ("enr-b", EXPIRED),
    ]  # oldest first, across enrollments
    dues = [due for _, _, due in recorder.delivered()]
    assert dues == sorted(dues)
    assert report.queries >= 200 * due_index.SHARDS  # every day since the last run, each shard
    assert report.checkpoint is not None  # nothing left behind: today (an hour's margin)
    assert report.checkpoint.date() == (now + 200 * DAY - timedelta(hours=1)).date()
    quiet = sweep(persistence, recorder, now + 200 * DAY + MINUTE)
    assert quiet.queries == due_index.SHARDS  # back to one Query per shard of today


def test_a_run_every_minute_makes_one_query_per_shard(
    persistence: BasePersistence, now: datetime
) -> None:
    recorder = Recorder()
    at = now.replace(hour=12)
    sweep(persistence, recorder, at)
    report = sweep(persistence, recorder, at + MINUTE)
    assert report.queries == due_index.SHARDS
    assert report.checkpoint is not None and report.checkpoint.date() == at.date()


def test_max_events_leaves_the_rest_to_the_next_run(
    persistence: BasePersistence, now: datetime
) -> None:
    for n in range(3):
        enroll_one(persistence, now + n * MINUTE, f"enr-{n}", user_id=f"user-{n}")
    recorder = Recorder()
    sweep(persistence, recorder, now)
    first = sweep(persistence, recorder, now + 3 * DAY + 5 * MINUTE, max_events=2)
    assert first.delivered == 2
    second = sweep(persistence, recorder, now + 3 * DAY + 6 * MINUTE, max_events=2)
    assert second.delivered == 1
    assert [i for i, _, _ in recorder.delivered()] == ["enr-0", "enr-1", "enr-2"]


def test_events_due_in_one_minute_spread_over_the_shards(now: datetime) -> None:
    store = InMemoryPersistence()
    for n in range(400):
        enroll_one(store, now, f"bulk-{n}", user_id=f"user-{n}")
    partitions = {item["due_shard"] for item in store.scan() if "due_shard" in item}
    reminder_day = (now + 3 * DAY).date().isoformat()
    shards_used = {p for p in partitions if p.startswith(reminder_day)}
    assert len(shards_used) == due_index.SHARDS
    recorder = Recorder()
    report = sweep(store, recorder, now + 3 * DAY)
    assert report.delivered == 400


def test_settings_and_handlers_are_checked(now: datetime) -> None:
    store = InMemoryPersistence()
    with pytest.raises(InvalidInput):
        SweepSettings(lease=timedelta(0))
    with pytest.raises(InvalidInput):
        SweepSettings(max_events=0)
    with pytest.raises(InvalidInput):
        deliver_due(persistence_layer=store, handlers={"course_expired": print}, now=now)  # type: ignore[dict-item]
    with pytest.raises(InvalidInput):
        deliver_due(persistence_layer=store, handlers={EXPIRED: "print"}, now=now)  # type: ignore[dict-item]


# -- the TTL stream consumer ------------------------------------------------------------------


def test_the_stream_delivers_a_ttl_deletion_and_the_sweeper_then_finds_it_claimed(
    persistence: BasePersistence, now: datetime
) -> None:
    enroll_one(persistence, now, access_period=5)
    recorder = Recorder()
    event = ttl_delete(persistence, KeyPair("enr-1", EXPIRED.value), now + 5 * DAY + 2 * MINUTE)
    response = handle_stream_batch(
        event, persistence_layer=persistence, handlers=recorder.handlers, now=now + 5 * DAY
    )
    assert response == {"batchItemFailures": []}
    assert status(persistence, "enr-1") == "EXPIRED"
    # The no-access reminder (day 3) was due before the expiry: claimed with it, delivered.
    assert [e for _, e, _ in recorder.delivered()] == [EXPIRED, NO_ACCESS]
    sweep(persistence, recorder, now + 6 * DAY, first_run_lookback=10 * DAY)
    again = handle_stream_batch(
        event, persistence_layer=persistence, handlers=recorder.handlers, now=now + 6 * DAY
    )
    assert again == {"batchItemFailures": []}  # a redelivered batch: already claimed
    assert len(recorder.calls) == 2


def test_the_sweeper_first_then_the_stream_finds_it_claimed(
    persistence: BasePersistence, now: datetime
) -> None:
    enroll_one(persistence, now)
    reminder = persistence.get_item(KeyPair("enr-1", NO_ACCESS.value))
    assert reminder is not None
    recorder = Recorder()
    sweep(persistence, recorder, now + 3 * DAY)
    # The same occurrence, as a TTL deletion record (DynamoDB deleting it late).
    late = {"Records": [ttl_removal_record(persistence.table_name, reminder, now + 4 * DAY)]}
    handle_stream_batch(late, persistence_layer=persistence, handlers=recorder.handlers, now=now)
    assert len(recorder.calls) == 1


def test_the_stream_never_delivers_for_a_canceled_enrollment(
    persistence: BasePersistence, now: datetime
) -> None:
    enroll_one(persistence, now)
    # TTL deletes the reminder; before the stream is read, the enrollment is canceled.
    event = ttl_delete(persistence, KeyPair("enr-1", NO_ACCESS.value), now + 3 * DAY)
    cancel("enr-1", author=ADMIN, persistence_layer=persistence, now=now + 3 * DAY)
    recorder = Recorder()
    handle_stream_batch(event, persistence_layer=persistence, handlers=recorder.handlers, now=now)
    assert recorder.calls == []
    assert deliveries(persistence, "enr-1") == {}


def _record(item: dict[str, Any], **changes: Any) -> dict[str, Any]:
    record = ttl_removal_record("enrollments", item, datetime(2036, 1, 1, tzinfo=timezone.utc))
    record.update(changes)
    return record


def test_the_stream_acts_only_on_ttl_deletions_of_schedule_items(
    persistence: BasePersistence, now: datetime
) -> None:
    enroll_one(persistence, now)
    reminder = persistence.get_item(KeyPair("enr-1", NO_ACCESS.value))
    root = persistence.get_item(KeyPair("enr-1", "0"))
    assert reminder is not None and root is not None
    table = persistence.table_name
    ignored: Sequence[dict[str, Any]] = [
        # a caller's delete, not TTL's
        {**_record(reminder), "userIdentity": None, "eventSourceARN": _arn(table)},
        # an insert
        {**_record(reminder), "eventName": "INSERT", "eventSourceARN": _arn(table)},
        # TTL deleting another kind of item
        {**_record(root), "eventSourceARN": _arn(table)},
        # another table's stream
        {**_record(reminder), "eventSourceARN": _arn("orders")},
    ]
    recorder = Recorder()
    response = handle_stream_batch(
        {"Records": list(ignored)},
        persistence_layer=persistence,
        handlers=recorder.handlers,
        now=now + 3 * DAY,
    )
    assert response == {"batchItemFailures": []}
    assert recorder.calls == [] and deliveries(persistence, "enr-1") == {}


def _arn(table: str) -> str:
    return f"arn:aws:dynamodb:us-east-1:123456789012:table/{table}/stream/2036-01-01T00:00:00.000"


def test_a_poisoned_record_is_skipped_and_a_transient_failure_is_retried(
    now: datetime, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = InMemoryPersistence()
    enroll_one(store, now)
    enroll_one(store, now, "enr-2", user_id="user-2")
    poisoned = {
        "eventName": "REMOVE",
        "userIdentity": {"type": "Service", "principalId": "dynamodb.amazonaws.com"},
        "dynamodb": {"SequenceNumber": "1", "OldImage": {"id": {"Q": "?"}, "sk": {"S": "x"}}},
    }
    first = ttl_delete(store, KeyPair("enr-1", NO_ACCESS.value), now + 3 * DAY)["Records"][0]
    second = ttl_delete(store, KeyPair("enr-2", NO_ACCESS.value), now + 3 * DAY)["Records"][0]
    original = store.execute_transaction
    calls = [0]

    def flaky(operations: Sequence[Operation], *, client_request_token: str) -> None:
        calls[0] += 1
        if any(op.key.pk == "enr-2" for op in operations):
            raise TransientFailure("throttled")
        original(operations, client_request_token=client_request_token)

    monkeypatch.setattr(store, "execute_transaction", flaky)
    monkeypatch.setattr(store, "retry_policy", store.retry_policy.__class__(attempts=1))
    recorder = Recorder()
    response = handle_stream_batch(
        {"Records": [poisoned, first, second]},
        persistence_layer=store,
        handlers=recorder.handlers,
        now=now + 3 * DAY,
    )
    assert response == {
        "batchItemFailures": [{"itemIdentifier": second["dynamodb"]["SequenceNumber"]}]
    }
    assert [i for i, _, _ in recorder.delivered()] == ["enr-1"]


def test_the_embedded_ttl_sweep_feeds_the_stream_consumer(now: datetime) -> None:
    """A service tests its whole lifecycle on the embedded backend with a fake clock: the
    TTL sweep makes DynamoDB's stream records, the consumer delivers them."""
    store = InMemoryPersistence()
    enroll_one(store, now, access_period=5)
    store.sweep_expired(now + 3 * DAY)
    event = store.drain_ttl_stream()
    (record,) = event["Records"]
    assert record["eventName"] == "REMOVE"
    assert record["userIdentity"] == {"type": "Service", "principalId": "dynamodb.amazonaws.com"}
    assert record["dynamodb"]["Keys"] == {"id": {"S": "enr-1"}, "sk": {"S": NO_ACCESS.value}}
    assert record["dynamodb"]["OldImage"]["email"] == {"S": "user-1@example.com"}
    assert store.drain_ttl_stream() == {"Records": []}
    recorder = Recorder()
    handle_stream_batch(
        event, persistence_layer=store, handlers=recorder.handlers, now=now + 3 * DAY
    )
    assert recorder.delivered() == [("enr-1", NO_ACCESS, whole(now + 3 * DAY))]
    assert by_sk(store, "enr-1")["0"]["status"] == "PENDING"


# -- DynamoDB Local's own TTL process and stream ---------------------------------------------


@pytest.mark.dynamodb_local
def test_dynamodb_locals_ttl_deletion_is_delivered_from_its_stream(
    idle_dynamodb_local: Endpoint,
) -> None:
    """DynamoDB Local really runs TTL: an item whose ttl is before the real clock is
    deleted within seconds, and its stream carries the REMOVE by the DynamoDB service. Read
    through the Streams API as the Lambda poller does, it is delivered once, and a second
    delivery of the same records finds it claimed.

    The table has no global secondary index: DynamoDB Local 1.25.1's TTL process deletes
    nothing from a table that has one (measured: an expired item of a table with any GSI,
    ALL or INCLUDE, was still there after two minutes, while the same item in a table
    without GSIs was gone in seconds). DynamoDB's TTL deletes from tables with GSIs and
    propagates the deletion to them (AWS Developer Guide, "Time to Live": "items deleted by
    TTL are also removed from any local or global secondary indexes").

    On the worker's idle DynamoDB Local: the TTL job for this table must get one of the
    instance's job threads (see ``idle_dynamodb_local``)."""
    import boto3

    store = fresh_dynamodb(idle_dynamodb_local, indexes=TableIndexes())  # its own stream
    try:
        real_now = datetime.now(timezone.utc)
        enroll_one(store, real_now - 2 * DAY, access_period=1)  # expired a day ago
        streams = boto3.client(
            "dynamodbstreams",
            endpoint_url=idle_dynamodb_local.endpoint_url,
            region_name="us-east-1",
        )
        arn = store.client.describe_table(TableName=store.table_name)["Table"]["LatestStreamArn"]
        (shard,) = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"]
        iterator = streams.get_shard_iterator(
            StreamArn=arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        records: list[dict[str, Any]] = []
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and not any(r["eventName"] == "REMOVE" for r in records):
            page = streams.get_records(ShardIterator=iterator)
            iterator = page["NextShardIterator"]
            # as Lambda hands them over: with the stream's ARN
            records.extend({**r, "eventSourceARN": arn} for r in page["Records"])
            time.sleep(0.5)
        removes = [r for r in records if r["eventName"] == "REMOVE"]
        assert [r["dynamodb"]["Keys"]["sk"] for r in removes] == [{"S": EXPIRED.value}]

        recorder = Recorder()
        response = handle_stream_batch(
            {"Records": records}, persistence_layer=store, handlers=recorder.handlers
        )
        assert response == {"batchItemFailures": []}
        assert [e for _, e, _ in recorder.delivered()] == [EXPIRED]
        assert status(store, "enr-1") == "EXPIRED"
        again = handle_stream_batch(
            {"Records": records}, persistence_layer=store, handlers=recorder.handlers
        )
        assert again == {"batchItemFailures": []} and len(recorder.calls) == 1
    finally:
        drop_tables(store)
