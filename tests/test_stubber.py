"""The exact DynamoDB requests, pinned with botocore's Stubber on a real boto3 client.

No server: each test queues the responses DynamoDB would give and checks every
parameter of every call the library makes.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import boto3
import pytest
from boto3.dynamodb.types import TypeSerializer
from botocore.stub import ANY, Stubber

from enrollkit import (
    Author,
    CancelPolicy,
    CancelResult,
    DeduplicationConflictError,
    DeduplicationWindow,
    DynamoDBPersistence,
    EnrollmentIdConflict,
    EnrollOutcome,
    KeyPair,
    RetryPolicy,
    cancel,
    enroll,
)
from enrollkit.errors import (
    TransactionCanceled,
    TransactionError,
    TransientFailure,
)
from tests.conftest import TENANT
from tests.test_enroll import enrollment

TABLE = "enrollments"
# The requests below are pinned to this instant (no server here, so no TTL process to avoid).
STUBBED_NOW = datetime(2026, 3, 2, 12, 30, 15, 123456, tzinfo=timezone.utc)
CREATED = "2026-03-02T12:30:15.123456+00:00"
HASH = (
    "4d6557679db83d931a9de1831bca5c8dbae326934c1e487612bd1c5537cc65e1"  # sha256("user-1#course-1")
)
_serializer = TypeSerializer()


@pytest.fixture
def now() -> datetime:
    return STUBBED_NOW


def s(value: str) -> dict[str, str]:
    return {"S": value}


def n(value: int) -> dict[str, str]:
    return {"N": str(value)}


def dynamo(item: Mapping[str, Any]) -> dict[str, Any]:
    return {name: _serializer.serialize(value) for name, value in item.items()}


class SameElements:
    """Matches a list with these elements in any order (a set's order is not fixed)."""

    def __init__(self, *values: str) -> None:
        self.values = sorted(values)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, list) and sorted(other) == self.values

    def __repr__(self) -> str:
        return f"SameElements{tuple(self.values)}"


