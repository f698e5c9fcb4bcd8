"""The persistence protocol, and the base class that holds the rules backends share.

A backend only talks to its store (``persistence/dynamodb.py``, ``persistence/memory.py``);
what a transaction is and how it is retried lives in the transaction builder.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import Any, Protocol, runtime_checkable

from enrollkit.errors import InvalidInput, shorten
from enrollkit.models import KeyPair
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


class BasePersistence(ABC):
    """Implements ``transact_writer`` over :meth:`execute_transaction`.

    Subclass it to write a backend: implement the four abstract methods; the
    builder's checks, error mapping and retries come with it.
    """

    def __init__(
        self,
        table_name: str = DEFAULT_TABLE_NAME,
        order_table_name: str = DEFAULT_ORDER_TABLE_NAME,
        *,
        retry_policy: RetryPolicy | None = None,
    ) -> None:
        # Checked here, so that every backend (the embedded one too) refuses what DynamoDB
        # would, before anything is written.
        self._table_name = validate_table_name(table_name)
        self._order_table_name = validate_table_name(order_table_name, field="order_table_name")
        self.retry_policy = retry_policy or RetryPolicy()

    @property
    def table_name(self) -> str:
        return self._table_name

    @property
    def order_table_name(self) -> str:
        return self._order_table_name

    @contextmanager
    def transact_writer(
        self, *, client_request_token: str | None = None
    ) -> Iterator[TransactionBuilder]:
        with open_transaction(
            self,
            default_table_name=self.table_name,
            client_request_token=client_request_token,
            retry_policy=self.retry_policy,
        ) as builder:
            yield builder

    def _table(self, table_name: str | None) -> str:
        return table_name or self.table_name

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
