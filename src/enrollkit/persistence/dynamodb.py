"""The DynamoDB backend: only talks to DynamoDB (through a boto3 client).

boto3 is imported when this module is, and ``enrollkit`` imports this module only
when ``DynamoDBPersistence`` is first used, so ``import enrollkit`` stays light.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import boto3
from boto3.dynamodb.conditions import ConditionExpressionBuilder
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    HTTPClientError,
    NoCredentialsError,
    NoRegionError,
)
from botocore.exceptions import ConnectionError as BotoConnectionError

from enrollkit.errors import (
    CancellationReason,
    PersistenceError,
    TableLayoutMismatch,
    TransactionCanceled,
    TransactionError,
    TransientFailure,
)
from enrollkit.keys import PARTITION_KEY, SORT_KEY, TTL_ATTRIBUTE
from enrollkit.models import KeyPair
from enrollkit.persistence.base import DEFAULT_ORDER_TABLE_NAME, DEFAULT_TABLE_NAME, BasePersistence
from enrollkit.persistence.marshal import (
    deserialize_item,
    serialize_attributes,
    serialize_item,
    serialize_value,
)
from enrollkit.transaction.operations import ConditionCheck, Delete, Operation, Put, Update
from enrollkit.transaction.retry import RetryPolicy

if TYPE_CHECKING:
    from boto3.dynamodb.conditions import ConditionBase
    from mypy_boto3_dynamodb.client import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import TransactWriteItemTypeDef

# Worth retrying: DynamoDB says so, or the request may not have reached it.
TRANSIENT_ERROR_CODES = frozenset(
    {
        "ThrottlingException",
        "ProvisionedThroughputExceededException",
        "RequestLimitExceeded",
        "InternalServerError",
        "ServiceUnavailable",
        "TransactionInProgressException",
        "TransactionConflictException",
    }
)
# Cancellation reasons that mean "collided with another writer", not "a condition failed".
TRANSIENT_CANCELLATION_CODES = frozenset(
    {"TransactionConflict", "ThrottlingError", "ProvisionedThroughputExceeded", "None"}
)
# botocore's own retries (same request, same ClientRequestToken) come first.
DEFAULT_CLIENT_CONFIG = Config(retries={"mode": "standard", "max_attempts": 5})


class DynamoDBPersistence(BasePersistence):
    """Enrollments and orders in DynamoDB (or DynamoDB Local, or a moto server)."""

    def __init__(
        self,
        table_name: str = DEFAULT_TABLE_NAME,
        order_table_name: str = DEFAULT_ORDER_TABLE_NAME,
        *,
        client: DynamoDBClient | None = None,
        endpoint_url: str | None = None,
        region_name: str | None = None,
        retry_policy: RetryPolicy | None = None,
    ) -> None:
        super().__init__(table_name, order_table_name, retry_policy=retry_policy)
        if client is None:
            try:
                client = boto3.client(
                    "dynamodb",
                    endpoint_url=endpoint_url,
                    # A local endpoint needs some region; AWS takes it from the environment.
                    region_name=region_name or ("us-east-1" if endpoint_url else None),
                    config=DEFAULT_CLIENT_CONFIG,
                )
            except (NoRegionError, ValueError) as error:
                raise PersistenceError(f"cannot create a DynamoDB client: {error}") from error
        self.client = client

    # -- transactions -----------------------------------------------------------

    def execute_transaction(
        self, operations: Sequence[Operation], *, client_request_token: str
    ) -> None:
        self._call(
            "transact_write_items",
            TransactItems=[_transact_item(operation) for operation in operations],
            ClientRequestToken=client_request_token,
        )

    # -- plain reads and writes ----------------------------------------------------

    def get_item(self, key: KeyPair, *, table_name: str | None = None) -> dict[str, Any] | None:
        response = self._call(
            "get_item",
            TableName=self._table(table_name),
            Key={name: serialize_value(value) for name, value in key.as_key().items()},
            ConsistentRead=True,
        )
        item = response.get("Item")
        return deserialize_item(item) if item is not None else None

    def query(
        self, pk: str, *, sk_prefix: str = "", table_name: str | None = None
    ) -> list[dict[str, Any]]:
        condition = "#pk = :pk" + (" AND begins_with(#sk, :prefix)" if sk_prefix else "")
        names = {"#pk": PARTITION_KEY, **({"#sk": SORT_KEY} if sk_prefix else {})}
        values = {":pk": {"S": pk}, **({":prefix": {"S": sk_prefix}} if sk_prefix else {})}
        request: dict[str, Any] = {
            "TableName": self._table(table_name),
            "KeyConditionExpression": condition,
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": values,
            "ConsistentRead": True,
        }
        items: list[dict[str, Any]] = []
        while True:
            response = self._call("query", **request)
            items.extend(deserialize_item(item) for item in response.get("Items", []))
            last_key = response.get("LastEvaluatedKey")
            if not last_key:
                return items
            request["ExclusiveStartKey"] = last_key

    def put_item(self, item: Mapping[str, Any], *, table_name: str | None = None) -> None:
        self._call("put_item", TableName=self._table(table_name), Item=serialize_item(item))

    # -- provisioning ------------------------------------------------------------

    def create_tables(self) -> None:
        """Create both tables if missing: key ``id``/``sk``, TTL on ``ttl``, streams
        with new and old images, on-demand billing. Safe to call again.

        A table that exists already is checked: another key schema, TTL on another
        attribute or streams off raise :class:`TableLayoutMismatch`, naming each
        difference. (TTL left disabled, as by an interrupted earlier call, is enabled.)
        """
        for table_name in (self.table_name, self.order_table_name):
            with contextlib.suppress(_TableExists):
                self._call(
                    "create_table",
                    TableName=table_name,
                    KeySchema=[
                        {"AttributeName": name, "KeyType": key_type}
                        for name, key_type in TABLE_KEY_SCHEMA
                    ],
                    AttributeDefinitions=[
                        {"AttributeName": name, "AttributeType": "S"}
                        for name, _ in TABLE_KEY_SCHEMA
                    ],
                    BillingMode="PAY_PER_REQUEST",
                    StreamSpecification={"StreamEnabled": True, "StreamViewType": STREAM_VIEW},
                )
            self.client.get_waiter("table_exists").wait(
                TableName=table_name, WaiterConfig={"Delay": 1, "MaxAttempts": 60}
            )
            table = self._call("describe_table", TableName=table_name)["Table"]
            ttl_status = self._call("describe_time_to_live", TableName=table_name)
            ttl_description = ttl_status["TimeToLiveDescription"]
            differences = table_layout_differences(table, ttl_description)
            if differences:
                raise TableLayoutMismatch(table_name, differences)
            if ttl_description.get("TimeToLiveStatus") not in ("ENABLED", "ENABLING"):
                self._call(
                    "update_time_to_live",
                    TableName=table_name,
                    TimeToLiveSpecification={"Enabled": True, "AttributeName": TTL_ATTRIBUTE},
                )

    # -- internals -------------------------------------------------------------------

    def _call(self, method: str, **request: Any) -> Any:
        """One client call, its failures as enrollkit errors."""
        try:
            return getattr(self.client, method)(**request)
        except ClientError as error:
            raise _translate(error) from error
        except _CONNECTION_ERRORS as error:
            # The request may or may not have been applied: retrying is safe (the same
            # token, or the operations' own conditions), so the failure says "retry".
            raise TransientFailure(f"DynamoDB could not be reached: {error}") from error
        except BotoCoreError as error:
            raise _client_failure(error) from error


class _TableExists(PersistenceError):
    pass


# The layout both tables have: (attribute, key type), every key attribute a string.
TABLE_KEY_SCHEMA = ((PARTITION_KEY, "HASH"), (SORT_KEY, "RANGE"))
STREAM_VIEW = "NEW_AND_OLD_IMAGES"


def table_layout_differences(
    table: Mapping[str, Any], time_to_live: Mapping[str, Any]
) -> list[str]:
    """How a table (``DescribeTable``'s ``Table``, ``DescribeTimeToLive``'s description)
    differs from the layout enrollkit writes, one phrase per difference."""
    differences = []
    key_schema = tuple(
        sorted(
            ((key["AttributeName"], key["KeyType"]) for key in table["KeySchema"]),
            key=lambda key: key[1] != "HASH",
        )
    )
    types = {d["AttributeName"]: d["AttributeType"] for d in table.get("AttributeDefinitions", [])}
    if key_schema != TABLE_KEY_SCHEMA:
        differences.append(
            f"key schema is {describe_key_schema(table)}, not "
            + " / ".join(f"{name} (S)" for name, _ in TABLE_KEY_SCHEMA)
        )
    else:
        differences.extend(
            f"key attribute {name!r} is of type {types.get(name)}, not S"
            for name, _ in TABLE_KEY_SCHEMA
            if types.get(name) != "S"
        )
    ttl_status = time_to_live.get("TimeToLiveStatus", "DISABLED")
    ttl_attribute = time_to_live.get("AttributeName")
    if ttl_status in ("ENABLED", "ENABLING") and ttl_attribute != TTL_ATTRIBUTE:
        differences.append(f"TTL is on attribute {ttl_attribute!r}, not {TTL_ATTRIBUTE!r}")
    elif ttl_status == "DISABLING":
        differences.append(f"TTL is being disabled, not enabled on {TTL_ATTRIBUTE!r}")
    stream = table.get("StreamSpecification") or {}
    if not stream.get("StreamEnabled"):
        differences.append(f"streams are off, not {STREAM_VIEW}")
    elif stream.get("StreamViewType") != STREAM_VIEW:
        differences.append(f"streams carry {stream.get('StreamViewType')}, not {STREAM_VIEW}")
    return differences


def describe_key_schema(table: Mapping[str, Any]) -> str:
    """A table's key as 'id (S) / sk (S)': partition key, then sort key if any."""
    types = {d["AttributeName"]: d["AttributeType"] for d in table.get("AttributeDefinitions", [])}
    return " / ".join(
        f"{key['AttributeName']} ({types.get(key['AttributeName'], '?')})"
        for key in sorted(table["KeySchema"], key=lambda key: key["KeyType"] != "HASH")
    )


