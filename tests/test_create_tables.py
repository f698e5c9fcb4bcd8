"""create_tables() on DynamoDB (moto and DynamoDB Local): it creates
what is missing and checks what exists, naming each difference from the layout enrollkit
writes (DESIGN.md, "Table layout") with a typed error rather than working on it."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from enrollkit import DynamoDBPersistence, PersistenceError, TableLayoutMismatch
from tests.conftest import Endpoint, idle_if_dynamodb_local

KEY = {
    "KeySchema": [
        {"AttributeName": "id", "KeyType": "HASH"},
        {"AttributeName": "sk", "KeyType": "RANGE"},
    ],
    "AttributeDefinitions": [
        {"AttributeName": "id", "AttributeType": "S"},
        {"AttributeName": "sk", "AttributeType": "S"},
    ],
}
STREAM = {"StreamSpecification": {"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"}}


def fresh(dynamodb_endpoint: Endpoint) -> DynamoDBPersistence:
    suffix = uuid.uuid4().hex[:8]
    return DynamoDBPersistence(
        f"layout-{suffix}", f"layout-orders-{suffix}", endpoint_url=dynamodb_endpoint.endpoint_url
    )


def ttl_of(store: DynamoDBPersistence, table_name: str) -> dict[str, Any]:
    description = store.client.describe_time_to_live(TableName=table_name)
    return dict(description["TimeToLiveDescription"])


def test_creates_both_tables_and_is_idempotent(dynamodb_endpoint: Endpoint) -> None:
    store = fresh(dynamodb_endpoint)
    store.create_tables()
    store.create_tables()
    for table_name in (store.table_name, store.order_table_name):
        table = store.client.describe_table(TableName=table_name)["Table"]
        assert table["KeySchema"] == KEY["KeySchema"]
        assert table["StreamSpecification"] == STREAM["StreamSpecification"]
        assert ttl_of(store, table_name) == {"TimeToLiveStatus": "ENABLED", "AttributeName": "ttl"}


@pytest.mark.parametrize(
    ("existing", "ttl_attribute", "differences"),
    [
        pytest.param(
            {
                "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
                "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
                **STREAM,
            },
            None,
            ["key schema is pk (S), not id (S) / sk (S)"],
            id="partition-key-only",
        ),
        pytest.param(
            {
                "KeySchema": [
                    {"AttributeName": "sk", "KeyType": "HASH"},
                    {"AttributeName": "id", "KeyType": "RANGE"},
                ],
                "AttributeDefinitions": KEY["AttributeDefinitions"],
                **STREAM,
            },
            None,
            ["key schema is sk (S) / id (S), not id (S) / sk (S)"],
            id="keys-swapped",
        ),
        pytest.param(
            {
                "KeySchema": KEY["KeySchema"],
                "AttributeDefinitions": [
                    {"AttributeName": "id", "AttributeType": "S"},
                    {"AttributeName": "sk", "AttributeType": "N"},
                ],
                **STREAM,
            },
            None,
            ["key attribute 'sk' is of type N, not S"],
            id="numeric-sort-key",
        ),
        pytest.param(
            {**KEY, **STREAM},
            "expires_at",
            ["TTL is on attribute 'expires_at', not 'ttl'"],
            id="ttl-on-another-attribute",
        ),
        pytest.param(KEY, None, ["streams are off, not NEW_AND_OLD_IMAGES"], id="streams-off"),
        pytest.param(
            {**KEY, "StreamSpecification": {"StreamEnabled": True, "StreamViewType": "KEYS_ONLY"}},
            None,
            ["streams carry KEYS_ONLY, not NEW_AND_OLD_IMAGES"],
            id="keys-only-stream",
        ),
        pytest.param(
            {
                "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
                "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
            },
            "expires_at",
            [
                "key schema is pk (S), not id (S) / sk (S)",
                "TTL is on attribute 'expires_at', not 'ttl'",
                "streams are off, not NEW_AND_OLD_IMAGES",
            ],
            id="everything",
        ),
    ],
)
def test_an_existing_table_of_another_layout_is_refused_and_left_alone(
    dynamodb_endpoint: Endpoint,
    existing: dict[str, Any],
    ttl_attribute: str | None,
    differences: list[str],
) -> None:
    store = fresh(dynamodb_endpoint)
    store.client.create_table(TableName=store.table_name, BillingMode="PAY_PER_REQUEST", **existing)
    if ttl_attribute is not None:
        store.client.update_time_to_live(
            TableName=store.table_name,
            TimeToLiveSpecification={"Enabled": True, "AttributeName": ttl_attribute},
        )
    ttl_before = ttl_of(store, store.table_name)

    with pytest.raises(TableLayoutMismatch) as raised:
        store.create_tables()

    assert isinstance(raised.value, PersistenceError)
    assert raised.value.table_name == store.table_name
    assert list(raised.value.differences) == differences
    assert str(raised.value) == (
        f"table {store.table_name!r} exists with another layout: " + "; ".join(differences)
    )
    assert ttl_of(store, store.table_name) == ttl_before  # nothing changed


def test_an_existing_table_without_ttl_gets_it(
    dynamodb_endpoint: Endpoint, request: pytest.FixtureRequest
) -> None:
    """As left by a create_tables() interrupted before it enabled TTL: finished, not refused.
    (Its seven indexes are added one by one, each by a DynamoDB Local background job.)"""
    store = fresh(idle_if_dynamodb_local(request, dynamodb_endpoint))
    store.client.create_table(
        TableName=store.table_name, BillingMode="PAY_PER_REQUEST", **KEY, **STREAM
    )
    store.create_tables()
    assert ttl_of(store, store.table_name) == {
        "TimeToLiveStatus": "ENABLED",
        "AttributeName": "ttl",
    }
