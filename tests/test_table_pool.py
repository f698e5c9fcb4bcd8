"""The test servers' table pool (tests/support/table_pool.py): a reused pair of tables is
as good as a new one: empty, with the layout create_tables() makes, or not reused at all."""

from __future__ import annotations

from typing import Any

import boto3

from enrollkit import DynamoDBPersistence
from tests.conftest import Endpoint, drop_tables, engine_of, new_dynamodb
from tests.support.table_pool import BATCH


def layout(store: DynamoDBPersistence) -> list[Any]:
    described = []
    for name in (store.table_name, store.order_table_name):
        table = store.client.describe_table(TableName=name)["Table"]
        ttl = store.client.describe_time_to_live(TableName=name)["TimeToLiveDescription"]
        described.append(
            (
                table["TableStatus"],
                table["KeySchema"],
                sorted(
                    (index["IndexName"], index["IndexStatus"], str(index["KeySchema"]))
                    for index in table.get("GlobalSecondaryIndexes", [])
                ),
                table["StreamSpecification"],
                ttl["TimeToLiveStatus"],
                ttl["AttributeName"],
            )
        )
    return described


def stream_of(store: DynamoDBPersistence, table_name: str) -> str:
    return str(store.client.describe_table(TableName=table_name)["Table"]["LatestStreamArn"])


def items(store: DynamoDBPersistence, table_name: str) -> list[dict[str, Any]]:
    return list(store.client.scan(TableName=table_name, ConsistentRead=True)["Items"])


def test_a_pair_comes_back_empty_with_its_layout(dynamodb_endpoint: Endpoint) -> None:
    """A few items are deleted, many make the table be made again: either way the next
    lease gets the same names, empty, laid out as create_tables() lays them out."""
    first = new_dynamodb(dynamodb_endpoint)
    as_created = layout(first)
    assert as_created[0][4:] == ("ENABLED", "ttl")
    stream_before = stream_of(first, first.table_name)
    first.put_item({"id": "few", "sk": "0", "ttl": 2_000_000_000})
    for n in range(BATCH + 5):
        first.put_item({"id": f"many-{n}", "sk": "0"}, table_name=first.order_table_name)
    drop_tables(first)

    second = new_dynamodb(dynamodb_endpoint)
    assert (second.table_name, second.order_table_name) == (
        first.table_name,
        first.order_table_name,
    )
    assert items(second, second.table_name) == []
    assert items(second, second.order_table_name) == []
    assert layout(second) == as_created
    if engine_of(dynamodb_endpoint) == "moto":
        # moto copies a table with its whole stream for every item of every transaction:
        # a table written to is made again, stream and all, so tests do not slow down.
        assert stream_of(second, second.table_name) != stream_before


def test_a_pair_whose_layout_changed_is_not_handed_out_again(dynamodb_endpoint: Endpoint) -> None:
    """Whatever client changes a leased table itself, the pair is deleted when given back."""
    first = new_dynamodb(dynamodb_endpoint)
    as_created = layout(first)
    other_client = boto3.client(
        "dynamodb", endpoint_url=dynamodb_endpoint.endpoint_url, region_name="us-east-1"
    )
    other_client.update_table(
        TableName=first.table_name, StreamSpecification={"StreamEnabled": False}
    )
    drop_tables(first)

    second = new_dynamodb(dynamodb_endpoint)
    assert second.table_name != first.table_name
    assert layout(second) == as_created
    tables = other_client.list_tables(Limit=100)["TableNames"]
    assert first.table_name not in tables