class Stubbed:
    def __init__(self) -> None:
        self.client = boto3.client(
            "dynamodb",
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        self.stubber = Stubber(self.client)
        self.sleeps: list[float] = []
        self.persistence = DynamoDBPersistence(
            client=self.client, retry_policy=RetryPolicy(attempts=4, sleep=self.sleeps.append)
        )
        self.sent: list[dict[str, Any]] = []
        self.client.meta.events.register(
            "provide-client-params.dynamodb.TransactWriteItems",
            lambda params, **_: self.sent.append(dict(params)),
        )


@pytest.fixture
def stubbed() -> Iterator[Stubbed]:
    stub = Stubbed()
    with stub.stubber:
        yield stub
        stub.stubber.assert_no_pending_responses()


# -- enroll --------------------------------------------------------------------------------------

SCHEDULE = {
    "name": s("Name user-1"),
    "email": s("user-1@example.com"),
    "course": s("Course course-1"),
}


def enroll_request() -> dict[str, Any]:
    """What enroll() sends for enr-1 (user-1, course-1, 90 days) at NOW, with a 10-day
    window offset and a 7-day cancel policy."""
    return {
        "ClientRequestToken": ANY,
        "TransactItems": [
            {
                "Put": {
                    "TableName": TABLE,
                    "Item": {
                        "id": s("enr-1"),
                        "sk": s("0"),
                        "user": {
                            "M": {
                                "id": s("user-1"),
                                "name": s("Name user-1"),
                                "email": s("user-1@example.com"),
                            }
                        },
                        "course": {
                            "M": {
                                "id": s("course-1"),
                                "name": s("Course course-1"),
                                "access_period": n(90),
                            }
                        },
                        "status": s("PENDING"),
                        "progress": n(0),
                        "create_date": s(CREATED),
                        "metadata__tenant_id": s("tenant-1"),
                        "metadata__related_ids": {"SS": SameElements("tenant-1", "user-1")},
                        # The listing index keys.
                        "index__created": s("2026-03-02T12:30:15.123456Z#enr-1"),
                        "index__user": s("tenant-1#user-1"),
                        "index__course": s("tenant-1#course-1"),
                        "index__status": s("tenant-1#PENDING"),
                        "index__user_status": s("tenant-1#user-1#PENDING"),
                        "index__course_status": s("tenant-1#course-1#PENDING"),
                    },
                    "ConditionExpression": "attribute_not_exists(#n0)",
                    "ExpressionAttributeNames": {"#n0": "id"},
                    "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                }
            },
            {
                "Put": {
                    "TableName": TABLE,
                    "Item": {
                        "id": s("enr-1"),
                        "sk": s("metadata#tenant"),
                        "tenant_id": s("ORG#tenant-1"),
                        "name": s("Acme Training"),
                        "create_date": s(CREATED),
                    },
                }
            },
            {
                "Put": {
                    "TableName": TABLE,
                    "Item": {
                        "id": s("enr-1"),
                        "sk": s("schedules#reminder_no_access_3_days"),
                        **SCHEDULE,
                        "create_date": s(CREATED),
                        "ttl": n(1772713815),  # NOW + 3 days
                        "due_shard": s("2026-03-05#11"),  # the due-time index
                        "due_at": s("2026-03-05T12:30:15Z"),
                    },
                }
            },
            {
                "Put": {
                    "TableName": TABLE,
                    "Item": {
                        "id": s("enr-1"),
                        "sk": s("schedules#access_period_reminder_30_days"),
                        **SCHEDULE,
                        "create_date": s(CREATED),
                        "ttl": n(1777638615),  # NOW + 60 days
                        "due_shard": s("2026-05-01#11"),  # the due-time index
                        "due_at": s("2026-05-01T12:30:15Z"),
                    },
                }
            },
            {
                "Put": {
                    "TableName": TABLE,
                    "Item": {
                        "id": s("enr-1"),
                        "sk": s("schedules#course_expired"),
                        **SCHEDULE,
                        "create_date": s(CREATED),
                        "ttl": n(1780230615),  # NOW + 90 days
                        "due_shard": s("2026-05-31#11"),  # the due-time index
                        "due_at": s("2026-05-31T12:30:15Z"),
                    },
                }
            },
            {
                "Put": {
                    "TableName": TABLE,
                    "Item": {
                        "id": s("lock"),
                        "sk": s(HASH),
                        "enrollment_id": s("enr-1"),
                        "tenant_id": s(TENANT.id),
                        "create_date": s(CREATED),
                        "ttl": n(1779366615),  # NOW + 80 days
                    },
                    # absent, or expired (ttl <= now): one operation checks and takes it
                    "ConditionExpression": "(attribute_not_exists(#n0) OR #n1 <= :v0)",
                    "ExpressionAttributeNames": {"#n0": "sk", "#n1": "ttl"},
                    "ExpressionAttributeValues": {":v0": n(1772454615)},  # NOW
                    "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                }
            },
            {
                "Put": {
                    "TableName": TABLE,
                    "Item": {
                        "id": s("enr-1"),
                        "sk": s("metadata#lock"),
                        "hash": s(HASH),
                        "create_date": s(CREATED),
                        "ttl": n(1779366615),
                    },
                }
            },
            {
                "Put": {
                    "TableName": TABLE,
                    "Item": {
                        "id": s("enr-1"),
                        "sk": s("metadata#deduplication_window"),
                        "offset_days": n(10),
                        "create_date": s(CREATED),
                    },
                }
            },
            {
                "Put": {
                    "TableName": TABLE,
                    "Item": {
                        "id": s("enr-1"),
                        "sk": s("cancel_policy"),
                        "create_date": s(CREATED),
                        "ttl": n(1773059415),  # NOW + 7 days
                    },
                }
            },
        ],
    }


def enroll_once(stubbed: Stubbed, now: datetime) -> EnrollOutcome:
    return enroll(
        enrollment(),
        tenant=TENANT,
        persistence_layer=stubbed.persistence,
        deduplication_window=DeduplicationWindow(offset_days=10),
        cancel_policy=CancelPolicy(days=7),
        now=now,
    )


def test_enroll_sends_exactly_this_transaction(stubbed: Stubbed, now: datetime) -> None:
    stubbed.stubber.add_response("transact_write_items", {}, expected_params=enroll_request())
    assert enroll_once(stubbed, now) is EnrollOutcome.CREATED
    (request,) = stubbed.sent
    assert isinstance(request["ClientRequestToken"], str) and request["ClientRequestToken"]


def cancellation(codes_and_items: list[tuple[str, Mapping[str, Any] | None]]) -> dict[str, Any]:
    reasons: list[dict[str, Any]] = []
    for code, item in codes_and_items:
        reason: dict[str, Any] = {"Code": code}
        if code != "None":
            reason["Message"] = "The conditional request failed"
        if item is not None:
            reason["Item"] = dynamo(item)
        reasons.append(reason)
    return {"CancellationReasons": reasons}


def canceled_at(index: int, item: Mapping[str, Any] | None, total: int = 9) -> dict[str, Any]:
    return cancellation(
        [("ConditionalCheckFailed", item) if i == index else ("None", None) for i in range(total)]
    )


def test_enroll_maps_a_failed_lock_condition_to_deduplication_conflict(
    stubbed: Stubbed, now: datetime
) -> None:
    holder = {
        "id": "lock",
        "sk": HASH,
        "enrollment_id": "other",
        "tenant_id": TENANT.id,  # the same tenant: the holder is named
        "ttl": 1779366615,
    }
    stubbed.stubber.add_client_error(
        "transact_write_items",
        service_error_code="TransactionCanceledException",
        service_message="Transaction cancelled",
        expected_params=enroll_request(),
        modeled_fields=canceled_at(5, holder),
    )
    with pytest.raises(DeduplicationConflictError) as raised:
        enroll_once(stubbed, now)
    assert raised.value.failed_index == 5
    assert raised.value.failed_item == holder
    assert [reason.code for reason in raised.value.reasons] == ["None"] * 5 + [
        "ConditionalCheckFailed"
    ] + ["None"] * 3


def test_enroll_recognises_its_own_retry_from_the_returned_item(
    stubbed: Stubbed, now: datetime
) -> None:
    existing = {
        "id": "enr-1",
        "sk": "0",
        "user": {"id": "user-1", "name": "Name user-1", "email": "user-1@example.com"},
        "course": {"id": "course-1", "name": "Course course-1", "access_period": 90},
        "status": "PENDING",
        "progress": 0,
        "create_date": "2026-03-01T00:00:00+00:00",
        "metadata__tenant_id": "tenant-1",
        "metadata__related_ids": {"tenant-1", "user-1"},
    }
    for item, tenant in ((existing, "tenant-1"), (existing, "tenant-2")):
        stubbed.stubber.add_client_error(
            "transact_write_items",
            service_error_code="TransactionCanceledException",
            service_message="Transaction cancelled",
            expected_params=enroll_request(),
            modeled_fields=canceled_at(0, {**item, "metadata__tenant_id": tenant}),
        )
    # The Item came back with the cancellation: no extra read is needed.
    assert enroll_once(stubbed, now) is EnrollOutcome.ALREADY_ENROLLED
    with pytest.raises(EnrollmentIdConflict):
        enroll_once(stubbed, now)


# -- cancel --------------------------------------------------------------------------------------


def enrolled_items() -> list[dict[str, Any]]:
    """The items of enr-1 as the Query returns them (sort-key order)."""
    schedule = {"name": "Name user-1", "email": "user-1@example.com", "course": "Course course-1"}
    return [
        {
            "id": "enr-1",
            "sk": "0",
            "user": {"id": "user-1", "name": "Name user-1", "email": "user-1@example.com"},
            "course": {"id": "course-1", "name": "Course course-1", "access_period": 90},
            "status": "PENDING",
            "progress": 0,
            "create_date": CREATED,
            "metadata__tenant_id": "tenant-1",
            "metadata__related_ids": {"tenant-1", "user-1"},
        },
        {"id": "enr-1", "sk": "cancel_policy", "create_date": CREATED, "ttl": 1773059415},
        {"id": "enr-1", "sk": "metadata#deduplication_window", "offset_days": 10},
        {"id": "enr-1", "sk": "metadata#lock", "hash": HASH, "ttl": 1779366615},
        {"id": "enr-1", "sk": "metadata#tenant", "tenant_id": "ORG#tenant-1", "name": "Acme"},
        {
            "id": "enr-1",
            "sk": "schedules#access_period_reminder_30_days",
            **schedule,
            "ttl": 1777638615,
        },
        {"id": "enr-1", "sk": "schedules#course_expired", **schedule, "ttl": 1780230615},
        {"id": "enr-1", "sk": "schedules#no_activity_7_days", **schedule, "ttl": 1773318615},
        {"id": "enr-1", "sk": "schedules#reminder_no_access_3_days", **schedule, "ttl": 1772713815},
    ]


QUERY = {
    "TableName": TABLE,
    "KeyConditionExpression": "#pk = :pk",
    "ExpressionAttributeNames": {"#pk": "id"},
    "ExpressionAttributeValues": {":pk": s("enr-1")},
    "ConsistentRead": True,
}
CANCELED_AT = "2026-03-03T12:30:15.123456+00:00"  # NOW + 1 day


def delete(sk: str) -> dict[str, Any]:
    return {"Delete": {"TableName": TABLE, "Key": {"id": s("enr-1"), "sk": s(sk)}}}


def cancel_request() -> dict[str, Any]:
    return {
        "ClientRequestToken": ANY,
        "TransactItems": [
            {
                "Put": {
                    "TableName": TABLE,
                    "Item": {
                        "id": s("enr-1"),
                        "sk": s("canceled_date"),
                        "author": {"M": {"id": s("admin-1"), "name": s("Admin One")}},
                        "create_date": s(CANCELED_AT),
                        "request_token": {"S": ANY},
                    },
                    "ConditionExpression": "attribute_not_exists(#n0)",
                    "ExpressionAttributeNames": {"#n0": "sk"},
                    "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                }
            },
            {
                "Update": {
                    "TableName": TABLE,
                    "Key": {"id": s("enr-1"), "sk": s("0")},
                    # The status, and the status listings' keys with it.
                    "UpdateExpression": "SET #u0 = :u0, #u1 = :u1, #u2 = :u2, #u3 = :u3, #u4 = :u4",
                    # PENDING or IN_PROGRESS (the transitions table), and the tenant's
                    "ConditionExpression": "(#n0 IN (:v0, :v1) AND #n1 = :v2)",
                    "ExpressionAttributeNames": {
                        "#u0": "status",
                        "#u1": "update_date",
                        "#u2": "index__status",
                        "#u3": "index__user_status",
                        "#u4": "index__course_status",
                        "#n0": "status",
                        "#n1": "metadata__tenant_id",
                    },
                    "ExpressionAttributeValues": {
                        ":u0": s("CANCELED"),
                        ":u1": s(CANCELED_AT),
                        ":u2": s("tenant-1#CANCELED"),
                        ":u3": s("tenant-1#user-1#CANCELED"),
                        ":u4": s("tenant-1#course-1#CANCELED"),
                        ":v0": s("IN_PROGRESS"),
                        ":v1": s("PENDING"),
                        ":v2": s("tenant-1"),
                    },
                    "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                }
            },
            {
                "Delete": {
                    "TableName": TABLE,
                    "Key": {"id": s("enr-1"), "sk": s("cancel_policy")},
                    # present, and not expired (no ttl, or ttl after now)
                    "ConditionExpression": (
                        "(attribute_exists(#n0) AND (attribute_not_exists(#n1) OR #n2 > :v0))"
                    ),
                    "ExpressionAttributeNames": {"#n0": "sk", "#n1": "ttl", "#n2": "ttl"},
                    "ExpressionAttributeValues": {":v0": n(1772541015)},  # NOW + 1 day
                    "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                }
            },
            # every event's item, read or not (a missing one is a no-op)
            delete("schedules#access_period_reminder_30_days"),
            delete("schedules#cert_expiration_reminder_30_days"),
            delete("schedules#course_archived"),
            {
                "Delete": {
                    "TableName": TABLE,
                    "Key": {"id": s("enr-1"), "sk": s("schedules#course_expired")},
                    # not due yet: an expired enrollment keeps its seat
                    "ConditionExpression": "(attribute_not_exists(#n0) OR #n1 > :v0)",
                    "ExpressionAttributeNames": {"#n0": "sk", "#n1": "ttl"},
                    "ExpressionAttributeValues": {":v0": n(1772541015)},  # NOW + 1 day
                    "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                }
            },
            delete("schedules#no_activity_7_days"),
            delete("schedules#reminder_no_access_3_days"),
            delete("metadata#lock"),
            {
                "Delete": {
                    "TableName": TABLE,
                    "Key": {"id": s("lock"), "sk": s(HASH)},
                    # only this enrollment's lock
                    "ConditionExpression": "(attribute_not_exists(#n0) OR #n1 = :v0)",
                    "ExpressionAttributeNames": {"#n0": "enrollment_id", "#n1": "enrollment_id"},
                    "ExpressionAttributeValues": {":v0": s("enr-1")},
                    "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                }
            },
        ],
    }


def test_cancel_queries_once_then_sends_exactly_this_transaction(
    stubbed: Stubbed, now: datetime
) -> None:
    stubbed.stubber.add_response(
        "query", {"Items": [dynamo(item) for item in enrolled_items()]}, expected_params=QUERY
    )
    stubbed.stubber.add_response("transact_write_items", {}, expected_params=cancel_request())

    result = cancel(
        "enr-1",
        author=Author(id="admin-1", name="Admin One"),
        persistence_layer=stubbed.persistence,
        now=now + timedelta(days=1),
    )
    assert result == CancelResult(enrollment_id="enr-1")


def test_cancel_follows_query_pages(stubbed: Stubbed, now: datetime) -> None:
    items = [dynamo(item) for item in enrolled_items()]
    last_key = {"id": s("enr-1"), "sk": s("metadata#lock")}
    stubbed.stubber.add_response(
        "query", {"Items": items[:4], "LastEvaluatedKey": last_key}, expected_params=QUERY
    )
    stubbed.stubber.add_response(
        "query", {"Items": items[4:]}, expected_params={**QUERY, "ExclusiveStartKey": last_key}
    )
    stubbed.stubber.add_response("transact_write_items", {}, expected_params=cancel_request())
    cancel(
        "enr-1",
        author=Author(id="admin-1", name="Admin One"),
        persistence_layer=stubbed.persistence,
        now=now + timedelta(days=1),
    )


# -- errors and retries of the builder -----------------------------------------------------------


class First(TransactionCanceled):
    pass


class Second(TransactionCanceled):
    pass


def three_ops_request(token: str) -> dict[str, Any]:
    return {
        "ClientRequestToken": token,
        "TransactItems": [
            {"Put": {"TableName": TABLE, "Item": {"id": s("a"), "sk": s("0")}}},
            {
                "ConditionCheck": {
                    "TableName": TABLE,
                    "Key": {"id": s("b"), "sk": s("0")},
                    "ConditionExpression": "#n0 = :v0",
                    "ExpressionAttributeNames": {"#n0": "state"},
                    "ExpressionAttributeValues": {":v0": s("open")},
                    "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                }
            },
            {
                "Delete": {
                    "TableName": "orders",
                    "Key": {"id": s("c"), "sk": s("0")},
                    "ConditionExpression": "attribute_exists(#n0)",
                    "ExpressionAttributeNames": {"#n0": "sk"},
                    "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                }
            },
        ],
    }


def send_three_ops(persistence: DynamoDBPersistence, token: str = "token-1") -> None:
    from boto3.dynamodb.conditions import Attr

    with persistence.transact_writer(client_request_token=token) as tx:
        tx.put(item={"id": "a", "sk": "0"})
        tx.condition(key=KeyPair(pk="b", sk="0"), cond=Attr("state").eq("open"), exc_cls=First)
        tx.delete(
            key=KeyPair(pk="c", sk="0"),
            cond=Attr("sk").exists(),
            exc_cls=Second,
            table_name="orders",
        )


def test_cancellation_reasons_map_to_the_first_failed_exc_cls(stubbed: Stubbed) -> None:
    closed = {"id": "b", "sk": "0", "state": "closed", "n": Decimal("1.5"), "k": 3, "t": {"x"}}
    stubbed.stubber.add_client_error(
        "transact_write_items",
        service_error_code="TransactionCanceledException",
        service_message="Transaction cancelled, please refer cancellation reasons",
        expected_params=three_ops_request("token-1"),
        modeled_fields=cancellation(
            [("None", None), ("ConditionalCheckFailed", closed), ("ConditionalCheckFailed", None)]
        ),
    )
    with pytest.raises(First) as raised:
        send_three_ops(stubbed.persistence)
    error = raised.value
    assert error.failed_index == 1
    assert [reason.code for reason in error.reasons] == [
        "None",
        "ConditionalCheckFailed",
        "ConditionalCheckFailed",
    ]
    assert [reason.item for reason in error.reasons] == [None, closed, None]
    assert error.failed_item == closed
    assert type(error.failed_item["k"]) is int  # plain Python, not Decimal(3)
    assert stubbed.sleeps == []  # not retried


@pytest.mark.parametrize(
    "failure",
    [
        {"service_error_code": "ThrottlingException", "http_status_code": 400},
        {"service_error_code": "ProvisionedThroughputExceededException"},
        {"service_error_code": "TransactionInProgressException"},
        {"service_error_code": "InternalServerError", "http_status_code": 500},
        {
            "service_error_code": "TransactionCanceledException",
            "modeled_fields": cancellation(
                [("None", None), ("TransactionConflict", None), ("None", None)]
            ),
        },
    ],
    ids=["throttling", "throughput", "in-progress", "internal", "conflict"],
)
def test_transient_failure_then_success_is_retried_with_the_same_token(
    stubbed: Stubbed, failure: dict[str, Any]
) -> None:
    stubbed.stubber.add_client_error(
        "transact_write_items",
        service_message="try again",
        expected_params=three_ops_request("token-1"),
        **failure,
    )
    stubbed.stubber.add_response(
        "transact_write_items", {}, expected_params=three_ops_request("token-1")
    )
    send_three_ops(stubbed.persistence)
    assert len(stubbed.sleeps) == 1
    assert [request["ClientRequestToken"] for request in stubbed.sent] == ["token-1", "token-1"]


def test_enroll_retries_a_throttled_commit_with_the_same_token(
    stubbed: Stubbed, now: datetime
) -> None:
    stubbed.stubber.add_client_error(
        "transact_write_items",
        service_error_code="ThrottlingException",
        service_message="Rate exceeded",
        expected_params=enroll_request(),
    )
    stubbed.stubber.add_response("transact_write_items", {}, expected_params=enroll_request())
    assert enroll_once(stubbed, now) is EnrollOutcome.CREATED
    first, second = stubbed.sent
    assert first["ClientRequestToken"] == second["ClientRequestToken"]


def test_retries_stop_after_the_policy_attempts(stubbed: Stubbed) -> None:
    for _ in range(4):
        stubbed.stubber.add_client_error(
            "transact_write_items",
            service_error_code="ThrottlingException",
            service_message="Rate exceeded",
            expected_params=three_ops_request("token-1"),
        )
    with pytest.raises(TransientFailure):
        send_three_ops(stubbed.persistence)
    assert len(stubbed.sent) == 4
    assert len(stubbed.sleeps) == 3


@pytest.mark.parametrize("code", ["ValidationException", "IdempotentParameterMismatchException"])
def test_a_refused_request_is_a_transaction_error_and_not_retried(
    stubbed: Stubbed, code: str
) -> None:
    stubbed.stubber.add_client_error(
        "transact_write_items",
        service_error_code=code,
        service_message="refused",
        expected_params=three_ops_request("token-1"),
    )
    with pytest.raises(TransactionError):
        send_three_ops(stubbed.persistence)
    assert len(stubbed.sent) == 1


def test_a_cancellation_without_reasons_is_not_retried(stubbed: Stubbed) -> None:
    """No CancellationReasons says nothing of a collision: re-sending would repeat it
    (it was re-sent 8 times)."""
    stubbed.stubber.add_client_error(
        "transact_write_items",
        service_error_code="TransactionCanceledException",
        service_message="Transaction cancelled",
        expected_params=three_ops_request("token-1"),
    )
    with pytest.raises(TransactionCanceled, match="Transaction cancelled") as raised:
        send_three_ops(stubbed.persistence)
    assert type(raised.value) is TransactionCanceled
    assert raised.value.reasons == ()
    assert len(stubbed.sent) == 1
    assert stubbed.sleeps == []