# Failures where the request may not have reached DynamoDB (or its answer was lost).
_CONNECTION_ERRORS = (HTTPClientError, BotoConnectionError)


def _client_failure(error: BotoCoreError) -> PersistenceError:
    if isinstance(error, NoCredentialsError):
        return PersistenceError(
            "no AWS credentials found (set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, "
            "or a profile; a local endpoint accepts any values)"
        )
    return PersistenceError(f"the DynamoDB client failed: {error}")


def _translate(error: ClientError) -> Exception:
    """A ClientError as the enrollkit error that says what happened."""
    code = error.response.get("Error", {}).get("Code", "")
    message = error.response.get("Error", {}).get("Message", str(error))
    if code == "TransactionCanceledException":
        raw_reasons: list[Mapping[str, Any]] = [
            dict(raw) for raw in error.response.get("CancellationReasons", [])
        ]
        reasons = [_reason(raw) for raw in raw_reasons]
        if not reasons:
            # No reasons says nothing about a collision: re-sending would only repeat it.
            return TransactionCanceled(
                f"the transaction was cancelled without reasons: {message}", reasons=()
            )
        codes = {reason.code for reason in reasons}
        if codes <= TRANSIENT_CANCELLATION_CODES and codes != {"None"}:
            return TransientFailure(f"the transaction collided with another: {message}")
        return TransactionCanceled(reasons=reasons)
    if code == "ResourceInUseException":
        return _TableExists(message)
    if code in TRANSIENT_ERROR_CODES:
        return TransientFailure(f"{code}: {message}")
    if code == "IdempotentParameterMismatchException":
        return TransactionError(
            "this client request token was used for another transaction "
            f"(DynamoDB: IdempotentParameterMismatch) {message}".rstrip()
        )
    if code == "ValidationException":
        return TransactionError(f"DynamoDB refused the request: {message}")
    if code == "ResourceNotFoundException":
        return PersistenceError(f"a table does not exist: {message}")
    return PersistenceError(f"{code}: {message}")


