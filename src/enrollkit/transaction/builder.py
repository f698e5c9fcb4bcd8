"""The transaction builder: records operations, checks them as DynamoDB would,
and commits them in one atomic write through a backend's executor.

It never regroups operations: the reasons of a cancelled transaction come back in
the order the operations were added, so the error names the operation that failed.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol

from enrollkit.errors import (
    CancellationReason,
    TransactionCanceled,
    TransactionError,
    TransientFailure,
)
from enrollkit.layout.table import PARTITION_KEY, SORT_KEY
from enrollkit.models import KeyPair
from enrollkit.transaction.limits import (
    MAX_ITEM_BYTES,
    MAX_PARTITION_KEY_BYTES,
    MAX_SORT_KEY_BYTES,
    MAX_TRANSACTION_BYTES,
    MAX_TRANSACTION_OPERATIONS,
    names_size,
    sized_snapshot,
)
from enrollkit.transaction.operations import (
    BuiltOperations,
    ConditionCheck,
    Delete,
    Operation,
    Put,
    Update,
)
from enrollkit.transaction.retry import RetryPolicy

if TYPE_CHECKING:
    from boto3.dynamodb.conditions import ConditionBase

CONDITIONAL_CHECK_FAILED = "ConditionalCheckFailed"
MAX_CLIENT_REQUEST_TOKEN_LENGTH = 36

# One DEBUG line per transaction, one WARNING per retry. Never an item's content: items
# carry names and emails. The token ties a transaction's lines together.
logger = logging.getLogger(__name__)


class TransactionExecutor(Protocol):
    """What a backend provides to the builder: apply all operations atomically, or none.

    On a failed condition it raises :class:`TransactionCanceled` with one reason per
    operation, in order; on a failure worth retrying, :class:`TransientFailure`.
    """

    def execute_transaction(
        self, operations: Sequence[Operation], *, client_request_token: str
    ) -> None: ...


class TransactionBuilder:
    """Collects the operations of one transaction. Use it through ``transact_writer()``, as
    the context manager of a ``with`` block: it commits when the block ends.

    A put's item and an update's assigned values are taken when the operation is added,
    at every depth: what the builder checked is what it sends, whatever the caller changes
    in its own objects before the block ends."""

    def __init__(
        self,
        executor: TransactionExecutor,
        *,
        default_table_name: str,
        client_request_token: str | None = None,
        retry_policy: RetryPolicy | None = None,
    ) -> None:
        self._executor = executor
        self._default_table_name = default_table_name
        # One token for every attempt: DynamoDB then applies a re-sent commit once.
        if client_request_token is not None and not (
            isinstance(client_request_token, str)
            and 1 <= len(client_request_token) <= MAX_CLIENT_REQUEST_TOKEN_LENGTH
        ):
            raise TransactionError(
                f"a client request token is a string of 1 to {MAX_CLIENT_REQUEST_TOKEN_LENGTH} "
                "characters (DynamoDB refuses others)"
            )
        # 128 random bits as 32 hex digits: a UUID4's randomness, without its slow text form.
        self.client_request_token = client_request_token or os.urandom(16).hex()
        self._retry_policy = retry_policy or RetryPolicy()
        self._operations: list[Operation] = []
        self._targets: set[tuple[str, str, str]] = set()
        self._request_size = 0  # the operations' sizes, for the 4 MB request limit
        self._plain: list[bool] = []  # per operation: its values are plain (BuiltOperations)
        self._closed = False

    @property
    def operations(self) -> tuple[Operation, ...]:
        """The operations added so far, each with a copy of its values: the builder's own
        snapshot goes to the backend, which may keep it."""
        return tuple(map(_with_copied_values, self._operations))

    # -- adding operations -------------------------------------------------

    def put(
        self,
        *,
        item: Mapping[str, Any],
        cond: ConditionBase | None = None,
        exc_cls: type[Exception] | None = None,
        table_name: str | None = None,
    ) -> None:
        pk, sk = _key_of(item)  # (_add refuses a finished builder)
        # Taken now, at every depth: what is sized is what is sent, whatever the caller
        # changes in its item before the block ends.
        snapshot, size, plain = sized_snapshot(item)
        if size > MAX_ITEM_BYTES:
            raise TransactionError(
                f"item {pk!r}/{sk!r} is {size:,} bytes; DynamoDB's limit is "
                f"{MAX_ITEM_BYTES:,} bytes"
            )
        # (The defaults without a call: enroll() puts nine items, most with neither.)
        put = Put(
            table_name or self._default_table_name,
            snapshot,
            cond,
            TransactionCanceled if exc_cls is None else self._exc(exc_cls),
        )
        self._add(put, pk, sk, size, plain)

    def update(
        self,
        *,
        key: KeyPair,
        set: Mapping[str, Any] | None = None,
        remove: Iterable[str] = (),
        cond: ConditionBase | None = None,
        exc_cls: type[Exception] | None = None,
        table_name: str | None = None,
    ) -> None:
        # The assigned values are taken now, at every depth, as a put's item is; sizing
        # them first refuses names DynamoDB refuses, before they are compared.
        assignments, assigned_size, plain = sized_snapshot(set or {})
        removals = tuple(remove)
        if not assignments and not removals:
            raise TransactionError("an update must set or remove at least one attribute")
        size = _key_size(key) + assigned_size + names_size(removals)
        touched = [*assignments, *removals]
        if {PARTITION_KEY, SORT_KEY} & {*touched}:
            raise TransactionError("an update cannot change the key attributes")
        if len(touched) != len({*touched}):
            raise TransactionError("an update names the same attribute twice")
        self._add(
            Update(self._table(table_name), key, assignments, removals, cond, self._exc(exc_cls)),
            key.pk,
            key.sk,
            size,
            plain,
        )

    def delete(
        self,
        *,
        key: KeyPair,
        cond: ConditionBase | None = None,
        exc_cls: type[Exception] | None = None,
        table_name: str | None = None,
    ) -> None:
        self._add(
            Delete(self._table(table_name), key, cond, self._exc(exc_cls)),
            key.pk,
            key.sk,
            _key_size(key),
        )

    def condition(
        self,
        *,
        key: KeyPair,
        cond: ConditionBase,
        exc_cls: type[Exception] | None = None,
        table_name: str | None = None,
    ) -> None:
        if cond is None:
            raise TransactionError("a condition check needs a condition")
        self._add(
            ConditionCheck(self._table(table_name), key, cond, self._exc(exc_cls)),
            key.pk,
            key.sk,
            _key_size(key),
        )

    # -- the ``with`` block ----------------------------------------------------

    def __enter__(self) -> TransactionBuilder:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Commit when the block ends normally, unless it committed (or discarded) itself;
        send nothing when it raises (the exception goes on)."""
        if exc_type is not None:
            self.discard()
        elif not self._closed:
            self.commit()

    # -- committing --------------------------------------------------------

    def commit(self) -> None:
        """Send every operation as one transaction. Called when the ``with`` block ends;
        called inside the block, it sends then, and the block's end sends nothing more."""
        self._ensure_open()
        self._closed = True
        if not self._operations:
            return
        if self._request_size > MAX_TRANSACTION_BYTES:
            raise TransactionError(
                f"the transaction is {self._request_size:,} bytes; DynamoDB's limit is "
                f"{MAX_TRANSACTION_BYTES:,} bytes"
            )
        self._send_with_retries()

    def discard(self) -> None:
        """Close the builder without sending anything."""
        self._closed = True

    @property
    def closed(self) -> bool:
        """Whether the builder has committed or been discarded (it is single use)."""
        return self._closed

    def _send_with_retries(self) -> None:
        policy = self._retry_policy
        operations = BuiltOperations(self._operations, self._plain)
        for attempt in range(1, policy.attempts + 1):
            try:
                self._executor.execute_transaction(
                    operations, client_request_token=self.client_request_token
                )
            except TransientFailure as failure:
                if attempt >= policy.attempts:
                    self._log_outcome(f"failed: {type(failure).__name__}", attempt)
                    raise
                delay = policy.delay(attempt - 1)
                logger.warning(
                    "transaction %s: attempt %d of %d failed, retrying in %.3f s: %s",
                    self.client_request_token,
                    attempt,
                    policy.attempts,
                    delay,
                    failure,
                    extra=self._log_fields("retry", attempt),
                )
                policy.sleep(delay)
            except TransactionCanceled as cancelled:
                error = self._domain_error(cancelled)
                self._log_outcome(f"cancelled: {type(error).__name__}", attempt)
                raise error from cancelled
            except Exception as failure:
                self._log_outcome(f"failed: {type(failure).__name__}", attempt)
                raise
            else:
                self._log_outcome("committed", attempt)
                return

    def _log_outcome(self, outcome: str, attempt: int) -> None:
        if not logger.isEnabledFor(logging.DEBUG):
            return  # (not even the fields: every transaction passes here)
        logger.debug(
            "transaction %s: %d operations, %s, attempt %d",
            self.client_request_token,
            len(self._operations),
            outcome,
            attempt,
            extra=self._log_fields(outcome, attempt),
        )

    def _log_fields(self, outcome: str, attempt: int) -> dict[str, Any]:
        """The line's facts as record attributes, for structured (JSON) handlers."""
        return {
            "client_request_token": self.client_request_token,
            "operations": len(self._operations),
            "outcome": outcome,
            "attempt": attempt,
        }

    def _domain_error(self, cancelled: TransactionCanceled) -> Exception:
        """The ``exc_cls`` of the first operation whose condition failed."""
        reasons = cancelled.reasons
        for index, reason in enumerate(reasons):
            if reason.code == CONDITIONAL_CHECK_FAILED:
                return _cancellation_error(self._operations[index].exc_cls, reasons, index)
        if not reasons:
            return TransactionCanceled(str(cancelled))
        codes = ", ".join(reason.code for reason in reasons)
        failed = next((i for i, reason in enumerate(reasons) if reason.failed), None)
        if failed is None:
            return TransactionCanceled(f"the transaction was cancelled: [{codes}]", reasons=reasons)
        # Not a condition (e.g. an update growing an item past 400 KB): name the operation.
        operation, reason = self._operations[failed], reasons[failed]
        return TransactionCanceled(
            f"the transaction was cancelled by operation {failed + 1} "
            f"({type(operation).__name__} of {operation.key.pk!r}/{operation.key.sk!r}): "
            f"{reason.code}: {reason.message or 'no message'} [{codes}]",
            reasons=reasons,
            failed_index=failed,
        )

    # -- checks --------------------------------------------------------------

    def _add(
        self, operation: Operation, pk: str, sk: str, size: int, values_plain: bool = True
    ) -> None:
        """Record ``operation`` on item ``pk``/``sk``; ``size`` is what it adds to the
        request (its item, or its key and assignments), checked by the caller;
        ``values_plain``: its values (none for a delete or a check) are plain."""
        if self._closed:
            self._ensure_open()  # raises
        if operation.cond is not None:
            operation.condition_shape.check()  # (walked once: the backend reuses the walk)
        target = (operation.table_name, pk, sk)
        if target in self._targets:
            raise TransactionError(
                f"two operations on one item ({operation.table_name}: {pk!r}/{sk!r}); "
                "DynamoDB refuses that"
            )
        if len(self._operations) >= MAX_TRANSACTION_OPERATIONS:
            raise TransactionError(
                f"a transaction holds at most {MAX_TRANSACTION_OPERATIONS} operations"
            )
        self._targets.add(target)
        self._operations.append(operation)
        self._request_size += size
        self._plain.append(values_plain)

    def _ensure_open(self) -> None:
        if self._closed:
            raise TransactionError("this transaction is finished; open a new one")

    def _table(self, table_name: str | None) -> str:
        return table_name or self._default_table_name

    @staticmethod
    def _exc(exc_cls: type[Exception] | None) -> type[Exception]:
        if exc_cls is None:
            return TransactionCanceled
        if not (isinstance(exc_cls, type) and issubclass(exc_cls, Exception)):
            raise TransactionError("exc_cls must be an exception class")
        return exc_cls


