"""The persistence protocol, and the base class that holds the rules backends share.

A backend only talks to its store (``persistence/dynamodb.py``, ``persistence/memory.py``);
what a transaction is and how it is retried lives in the transaction builder.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Any, Protocol, runtime_checkable

from enrollkit.errors import InvalidInput, PersistenceError, shorten
from enrollkit.layout.indexes import DEFAULT_INDEXES
from enrollkit.models import KeyPair
from enrollkit.persistence.indexes import GlobalIndex, IndexPage, SortKeyRange, TableIndexes
from enrollkit.transaction.builder import TransactionBuilder, open_transaction
from enrollkit.transaction.operations import Operation
from enrollkit.transaction.retry import RetryPolicy

DEFAULT_TABLE_NAME = "enrollments"
DEFAULT_ORDER_TABLE_NAME = "orders"

# DynamoDB's rule for table names: 3 to 255 of these characters.
_TABLE_NAME = re.compile(r"[A-Za-z0-9_.-]{3,255}")


def validate_table_name(name: object, *, field: str = "table_name") -> str:
    """``name`` if DynamoDB accepts it as a table name, else :class:`InvalidInput`."""
    if not isinstance(name, str):
        raise InvalidInput(f"{field} must be a string, not {type(name).__name__}", field=field)
    if not _TABLE_NAME.fullmatch(name):
        raise InvalidInput(
            f"{field}: a DynamoDB table name has 3 to 255 characters among a-z, A-Z, 0-9, "
            f"'_', '-' and '.' (got {shorten(name)})",
            field=field,
        )
    return name


@runtime_checkable
class PersistenceLayer(Protocol):
    """What enroll(), cancel() and the seat functions need from a store."""

    @property
    def table_name(self) -> str: ...

    @property
    def order_table_name(self) -> str: ...

    def transact_writer(
        self, *, client_request_token: str | None = None
    ) -> AbstractContextManager[TransactionBuilder]: ...

    def get_item(self, key: KeyPair, *, table_name: str | None = None) -> dict[str, Any] | None: ...

    def query(
        self, pk: str, *, sk_prefix: str = "", table_name: str | None = None
    ) -> list[dict[str, Any]]: ...

    def put_item(self, item: Mapping[str, Any], *, table_name: str | None = None) -> None: ...

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
    ) -> IndexPage: ...

    def scan_page(
        self,
        *,
        limit: int,
        start_after: Mapping[str, Any] | None = None,
        table_name: str | None = None,
    ) -> IndexPage: ...


class BasePersistence(ABC):
    """Implements ``transact_writer`` over :meth:`execute_transaction`.

    Subclass it to write a backend: implement the abstract methods; the
    builder's checks, error mapping and retries come with it.
    """

    def __init__(
        self,
        table_name: str = DEFAULT_TABLE_NAME,
        order_table_name: str = DEFAULT_ORDER_TABLE_NAME,
        *,
        retry_policy: RetryPolicy | None = None,
        indexes: TableIndexes | None = None,
    ) -> None:
        # Checked here, so that every backend (the embedded one too) refuses what DynamoDB
        # would, before anything is written.
        self._table_name = validate_table_name(table_name)
        self._order_table_name = validate_table_name(order_table_name, field="order_table_name")
        self.retry_policy = retry_policy or RetryPolicy()
        # The layout's indexes unless told otherwise (a service may add its own).
        self.indexes = indexes if indexes is not None else DEFAULT_INDEXES

    @property
    def table_name(self) -> str:
        return self._table_name

    @property
    def order_table_name(self) -> str:
        return self._order_table_name

    def transact_writer(self, *, client_request_token: str | None = None) -> TransactionBuilder:
        """A transaction builder for a ``with`` block: it commits when the block ends."""
        return open_transaction(
            self,
            default_table_name=self.table_name,
            client_request_token=client_request_token,
            retry_policy=self.retry_policy,
        )

    def _table(self, table_name: str | None) -> str:
        return table_name or self.table_name

    def indexes_of(self, table_name: str | None = None) -> tuple[GlobalIndex, ...]:
        """The global secondary indexes of one of the two tables."""
        name = self._table(table_name)
        if name == self.order_table_name:
            return self.indexes.orders
        return self.indexes.enrollments if name == self.table_name else ()

    def index_spec(self, index_name: str, table_name: str | None = None) -> GlobalIndex:
        """The index ``index_name`` of a table, or :class:`PersistenceError`."""
        for spec in self.indexes_of(table_name):
            if spec.name == index_name:
                return spec
        raise PersistenceError(f"table {self._table(table_name)!r} has no index {index_name!r}")

    @abstractmethod
    def execute_transaction(
        self, operations: Sequence[Operation], *, client_request_token: str
    ) -> None:
        """Apply every operation atomically, or none (see ``TransactionExecutor``)."""

    @abstractmethod
    def get_item(self, key: KeyPair, *, table_name: str | None = None) -> dict[str, Any] | None:
        """The item with ``key`` (strongly consistent), or ``None``."""

    @abstractmethod
    def query(
        self, pk: str, *, sk_prefix: str = "", table_name: str | None = None
    ) -> list[dict[str, Any]]:
        """Every item of partition ``pk`` whose sort key starts with ``sk_prefix``, in sort-key
        order (strongly consistent)."""

    @abstractmethod
    def put_item(self, item: Mapping[str, Any], *, table_name: str | None = None) -> None:
        """Write one item unconditionally: for seeding and tools."""

    @abstractmethod
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
        """One page of a Query on global secondary index ``index_name`` of a table: the items
        whose index partition key is ``partition_value`` (and whose index sort key is in
        ``sort_range``), ordered by index sort key, at most ``limit``, starting after the
        ``last_key`` of a previous page. Eventually consistent on DynamoDB; semantics in
        :mod:`enrollkit.persistence.indexes`."""

    @abstractmethod
    def scan_page(
        self,
        *,
        limit: int,
        start_after: Mapping[str, Any] | None = None,
        table_name: str | None = None,
    ) -> IndexPage:
        """One page of a Scan of a whole table: at most ``limit`` items, starting after the
        ``last_key`` of a previous page; ``last_key`` is ``None`` once the table is read
        to its end. Strongly consistent. For maintenance tools (``enrollkit backfill``):
        no read of enrollkit's own scans."""
