"""The DynamoDB backend: only talks to DynamoDB (through a boto3 client).

boto3 is imported when this module is, and ``enrollkit`` imports this module only
when ``DynamoDBPersistence`` is first used, so ``import enrollkit`` stays light.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import boto3
from boto3.dynamodb.conditions import ConditionExpressionBuilder, Key
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
    shorten,
)
from enrollkit.layout.table import PARTITION_KEY, SORT_KEY, TTL_ATTRIBUTE
from enrollkit.models import KeyPair
from enrollkit.persistence.base import DEFAULT_ORDER_TABLE_NAME, DEFAULT_TABLE_NAME, BasePersistence
from enrollkit.persistence.expressions import add_condition
from enrollkit.persistence.indexes import (
    GlobalIndex,
    IndexPage,
    SortKeyRange,
    TableIndexes,
    check_index_query,
)
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
# The region a local endpoint gets when none is configured (it needs one to sign with).
LOCAL_REGION = "us-east-1"
# Credentials for an endpoint that is not AWS's (DynamoDB Local, moto) when none are
# configured: requests are signed with them, and such endpoints do not check them.
LOCAL_CREDENTIALS = "local"
# HTTP statuses of a gateway or proxy that may answer differently in a moment.
_TRANSIENT_HTTP_STATUSES = frozenset({500, 502, 503, 504})

logger = logging.getLogger(__name__)


class RegionMissing(PersistenceError):
    """No region given or configured, and no endpoint URL: boto3 cannot tell where AWS is."""


def _endpoint_in_effect(endpoint_url: str | None) -> str | None:
    """The endpoint boto3 will call: the argument, else the one the environment sets."""
    return (
        endpoint_url
        or os.environ.get("AWS_ENDPOINT_URL_DYNAMODB")
        or os.environ.get("AWS_ENDPOINT_URL")
    )


def _is_aws(endpoint_url: str) -> bool:
    host = (urlsplit(endpoint_url).hostname or "").lower()
    return host.endswith((".amazonaws.com", ".amazonaws.com.cn", ".api.aws"))


def has_configured_credentials() -> bool:
    """Credentials from the environment, a profile, the shared files, or a container or
    web-identity role, found without asking any network service (the instance metadata
    service is never probed here)."""
    names = (
        "AWS_ACCESS_KEY_ID",
        "AWS_PROFILE",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
    )
    if any(os.environ.get(name) for name in names):
        return True
    files = [
        os.environ.get("AWS_SHARED_CREDENTIALS_FILE", "~/.aws/credentials"),
        os.environ.get("AWS_CONFIG_FILE", "~/.aws/config"),
    ]
    return any(Path(name).expanduser().is_file() for name in files)


def dynamodb_client(
    *,
    endpoint_url: str | None = None,
    region_name: str | None = None,
    config: Config = DEFAULT_CLIENT_CONFIG,
) -> DynamoDBClient:
    """The boto3 DynamoDB client of ``DynamoDBPersistence`` and of the command line: one
    rule for both.

    - Endpoint: ``endpoint_url``, else ``AWS_ENDPOINT_URL_DYNAMODB`` / ``AWS_ENDPOINT_URL``,
      else AWS.
    - Region: ``region_name``, else the environment's (``AWS_REGION``,
      ``AWS_DEFAULT_REGION``, the profile); for an endpoint, ``us-east-1`` if none is set.
    - Credentials: boto3's chain (environment, profile, shared files, container or
      instance role). For an endpoint that is not AWS's (DynamoDB Local, moto) with no
      credentials configured, throwaway ones, which such endpoints do not check.
    """
    endpoint = _endpoint_in_effect(endpoint_url)
    local = endpoint is not None and not _is_aws(endpoint) and not has_configured_credentials()
    region = region_name or boto3.session.Session().region_name
    if region is None and endpoint is not None:
        region = LOCAL_REGION
    try:
        return boto3.client(
            "dynamodb",
            endpoint_url=endpoint_url,
            region_name=region,
            config=config,
            aws_access_key_id=LOCAL_CREDENTIALS if local else None,
            aws_secret_access_key=LOCAL_CREDENTIALS if local else None,
        )
    except NoRegionError:
        raise RegionMissing(
            "no AWS region: pass region_name or set AWS_REGION (or give an endpoint_url)"
        ) from None
    except ValueError as error:  # a malformed endpoint URL
        raise PersistenceError(f"cannot create a DynamoDB client: {error}") from None


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
        indexes: TableIndexes | None = None,
    ) -> None:
        super().__init__(table_name, order_table_name, retry_policy=retry_policy, indexes=indexes)
        if client is None:
            client = dynamodb_client(endpoint_url=endpoint_url, region_name=region_name)
        self.client = client

    # -- transactions -----------------------------------------------------------

    def execute_transaction(
        self, operations: Sequence[Operation], *, client_request_token: str
    ) -> None:
        self._call(
            "transact_write_items",
            TransactItems=transact_items(operations),
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

    def query_index(
        self,
        index_name: str,
        partition_value: str,
        *,
        sort_range: SortKeyRange | None = None,
        descending: bool = False,
        limit: int | None = None,
        start_after: Mapping[str, Any] | None = None,
        table_name: str | None = None,
    ) -> IndexPage:
        check_index_query(limit)
        table = self._table(table_name)
        spec = self.index_spec(index_name, table)
        condition: ConditionBase = Key(spec.partition_key).eq(partition_value)
        on_sort_key = _sort_key_condition(Key(spec.sort_key), sort_range or SortKeyRange())
        if on_sort_key is not None:
            condition = condition & on_sort_key
        built = ConditionExpressionBuilder().build_expression(condition, is_key_condition=True)
        request: dict[str, Any] = {
            "TableName": table,
            "IndexName": index_name,
            "KeyConditionExpression": built.condition_expression,
            "ExpressionAttributeNames": dict(built.attribute_name_placeholders),
            "ExpressionAttributeValues": {
                placeholder: serialize_value(value)
                for placeholder, value in built.attribute_value_placeholders.items()
            },
            "ScanIndexForward": not descending,
        }
        if limit is not None:
            request["Limit"] = limit
        if start_after is not None:
            request["ExclusiveStartKey"] = serialize_item(start_after)
        response = self._call("query", **request)
        last_key = response.get("LastEvaluatedKey")
        return IndexPage(
            items=[deserialize_item(item) for item in response.get("Items", [])],
            last_key=deserialize_item(last_key) if last_key else None,
        )

    def scan_page(
        self,
        *,
        limit: int,
        start_after: Mapping[str, Any] | None = None,
        table_name: str | None = None,
    ) -> IndexPage:
        check_index_query(limit)
        request: dict[str, Any] = {
            "TableName": self._table(table_name),
            "Limit": limit,
            "ConsistentRead": True,
        }
        if start_after is not None:
            request["ExclusiveStartKey"] = serialize_item(start_after)
        response = self._call("scan", **request)
        last_key = response.get("LastEvaluatedKey")
        return IndexPage(
            items=[deserialize_item(item) for item in response.get("Items", [])],
            last_key=deserialize_item(last_key) if last_key else None,
        )

    def create_tables(self) -> None:
        """Create both tables if missing: key ``id``/``sk``, TTL on ``ttl``, streams
        with new and old images, on-demand billing. Safe to call again.

        A table that exists already is checked: another key schema, TTL on another
        attribute or streams off raise :class:`TableLayoutMismatch`, naming each
        difference. (TTL left disabled, as by an interrupted earlier call, is enabled.)
        """
        for table_name in (self.table_name, self.order_table_name):
            indexes = self.indexes_of(table_name)
            with contextlib.suppress(_TableExists):
                self._call(
                    "create_table",
                    TableName=table_name,
                    KeySchema=[
                        {"AttributeName": name, "KeyType": key_type}
                        for name, key_type in TABLE_KEY_SCHEMA
                    ],
                    AttributeDefinitions=attribute_definitions(indexes),
                    BillingMode="PAY_PER_REQUEST",
                    StreamSpecification={"StreamEnabled": True, "StreamViewType": STREAM_VIEW},
                    **(
                        {"GlobalSecondaryIndexes": [index_definition(i) for i in indexes]}
                        if indexes
                        else {}
                    ),
                )
            table = self._wait_until_active(table_name)
            ttl_status = self._call("describe_time_to_live", TableName=table_name)
            ttl_description = ttl_status["TimeToLiveDescription"]
            differences = table_layout_differences(table, ttl_description, indexes)
            if differences:
                raise TableLayoutMismatch(table_name, differences)
            self._add_missing_indexes(table, indexes)
            if ttl_description.get("TimeToLiveStatus") not in ("ENABLED", "ENABLING"):
                self._call(
                    "update_time_to_live",
                    TableName=table_name,
                    TimeToLiveSpecification={"Enabled": True, "AttributeName": TTL_ATTRIBUTE},
                )

    def _wait_until_active(self, table_name: str) -> Mapping[str, Any]:
        """The table's description once it and its indexes are ACTIVE."""
        self.client.get_waiter("table_exists").wait(
            TableName=table_name, WaiterConfig={"Delay": 1, "MaxAttempts": 60}
        )
        for _ in range(600):
            table: Mapping[str, Any] = self._call("describe_table", TableName=table_name)["Table"]
            statuses = [
                index.get("IndexStatus", "ACTIVE")
                for index in table.get("GlobalSecondaryIndexes", [])
            ]
            if table.get("TableStatus") == "ACTIVE" and all(s == "ACTIVE" for s in statuses):
                return table
            time.sleep(1)
        raise PersistenceError(f"table {table_name!r} did not become ACTIVE within 10 minutes")

    def _add_missing_indexes(
        self, table: Mapping[str, Any], indexes: Sequence[GlobalIndex]
    ) -> None:
        """An existing table (made before an index was added to the layout) gets the indexes
        it lacks, one at a time as DynamoDB allows; DynamoDB fills them from the items."""
        table_name = str(table["TableName"])
        present = {index["IndexName"] for index in table.get("GlobalSecondaryIndexes", [])}
        for spec in indexes:
            if spec.name in present:
                continue
            logger.info("adding index %s to table %s", spec.name, table_name)
            self._call(
                "update_table",
                TableName=table_name,
                AttributeDefinitions=attribute_definitions([spec]),
                GlobalSecondaryIndexUpdates=[{"Create": index_definition(spec)}],
            )
            self._wait_until_active(table_name)

    def describe_tables(self) -> list[TableDescription]:
        """How the enrollments and orders tables are set up, as DynamoDB describes them
        (for ``enrollkit create-tables``)."""
        described = []
        for table_name in (self.table_name, self.order_table_name):
            table = self._call("describe_table", TableName=table_name)["Table"]
            ttl = self._call("describe_time_to_live", TableName=table_name)["TimeToLiveDescription"]
            stream = table.get("StreamSpecification", {})
            described.append(
                TableDescription(
                    name=table_name,
                    status=str(table.get("TableStatus", "?")),
                    key_schema=describe_key_schema(table),
                    ttl=f"{ttl.get('AttributeName', TTL_ATTRIBUTE)} "
                    f"{ttl.get('TimeToLiveStatus', '?')}",
                    stream=str(stream.get("StreamViewType", "off"))
                    if stream.get("StreamEnabled")
                    else "off",
                    indexes=tuple(
                        sorted(
                            index["IndexName"] for index in table.get("GlobalSecondaryIndexes", [])
                        )
                    ),
                )
            )
        return described

    def missing_tables(self) -> list[str]:
        """Of the enrollments and orders tables, those that do not exist (one DescribeTable
        each). Any other failure raises, as the other calls do."""
        return [
            table
            for table in (self.table_name, self.order_table_name)
            if not self._table_exists(table)
        ]

    def _table_exists(self, table_name: str) -> bool:
        try:
            self._call("describe_table", TableName=table_name)
        except PersistenceError as error:
            cause = error.__cause__
            if isinstance(cause, ClientError) and (
                cause.response.get("Error", {}).get("Code") == "ResourceNotFoundException"
            ):
                return False
            raise
        return True

    # -- internals -------------------------------------------------------------------

    def _call(self, method: str, **request: Any) -> Any:
        """One client call, its failures as enrollkit errors that say what was reached and
        what came back, in one line."""
        if logger.isEnabledFor(logging.DEBUG):  # the table names only when they are logged
            logger.debug("DynamoDB %s on %s", method, ", ".join(_tables_of(request)) or "-")
        try:
            response = getattr(self.client, method)(**request)
        except ClientError as error:
            raise self._client_error(error, _tables_of(request)) from error
        except _CONNECTION_ERRORS as error:
            # The request may or may not have been applied: retrying is safe (the same
            # token, or the operations' own conditions), so the failure says "retry".
            raise TransientFailure(
                f"DynamoDB could not be reached at {self._endpoint}: {error}"
            ) from error
        except BotoCoreError as error:
            raise _client_failure(error) from error
        content_type = _header(response, "content-type")
        if "html" in content_type:  # botocore parses an HTML page into an empty answer
            raise PersistenceError(
                f"not a DynamoDB endpoint: {self._endpoint} answered HTTP "
                f"{_status(response)} with an HTML page ({content_type})"
            )
        return response

    @property
    def _endpoint(self) -> str:
        meta = getattr(self.client, "meta", None)
        return str(getattr(meta, "endpoint_url", None) or "AWS")

    def _client_error(self, error: ClientError, tables: Sequence[str]) -> Exception:
        details = error.response.get("Error", {})
        code, message = str(details.get("Code", "")), str(details.get("Message", ""))
        status = _status(error.response)
        if code.isdigit() or message.lstrip().startswith("<"):
            # Not DynamoDB's JSON: a proxy, a web server, a wrong port answered.
            kind = TransientFailure if status in _TRANSIENT_HTTP_STATUSES else PersistenceError
            return kind(
                f"not a DynamoDB endpoint: {self._endpoint} answered HTTP {status} "
                f"with {describe_body(message)}"
            )
        if code == "ResourceNotFoundException":
            missing = self._missing_tables(tables)
            names = " and ".join(repr(name) for name in missing) or "a table"
            verb = "do" if len(missing) > 1 else "does"
            return PersistenceError(
                f"table {names} {verb} not exist at {self._endpoint} "
                "(create it with DynamoDBPersistence.create_tables() or "
                "`enrollkit create-tables`)"
            )
        return _translate(error)

    def _missing_tables(self, tables: Sequence[str]) -> list[str]:
        """Of the tables a failed request named, those that do not exist (asked only when
        there are several, after DynamoDB said one is missing); all of them when asking
        fails too."""
        if len(tables) <= 1:
            return list(tables)
        try:
            missing = [table for table in tables if not self._table_exists(table)]
        except PersistenceError:
            return list(tables)
        return missing or list(tables)