def open_transaction(
    executor: TransactionExecutor,
    *,
    default_table_name: str,
    client_request_token: str | None = None,
    retry_policy: RetryPolicy | None = None,
) -> TransactionBuilder:
    """A builder to use as a context manager: it commits when the block ends normally and
    sends nothing otherwise."""
    return TransactionBuilder(
        executor,
        default_table_name=default_table_name,
        client_request_token=client_request_token,
        retry_policy=retry_policy,
    )


def _cancellation_error(
    exc_cls: type[Exception], reasons: Sequence[CancellationReason], failed_index: int
) -> Exception:
    """An ``exc_cls`` for a failed condition, carrying the cancellation reasons."""
    if issubclass(exc_cls, TransactionCanceled):
        return exc_cls(reasons=reasons, failed_index=failed_index)
    # A caller's own class (the seed's ``DeduplicationConflictError(Exception)``): built
    # with a message; the reasons are set on it, and its __cause__ is the TransactionCanceled.
    try:
        error = exc_cls(TransactionCanceled.default_message)
    except TypeError as unbuildable:
        return TransactionError(
            f"a condition failed, but exc_cls {exc_cls.__name__} cannot be built with a "
            f"message: {unbuildable}"
        )
    with contextlib.suppress(AttributeError):  # a read-only ``reasons`` of its own stays
        error.reasons = tuple(reasons)  # type: ignore[attr-defined]
        error.failed_index = failed_index  # type: ignore[attr-defined]
    return error


