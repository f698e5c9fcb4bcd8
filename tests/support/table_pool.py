"""Table pairs on the test servers (moto, DynamoDB Local), reused from test to test.

Creating enrollkit's two tables (seven global secondary indexes, TTL, streams) and deleting
them again cost more than most tests do. Worse, on DynamoDB Local every table with TTL on
holds one of its ten background threads for ten seconds at a time (its TTL job sleeps
between scans), so with more than a handful of such tables alive or freshly deleted, index
creation and TTL deletion wait minutes in its queue. So each test worker keeps one pair of
table names per (endpoint, index layout) and hands it out again, empty:

- a table holding at most one batch of items gets them deleted (BatchWriteItem), and a
  consistent Scan must then find it empty;
- a bigger one is deleted and made again under the same name, with the very calls
  ``create_tables()`` made the first time: cheaper than deleting hundreds of items through
  seven indexes, and DynamoDB Local's TTL job for that name carries on instead of a second
  one starting;
- on moto, a table that was written to is always made again: moto copies a table, with its
  whole stream history, for every item of every transaction, so a reused table would make
  each test slower than the one before;
- a pair whose layout may have changed while it was out (CreateTable, UpdateTable,
  DeleteTable or UpdateTimeToLive naming one of its tables, sent by any client made from
  boto3's default session, as DynamoDBPersistence's are) is deleted, never handed out again.

Every lease therefore starts from two empty tables with the layout it asked for, as freshly
created ones would. Tests about the tables themselves (their streams, indexes added later)
create their own with ``tests.conftest.fresh_dynamodb``, or by any other means: whatever
tables a test creates on the test servers are deleted when it ends (:meth:`TablePool.made`,
:meth:`TablePool.delete_made_since`), so that they do not pile up either.
"""

from __future__ import annotations

import contextlib
import copy
import itertools
import json
import uuid
from collections.abc import Iterable, Mapping, Set
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from enrollkit import DynamoDBPersistence
from enrollkit.layout.table import PARTITION_KEY, SORT_KEY
from enrollkit.persistence.indexes import TableIndexes

REGION = "us-east-1"
# DynamoDB's BatchWriteItem limit: a table holding more is made again instead of emptied.
BATCH = 25
# The calls that change a table itself rather than its items.
LAYOUT_CALLS = frozenset({"CreateTable", "DeleteTable", "UpdateTable", "UpdateTimeToLive"})
# The calls that change neither, besides Describe* and List* (any other call naming a table
# counts as a write to it).
READ_CALLS = frozenset({"GetItem", "BatchGetItem", "Query", "Scan", "TransactGetItems"})


@dataclass
class _Pair:
    endpoint_url: str
    indexes: TableIndexes | None
    table_name: str
    order_table_name: str
    # The layout calls create_tables() sent the first time (replayed to make a table again).
    layout_calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    @property
    def names(self) -> tuple[str, str]:
        return (self.table_name, self.order_table_name)