_INDEXES_FIELD = "GlobalSecondaryIndexes"


class _TableExists(PersistenceError):
    pass


@dataclass(frozen=True)
class TableDescription:
    """One table as DynamoDB describes it, in words."""

    name: str
    status: str
    key_schema: str
    ttl: str
    stream: str
    indexes: tuple[str, ...]


# The layout both tables have: (attribute, key type), every key attribute a string.
TABLE_KEY_SCHEMA = ((PARTITION_KEY, "HASH"), (SORT_KEY, "RANGE"))
STREAM_VIEW = "NEW_AND_OLD_IMAGES"


def attribute_definitions(indexes: Sequence[GlobalIndex]) -> list[dict[str, str]]:
    """Every key attribute of the table and of ``indexes``: all strings."""
    names = [name for name, _ in TABLE_KEY_SCHEMA]
    for spec in indexes:
        names.extend(n for n in (spec.partition_key, spec.sort_key) if n not in names)
    return [{"AttributeName": name, "AttributeType": "S"} for name in names]


def index_definition(spec: GlobalIndex) -> dict[str, Any]:
    """One entry of CreateTable's ``GlobalSecondaryIndexes`` (on-demand: no throughput)."""
    projection: dict[str, Any] = (
        {"ProjectionType": "ALL"}
        if spec.projection is None
        else {"ProjectionType": "INCLUDE", "NonKeyAttributes": list(spec.projection)}
    )
    return {
        "IndexName": spec.name,
        "KeySchema": [
            {"AttributeName": spec.partition_key, "KeyType": "HASH"},
            {"AttributeName": spec.sort_key, "KeyType": "RANGE"},
        ],
        "Projection": projection,
    }