def _reason(raw: Mapping[str, Any]) -> CancellationReason:
    item = raw.get("Item")
    return CancellationReason(
        code=str(raw.get("Code") or "None"),
        message=raw.get("Message"),
        item=deserialize_item(item) if item else None,
    )


def _transact_item(operation: Operation) -> TransactWriteItemTypeDef:
    """One operation as a TransactWriteItems entry: values always as placeholders."""
    request: dict[str, Any] = {"TableName": operation.table_name}
    names: dict[str, str] = {}
    values: dict[str, Any] = {}
    if isinstance(operation, Put):
        request["Item"] = serialize_attributes(operation.item)  # sized by the builder
    else:
        request["Key"] = {
            name: serialize_value(value) for name, value in operation.key.as_key().items()
        }
    if isinstance(operation, Update):
        clauses = []
        if operation.set:
            assignments = []
            for index, (name, value) in enumerate(operation.set.items()):
                names[f"#u{index}"] = name
                values[f":u{index}"] = serialize_value(value)
                assignments.append(f"#u{index} = :u{index}")
            clauses.append("SET " + ", ".join(assignments))
        if operation.remove:
            for index, name in enumerate(operation.remove):
                names[f"#r{index}"] = name
            clauses.append("REMOVE " + ", ".join(f"#r{i}" for i in range(len(operation.remove))))
        request["UpdateExpression"] = " ".join(clauses)
    if operation.cond is not None:
        expression, cond_names, cond_values = _condition(operation.cond)
        request["ConditionExpression"] = expression
        names.update(cond_names)
        values.update(cond_values)
        request["ReturnValuesOnConditionCheckFailure"] = "ALL_OLD"
    if names:
        request["ExpressionAttributeNames"] = names
    if values:
        request["ExpressionAttributeValues"] = values
    kind = {Put: "Put", Update: "Update", Delete: "Delete", ConditionCheck: "ConditionCheck"}[
        type(operation)
    ]
    return {kind: request}  # type: ignore[misc]


def _condition(cond: ConditionBase) -> tuple[str, dict[str, str], dict[str, Any]]:
    built = ConditionExpressionBuilder().build_expression(cond)
    return (
        built.condition_expression,
        dict(built.attribute_name_placeholders),
        {
            placeholder: serialize_value(value)
            for placeholder, value in built.attribute_value_placeholders.items()
        },
    )