class TablePool:
    """One test worker's table pairs: leased to a test, given back empty."""

    def __init__(self) -> None:
        self._idle: dict[tuple[str, TableIndexes | None], list[_Pair]] = {}
        self._leased: dict[str, _Pair] = {}  # by table name, both tables of each pair
        self._changed: set[str] = set()  # leased tables a layout call named
        self._written: set[str] = set()  # leased tables a write call named
        self._servers: set[str] = set()  # the test servers' endpoints
        self._remade_when_written: set[str] = set()  # endpoints (moto's)
        self._made: list[tuple[str, str]] = []  # (endpoint, table) tests created, in order
        self._admins: dict[str, Any] = {}
        self._serial = itertools.count()
        self._tag = uuid.uuid4().hex[:8]

    def serve(self, endpoint_url: str, *, remake_written_tables: bool = False) -> None:
        """A test server's endpoint. With ``remake_written_tables`` (moto), a table written
        to is made again rather than emptied."""
        self._servers.add(endpoint_url)
        if remake_written_tables:
            self._remade_when_written.add(endpoint_url)

    def lease(self, endpoint_url: str, indexes: TableIndexes | None = None) -> DynamoDBPersistence:
        """Two empty tables with ``indexes`` (enrollkit's own when None), on a new client."""
        self._watch_default_session()
        idle = self._idle.setdefault((endpoint_url, indexes), [])
        pair = idle.pop() if idle else self._new_pair(endpoint_url, indexes)
        for name in pair.names:
            self._leased[name] = pair
        return DynamoDBPersistence(
            pair.table_name,
            pair.order_table_name,
            endpoint_url=pair.endpoint_url,
            region_name=REGION,
            indexes=pair.indexes,
        )

    def owns(self, table_name: str) -> bool:
        return table_name in self._leased or any(
            table_name in pair.names for pairs in self._idle.values() for pair in pairs
        )

    def leased(self) -> Set[str]:
        return set(self._leased)

    def give_back(self, table_name: str) -> None:
        """Empty the pair ``table_name`` belongs to and keep it for the next lease (or delete
        it, if its layout may have changed). Giving back an idle pair does nothing."""
        pair = self._leased.get(table_name)
        if pair is None:
            return
        for name in pair.names:
            del self._leased[name]
        changed = not self._changed.isdisjoint(pair.names)
        written = self._written.intersection(pair.names)
        self._changed.difference_update(pair.names)
        self._written.difference_update(pair.names)
        if changed or not self._empty(pair, written):
            self._delete(pair)
            return
        self._idle.setdefault((pair.endpoint_url, pair.indexes), []).append(pair)

    def give_back_all(self, keep: Set[str] = frozenset()) -> None:
        for table_name in sorted(set(self._leased) - set(keep)):
            self.give_back(table_name)

    def made(self) -> int:
        """A mark: how many tables tests have created on the test servers so far."""
        self._watch_default_session()
        return len(self._made)

    def delete_made_since(self, mark: int) -> None:
        """Delete the tables tests created on the test servers since ``mark``."""
        made, self._made[mark:] = self._made[mark:], []
        for endpoint_url, table_name in made:
            with contextlib.suppress(ClientError, BotoCoreError):  # deleted already, or gone
                self._admin(endpoint_url).delete_table(TableName=table_name)

    # -- watching the tests' calls -----------------------------------------------------------

    def _watch_default_session(self) -> None:
        """Every client made from boto3's default session reports its calls to
        :meth:`_note_call`; the pool's own admin clients use sessions of their own. (A test
        may replace the default session: the new one is watched too.)"""
        if boto3.DEFAULT_SESSION is None:
            boto3.setup_default_session()
        assert boto3.DEFAULT_SESSION is not None
        boto3.DEFAULT_SESSION.events.register(
            "before-parameter-build.dynamodb", self._note_call, unique_id=f"{__name__}.calls"
        )
        boto3.DEFAULT_SESSION.events.register(
            "before-call.dynamodb.CreateTable",
            self._note_creation,
            unique_id=f"{__name__}.creations",
        )

    def _note_creation(self, params: Mapping[str, Any], **_: object) -> None:
        url = urlsplit(str(params["url"]))
        endpoint_url = f"{url.scheme}://{url.netloc}"
        if endpoint_url in self._servers:
            self._made.append((endpoint_url, str(json.loads(params["body"])["TableName"])))

    def _note_call(self, model: Any, params: Mapping[str, Any], **_: object) -> None:
        if model.name in READ_CALLS or model.name.startswith(("Describe", "List")):
            return
        named = set(_tables_named(params))
        if model.name in LAYOUT_CALLS:
            self._changed.update(named.intersection(self._leased))
        # A write naming no table (PartiQL) may have written to any of them.
        self._written.update(named.intersection(self._leased) if named else self._leased)

    # -- making, emptying and deleting tables ------------------------------------------------

    def _new_pair(self, endpoint_url: str, indexes: TableIndexes | None) -> _Pair:
        serial = next(self._serial)
        pair = _Pair(
            endpoint_url,
            indexes,
            f"enrollments-{self._tag}-{serial}",
            f"orders-{self._tag}-{serial}",
        )
        admin = self._admin(endpoint_url)

        def record(model: Any, params: Mapping[str, Any], **_: object) -> None:
            if not model.name.startswith(("Describe", "List")):
                pair.layout_calls.append((model.name, copy.deepcopy(dict(params))))

        admin.meta.events.register("before-parameter-build.dynamodb", record)
        try:
            DynamoDBPersistence(*pair.names, client=admin, indexes=indexes).create_tables()
        finally:
            admin.meta.events.unregister("before-parameter-build.dynamodb", record)
        return pair

    def _empty(self, pair: _Pair, written: Set[str]) -> bool:
        """Empty both tables; False when that failed (the pair is then deleted)."""
        admin = self._admin(pair.endpoint_url)
        try:
            for name in pair.names:
                if pair.endpoint_url in self._remade_when_written:
                    emptied = name not in written and not self._keys(admin, name, limit=1)
                else:
                    emptied = self._delete_items(admin, name)
                if not emptied:
                    self._remake(pair, name)
        except (ClientError, BotoCoreError):
            return False
        return True

    def _delete_items(self, admin: Any, table_name: str) -> bool:
        """Delete a table's items if it holds at most one batch: True when a consistent
        Scan then finds it empty, False when it holds more (it is then made again)."""
        keys = self._keys(admin, table_name, limit=BATCH + 1)
        if not keys:
            return True
        if len(keys) > BATCH:
            return False
        requests = [{"DeleteRequest": {"Key": key}} for key in keys]
        while requests:
            answer = admin.batch_write_item(RequestItems={table_name: requests})
            requests = answer.get("UnprocessedItems", {}).get(table_name, [])
        return not self._keys(admin, table_name, limit=1)

    def _remake(self, pair: _Pair, table_name: str) -> None:
        """Delete a table and make it again, with the calls create_tables() made."""
        admin = self._admin(pair.endpoint_url)
        admin.delete_table(TableName=table_name)
        for operation, params in pair.layout_calls:
            if params.get("TableName") == table_name:
                getattr(admin, _snake(operation))(**params)
        table = admin.describe_table(TableName=table_name)["Table"]
        statuses = [table["TableStatus"]]
        statuses += [index["IndexStatus"] for index in table.get("GlobalSecondaryIndexes", [])]
        if any(status != "ACTIVE" for status in statuses):  # wait, as create_tables() does
            DynamoDBPersistence(*pair.names, client=admin, indexes=pair.indexes).create_tables()

    @staticmethod
    def _keys(admin: Any, table_name: str, *, limit: int) -> list[dict[str, Any]]:
        page = admin.scan(
            TableName=table_name,
            ConsistentRead=True,
            Limit=limit,
            ProjectionExpression="#pk, #sk",
            ExpressionAttributeNames={"#pk": PARTITION_KEY, "#sk": SORT_KEY},
        )
        return list(page.get("Items", []))

    def _delete(self, pair: _Pair) -> None:
        admin = self._admin(pair.endpoint_url)
        for name in pair.names:
            with contextlib.suppress(ClientError, BotoCoreError):
                admin.delete_table(TableName=name)

    def _admin(self, endpoint_url: str) -> Any:
        if endpoint_url not in self._admins:
            self._admins[endpoint_url] = boto3.session.Session().client(
                "dynamodb",
                endpoint_url=endpoint_url,
                region_name=REGION,
                aws_access_key_id="testing",  # local endpoints do not check them
                aws_secret_access_key="testing",
            )
        return self._admins[endpoint_url]


def _tables_named(params: Mapping[str, Any]) -> Iterable[str]:
    if "TableName" in params:
        yield str(params["TableName"])
    yield from params.get("RequestItems", {})
    for transact_item in params.get("TransactItems", []):
        for operation in transact_item.values():
            yield str(operation["TableName"])


def _snake(operation: str) -> str:
    """``UpdateTimeToLive`` -> ``update_time_to_live`` (boto3's method name)."""
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in operation).lstrip("_")


TABLES = TablePool()