def table_layout_differences(
    table: Mapping[str, Any],
    time_to_live: Mapping[str, Any],
    indexes: Sequence[GlobalIndex] = (),
) -> list[str]:
    """How a table (``DescribeTable``'s ``Table``, ``DescribeTimeToLive``'s description)
    differs from the layout enrollkit writes, one phrase per difference. A missing index
    is no difference: ``create_tables()`` adds it."""
    differences = []
    existing = {index["IndexName"]: index for index in table.get("GlobalSecondaryIndexes", [])}
    for spec in indexes:
        found = existing.get(spec.name)
        if found is None:
            continue
        wanted = index_definition(spec)
        if [dict(k) for k in found["KeySchema"]] != wanted["KeySchema"]:
            differences.append(f"index {spec.name!r} has another key schema")
        elif found.get("Projection", {}).get("ProjectionType") != wanted["Projection"][
            "ProjectionType"
        ] or sorted(found.get("Projection", {}).get("NonKeyAttributes", [])) != sorted(
            wanted["Projection"].get("NonKeyAttributes", [])
        ):
            differences.append(f"index {spec.name!r} projects other attributes")
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
_TITLE = re.compile(r"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)


def _tables_of(request: Mapping[str, Any]) -> list[str]:
    if "TableName" in request:
        return [str(request["TableName"])]
    names: dict[str, None] = {}  # in order, once each
    for entry in request.get("TransactItems", []):
        for operation in entry.values():
            names[str(operation["TableName"])] = None
    return list(names)


def _status(response: Mapping[str, Any]) -> object:
    return response.get("ResponseMetadata", {}).get("HTTPStatusCode", "?")


def _header(response: Mapping[str, Any], name: str) -> str:
    headers = response.get("ResponseMetadata", {}).get("HTTPHeaders", {}) or {}
    return str(headers.get(name, "")).lower()


def describe_body(body: str) -> str:
    """What came back, in a few words: an HTML page's title, or a short prefix."""
    text = body.strip()
    if not text:
        return "an empty body"
    if text.startswith("<"):
        title = _TITLE.search(text)
        if title and title.group(1).strip():
            return f"an HTML page titled {shorten(' '.join(title.group(1).split()))}"
        return f"an HTML page ({shorten(text)})"
    return shorten(text)


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


_REQUEST_KINDS: dict[type[Any], str] = {
    Put: "Put",
    Update: "Update",
    Delete: "Delete",
    ConditionCheck: "ConditionCheck",
}


def transact_items(operations: Sequence[Operation]) -> list[TransactWriteItemTypeDef]:
    """The ``TransactItems`` of the TransactWriteItems request that carries ``operations``."""
    return [_transact_item(operation) for operation in operations]


def _transact_item(operation: Operation) -> TransactWriteItemTypeDef:
    """One operation as a TransactWriteItems entry: values always as placeholders."""
    request: dict[str, Any] = {"TableName": operation.table_name}
    if isinstance(operation, Put):
        request["Item"] = serialize_attributes(operation.item)  # sized by the builder
        if operation.cond is None:
            return {"Put": request}  # type: ignore[typeddict-item]  # (most puts: no expressions)
    else:
        request["Key"] = _wire_key(operation.key)
    names: dict[str, str] = {}
    values: dict[str, Any] = {}
    if isinstance(operation, Update):
        request["UpdateExpression"] = _update_expression(operation, names, values)
    if operation.cond is not None:
        shape = operation.condition_shape  # (walked once, by the builder or here)
        shape.check()  # (an operation built by hand: refused as the builder refuses it)
        request["ConditionExpression"] = add_condition(operation.cond, names, values, shape)
        request["ReturnValuesOnConditionCheckFailure"] = "ALL_OLD"
    if names:
        request["ExpressionAttributeNames"] = names
    if values:
        request["ExpressionAttributeValues"] = values
    return {_REQUEST_KINDS[type(operation)]: request}  # type: ignore[misc]


def _wire_key(key: KeyPair) -> dict[str, Any]:
    pk, sk = key.pk, key.sk
    if type(pk) is str and type(sk) is str:
        return {PARTITION_KEY: {"S": pk}, SORT_KEY: {"S": sk}}
    return {name: serialize_value(value) for name, value in key.as_key().items()}


def _update_expression(update: Update, names: dict[str, str], values: dict[str, Any]) -> str:
    """``update``'s UpdateExpression; its placeholders are added to ``names`` and ``values``."""
    clauses = []
    if update.set:
        assignments = []
        for index, (name, value) in enumerate(update.set.items()):
            names[f"#u{index}"] = name
            values[f":u{index}"] = serialize_value(value)
            assignments.append(f"#u{index} = :u{index}")
        clauses.append("SET " + ", ".join(assignments))
    if update.remove:
        for index, name in enumerate(update.remove):
            names[f"#r{index}"] = name
        clauses.append("REMOVE " + ", ".join(f"#r{i}" for i in range(len(update.remove))))
    return " ".join(clauses)


def _sort_key_condition(sort_key: Key, sort_range: SortKeyRange) -> ConditionBase | None:
    """The key condition on the sort key; ``None`` for an open range (every item)."""
    if sort_range.begins_with is not None:
        return sort_key.begins_with(sort_range.begins_with)
    if sort_range.at_least is not None and sort_range.at_most is not None:
        return sort_key.between(sort_range.at_least, sort_range.at_most)
    if sort_range.at_least is not None:
        return sort_key.gte(sort_range.at_least)
    if sort_range.at_most is not None:
        return sort_key.lte(sort_range.at_most)
    return None
