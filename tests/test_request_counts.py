"""The DynamoDB requests each operation sends, counted on the wire (botocore's
``before-send`` event, one per HTTP request): one TransactWriteItems per enroll(), one
Query and one TransactWriteItems per cancel(), with or without a seat."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest

from enrollkit import (
    Author,
    CancelPolicy,
    DeduplicationWindow,
    DynamoDBPersistence,
    EnrollOutcome,
    KeyPair,
    add_vacancies,
    cancel,
    enroll,
)
from tests.conftest import TENANT, make_course, make_enrollment, new_dynamodb
from tests.support import moto_server

pytestmark = pytest.mark.moto

ADMIN = Author(id="admin", name="Admin")


class SentRequests:
    """The DynamoDB operations a client sends, in order, as they leave for the wire."""

    def __init__(self, store: DynamoDBPersistence) -> None:
        self.names: list[str] = []
        store.client.meta.events.register("before-send.dynamodb.*", self._record)

    def _record(self, request: Any, **_: object) -> None:
        self.names.append(request.headers["X-Amz-Target"].decode().rsplit(".", 1)[-1])

    def during(self, action: Callable[[], object]) -> list[str]:
        self.names.clear()
        action()
        return list(self.names)


@pytest.fixture
def store(moto: moto_server.MotoServer) -> DynamoDBPersistence:
    return new_dynamodb(moto)


def test_enroll_is_one_transact_write_items(store: DynamoDBPersistence, now: datetime) -> None:
    sent = SentRequests(store)
    outcomes: list[EnrollOutcome] = []
    requests = sent.during(
        lambda: outcomes.append(
            enroll(
                make_enrollment(),
                tenant=TENANT,
                persistence_layer=store,
                deduplication_window=DeduplicationWindow(offset_days=10),
                cancel_policy=CancelPolicy(days=7),
                now=now,
            )
        )
    )
    assert outcomes == [EnrollOutcome.CREATED]
    assert requests == ["TransactWriteItems"]


def test_cancel_is_one_query_and_one_transact_write_items(
    store: DynamoDBPersistence, now: datetime
) -> None:
    enrollment = make_enrollment()
    enroll(
        enrollment,
        tenant=TENANT,
        persistence_layer=store,
        deduplication_window=DeduplicationWindow(offset_days=10),
        cancel_policy=CancelPolicy(days=7),
        now=now,
    )
    sent = SentRequests(store)
    requests = sent.during(
        lambda: cancel(enrollment.id, author=ADMIN, persistence_layer=store, now=now)
    )
    assert requests == ["Query", "TransactWriteItems"]
    root = store.get_item(KeyPair(pk=enrollment.id, sk="0"))
    assert root is not None and root["status"] == "CANCELED"


def test_with_a_seat_still_one_request_each(store: DynamoDBPersistence, now: datetime) -> None:
    course = make_course()
    store.put_item({"id": "order-1", "sk": "0"}, table_name=store.order_table_name)
    (seat,) = add_vacancies(
        org_id=TENANT.id,
        order_id="order-1",
        course=course,
        quantity=1,
        persistence_layer=store,
        now=now,
    )
    enrollment = make_enrollment()
    sent = SentRequests(store)
    enrolling = sent.during(
        lambda: enroll(
            enrollment,
            tenant=TENANT,
            persistence_layer=store,
            vacancy=seat,
            cancel_policy=CancelPolicy(days=7),
            now=now,
        )
    )
    canceling = sent.during(
        lambda: cancel(enrollment.id, author=ADMIN, persistence_layer=store, now=now)
    )
    assert enrolling == ["TransactWriteItems"]
    assert canceling == ["Query", "TransactWriteItems"]