def _with_copied_values(operation: Operation) -> Operation:
    """``operation`` with its own copy of the builder's snapshot of its values."""
    if isinstance(operation, Put):
        return dataclasses.replace(operation, item=sized_snapshot(operation.item)[0])
    if isinstance(operation, Update):
        return dataclasses.replace(operation, set=sized_snapshot(operation.set)[0])
    return operation  # (no values: a key and a condition)


def _key_of(item: Mapping[str, Any]) -> tuple[str, str]:
    """The key of an item, refused unless usable (checked on the strings: a Put builds no
    KeyPair)."""
    pk, sk = item.get(PARTITION_KEY), item.get(SORT_KEY)
    if not isinstance(pk, str) or not isinstance(sk, str):
        raise TransactionError(
            f"an item needs string key attributes {PARTITION_KEY!r} and {SORT_KEY!r}"
        )
    if not pk or not sk:
        raise TransactionError("key attributes must not be empty")
    # A character is at most 4 bytes: keys this short are within the limits uncounted.
    if len(pk) * 4 > MAX_PARTITION_KEY_BYTES or len(sk) * 4 > MAX_SORT_KEY_BYTES:
        _key_bytes(pk, sk)
    return pk, sk


def _key_size(key: KeyPair) -> int:
    """A key's size in the request, refused when over DynamoDB's key limits."""
    pk_bytes, sk_bytes = _key_bytes(key.pk, key.sk)
    return pk_bytes + sk_bytes


def _key_bytes(pk: str, sk: str) -> tuple[int, int]:
    pk_bytes = len(pk) if pk.isascii() else len(pk.encode())
    if pk_bytes > MAX_PARTITION_KEY_BYTES:
        raise TransactionError(f"a partition key has at most {MAX_PARTITION_KEY_BYTES} bytes")
    sk_bytes = len(sk) if sk.isascii() else len(sk.encode())
    if sk_bytes > MAX_SORT_KEY_BYTES:
        raise TransactionError(f"a sort key has at most {MAX_SORT_KEY_BYTES} bytes")
    return pk_bytes, sk_bytes
