"""The embedded backend: DynamoDB's transaction, condition and TTL semantics in memory.

Services use it in their own tests, so it must refuse exactly what DynamoDB refuses
and keep what DynamoDB keeps: expired items stay readable until swept, as
DynamoDB deletes them up to days after their ``ttl``.
"""

from __future__ import annotations

import bisect
import itertools
import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, NamedTuple, cast

from enrollkit.errors import (
    CancellationReason,
    PersistenceError,
    TransactionCanceled,
    TransactionError,
)
from enrollkit.layout.table import PARTITION_KEY, SORT_KEY, TTL_ATTRIBUTE
from enrollkit.models import KeyPair
from enrollkit.persistence.base import DEFAULT_ORDER_TABLE_NAME, DEFAULT_TABLE_NAME, BasePersistence
from enrollkit.persistence.conditions import shape_holds
from enrollkit.persistence.embedded_index import EmbeddedIndex
from enrollkit.persistence.indexes import (
    INDEX_KEY_TYPE_MISMATCH,
    MAX_INDEX_SORT_KEY_BYTES,
    GlobalIndex,
    IndexPage,
    SortKeyRange,
    TableIndexes,
    check_index_query,
)
from enrollkit.persistence.marshal import (
    normalize_attributes,
    normalize_item,
    normalize_plain_attributes,
    serialize_value,
)
from enrollkit.persistence.streams import ttl_removal_record
from enrollkit.timing import require_aware, ttl
from enrollkit.transaction.builder import CONDITIONAL_CHECK_FAILED
from enrollkit.transaction.condition_shape import ConditionShape
from enrollkit.transaction.limits import MAX_ITEM_BYTES, item_size
from enrollkit.transaction.operations import (
    BuiltOperations,
    ConditionCheck,
    Delete,
    Operation,
    Put,
    Update,
)
from enrollkit.transaction.retry import RetryPolicy

# DynamoDB's message for an update that would grow its item past 400 KB.
ITEM_TOO_LARGE_TO_UPDATE = "Item size to update has exceeded the maximum allowed size"
# DynamoDB remembers a ClientRequestToken for 10 minutes; we remember the latest ones.
REMEMBERED_TOKENS = 10_000


class _Table:
    """Items grouped by partition, as DynamoDB stores them: a Query reads one partition.
    Its global secondary indexes follow every write. A stored item is never changed in
    place (every write stores a new dict): the token memory keeps some as the requests
    that wrote them."""

    def __init__(self, indexes: Sequence[GlobalIndex] = ()) -> None:
        self._partitions: dict[str, dict[str, dict[str, Any]]] = {}
        self.indexes = {spec.name: EmbeddedIndex(spec) for spec in indexes}
        # Most items carry no index key attribute: they skip the indexes' checks and upkeep.
        self.index_keys = frozenset(
            name for spec in indexes for name in (spec.partition_key, spec.sort_key)
        )
        # Each index with its partition key attribute: an item reaches only the indexes it
        # may be in (a root item 6 of 7, a schedule item 1). (A test of each attribute in
        # turn: cheaper than intersecting the item's names with them.)
        self._routes = tuple((spec.partition_key, self.indexes[spec.name]) for spec in indexes)
        self._route_attributes = frozenset(attribute for attribute, _ in self._routes)

    def get(self, pk: str, sk: str) -> dict[str, Any] | None:
        partition = self._partitions.get(pk)
        return None if partition is None else partition.get(sk)

    def check_index_keys(self, attributes: Mapping[str, Any]) -> bool | None:
        """Refuse, as DynamoDB does, an empty or oversized index key value (the whole
        request), and tell whether one has another type than a string (that operation's
        cancellation reason, decided after the conditions). Stored items hold only string
        index keys, so an update's assigned ``attributes`` decide it for its whole item.

        ``None`` (false, like "no mismatch"): ``attributes`` hold no index key attribute,
        so the item they make, when new, is in no index (:meth:`put` is told so)."""
        if self.index_keys.isdisjoint(attributes):  # (most items: no index key)
            return None
        mismatch = False
        for name in self.index_keys.intersection(attributes):
            value = attributes[name]
            if type(value) is not str and not isinstance(value, str):
                mismatch = True
            # An ASCII string of 1..1,024 characters fits every index key: only another
            # string needs the indexes' own checks (which say, in index order, what is wrong).
            elif not (value.isascii() and 0 < len(value) <= MAX_INDEX_SORT_KEY_BYTES):
                for index in self.indexes.values():
                    index.spec.check_values(attributes)
        return mismatch

    def put(self, item: dict[str, Any], indexed: bool) -> None:
        """Store ``item``, in place of the one with its key. ``indexed``: whether ``item``
        may hold an index key attribute; false when :meth:`check_index_keys` found none in
        the attributes that made it, so a new item skips looking for its indexes."""
        sk = item[SORT_KEY]
        partition = self._partitions.get(item[PARTITION_KEY])
        if partition is None:
            partition = self._partitions[item[PARTITION_KEY]] = {}
        old = partition.get(sk)
        if old is None:  # a new item: only the indexes keyed by one of its attributes
            if indexed:
                made: dict[str, str] = {}
                for attribute, index in self._routes:
                    if attribute in item:
                        index.add(item, made)
        else:
            for attribute, index in self._routes:
                if attribute in old:
                    if attribute in item and index.spec.keys_of(old) == index.spec.keys_of(item):
                        continue  # its entry stays (a status change keeps the tenant's, ...)
                    index.remove(old)
                if attribute in item:
                    index.add(item)
        partition[sk] = item

    def delete(self, pk: str, sk: str) -> None:
        partition = self._partitions.get(pk)
        if partition is not None:
            old = partition.pop(sk, None)
            # (Most items are in no index: one test tells.)
            if old is not None and not self._route_attributes.isdisjoint(old):
                for attribute, index in self._routes:
                    if attribute in old:
                        index.remove(old)
            if not partition:
                del self._partitions[pk]

    def partition(self, pk: str) -> dict[str, dict[str, Any]]:
        return self._partitions.get(pk, {})

    def items(self) -> list[dict[str, Any]]:
        return [item for partition in self._partitions.values() for item in partition.values()]


class InMemoryPersistence(BasePersistence):
    """Two tables in a dict, guarded by one lock: every transaction is serializable."""

    def __init__(
        self,
        table_name: str = DEFAULT_TABLE_NAME,
        order_table_name: str = DEFAULT_ORDER_TABLE_NAME,
        *,
        retry_policy: RetryPolicy | None = None,
        indexes: TableIndexes | None = None,
    ) -> None:
        super().__init__(table_name, order_table_name, retry_policy=retry_policy, indexes=indexes)
        self._lock = threading.RLock()
        self._tables = {
            table_name: _Table(self.indexes.enrollments),
            order_table_name: _Table(self.indexes.orders),
        }
        self._tokens: OrderedDict[str, _Remembered] = OrderedDict()
        self.transactions_committed = 0
        # The stream records of TTL deletions, until drain_ttl_stream() takes them.
        self._ttl_stream: list[dict[str, Any]] = []

    def create_tables(self) -> None:
        """Nothing to do: the tables exist from the start (here for parity with DynamoDB)."""

    # -- reads -----------------------------------------------------------------

    def get_item(self, key: KeyPair, *, table_name: str | None = None) -> dict[str, Any] | None:
        with self._lock:
            item = self._rows(table_name).get(key.pk, key.sk)
            return _copied(item) if item is not None else None

    def query(
        self, pk: str, *, sk_prefix: str = "", table_name: str | None = None
    ) -> list[dict[str, Any]]:
        with self._lock:
            partition = self._rows(table_name).partition(pk)
            # Python orders str by code point, which is DynamoDB's UTF-8 byte order.
            return [_copied(partition[sk]) for sk in sorted(partition) if sk.startswith(sk_prefix)]

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
        with self._lock:
            table = self._rows(table_name)
            index = table.indexes[self.index_spec(index_name, table_name).name]
            keys, last = index.query(
                partition_value,
                sort_range=sort_range,
                descending=descending,
                limit=limit,
                start_after=start_after,
            )
            table_keys = (PARTITION_KEY, SORT_KEY)
            items = [
                index.spec.project(_copied(table.get(pk, sk) or {}), table_keys) for pk, sk in keys
            ]
            return IndexPage(
                items=items,
                last_key=index.last_key(last, partition_value) if last is not None else None,
            )

    def scan_page(
        self,
        *,
        limit: int,
        start_after: Mapping[str, Any] | None = None,
        table_name: str | None = None,
    ) -> IndexPage:
        check_index_query(limit)
        with self._lock:
            keys = sorted(
                (item[PARTITION_KEY], item[SORT_KEY]) for item in self._rows(table_name).items()
            )
            start = 0
            if start_after is not None:
                start = bisect.bisect_right(
                    keys, (start_after[PARTITION_KEY], start_after[SORT_KEY])
                )
            chosen = keys[start : start + limit]
            table = self._rows(table_name)
            items = [_copied(table.get(pk, sk) or {}) for pk, sk in chosen]
        stopped = len(chosen) == limit  # as DynamoDB: a page that stopped at its limit
        last = {PARTITION_KEY: chosen[-1][0], SORT_KEY: chosen[-1][1]} if stopped else None
        return IndexPage(items=items, last_key=last)

    def scan(self, *, table_name: str | None = None) -> list[dict[str, Any]]:
        """Every item of a table (for tests and tools)."""
        with self._lock:
            return [_copied(item) for item in self._rows(table_name).items()]

    # -- writes ----------------------------------------------------------------

    def put_item(self, item: Mapping[str, Any], *, table_name: str | None = None) -> None:
        stored = _storable(item)
        with self._lock:
            table = self._rows(table_name)
            index_keys = table.check_index_keys(stored)
            if index_keys:
                raise TransactionError(f"DynamoDB refused the request: {INDEX_KEY_TYPE_MISMATCH}")
            table.put(stored, indexed=index_keys is not None)

    def execute_transaction(
        self, operations: Sequence[Operation], *, client_request_token: str
    ) -> None:
        # Marshal first: a value DynamoDB cannot store is refused before anything is written.
        # (Nothing here reads the store, so it runs outside the lock.)
        prepared = self._prepared(operations)
        tables, payloads, keys = prepared.tables, prepared.payloads, prepared.keys
        with self._lock:
            if self._already_applied(prepared.remembered, client_request_token):
                return
            current = [table.get(pk, sk) for table, (pk, sk) in zip(tables, keys, strict=True)]
            if not all(map(_holds, operations, current)):
                raise TransactionCanceled(reasons=list(map(_reason, operations, current)))
            # Every write is computed (and sized) before any is applied: all or nothing.
            results = payloads
            if prepared.updates or any(prepared.index_keys):
                if prepared.updates:
                    results = list(map(_result, operations, payloads, current))
                refusals = list(map(_refusal, operations, results, prepared.index_keys))
                if any(refusals):
                    raise TransactionCanceled(
                        reasons=[
                            CancellationReason(code="ValidationError", message=refusal)
                            if refusal
                            else CancellationReason(code="None")
                            for refusal in refusals
                        ]
                    )
            for operation, table, key, result, index_keys in zip(
                operations, tables, keys, results, prepared.index_keys, strict=True
            ):
                # (Put itself first, without a call; an update's result, when new, holds
                # only its assigned attributes.)
                if type(operation) is Put or isinstance(operation, (Put, Update)):
                    table.put(result, index_keys is not None)
                elif isinstance(operation, Delete):
                    table.delete(*key)
                # A ConditionCheck writes nothing.
            self._tokens[client_request_token] = prepared.remembered
            if len(self._tokens) > REMEMBERED_TOKENS:
                self._tokens.popitem(last=False)
            self.transactions_committed += 1

    # -- TTL ---------------------------------------------------------------------

    def sweep_expired(self, now: datetime) -> int:
        """Delete items whose ``ttl`` is at or before ``now``, as DynamoDB's TTL process
        eventually does. Returns how many were deleted.

        Each deletion also makes the stream record DynamoDB's TTL makes (a REMOVE by the
        DynamoDB service, with the old image); :meth:`drain_ttl_stream` hands them over."""
        now = require_aware(now)
        cutoff = ttl(now)
        swept = 0
        with self._lock:
            for table_name, table in self._tables.items():
                expired = [
                    item
                    for item in table.items()
                    if _is_epoch(item.get(TTL_ATTRIBUTE)) and item[TTL_ATTRIBUTE] <= cutoff
                ]
                for item in expired:
                    table.delete(item[PARTITION_KEY], item[SORT_KEY])
                    self._ttl_stream.append(ttl_removal_record(table_name, item, now))
                swept += len(expired)
        return swept

    def drain_ttl_stream(self) -> dict[str, Any]:
        """The stream records of the TTL deletions since the last call, oldest first, as the
        event a Lambda stream consumer receives (``{"Records": [...]}``): pass it to
        ``handle_stream_batch``. The backend keeps them until taken."""
        with self._lock:
            records, self._ttl_stream = self._ttl_stream, []
        return {"Records": records}

    # -- internals ---------------------------------------------------------------

    def _rows(self, table_name: str | None) -> _Table:
        name = self._table(table_name)
        try:
            return self._tables[name]
        except KeyError:
            raise _table_missing(name) from None

    def _already_applied(self, request: _Remembered, token: str) -> bool:
        """Whether ``token``'s transaction is applied already: ``request`` (in the form a
        token remembers) replays it, or is refused as another transaction."""
        remembered = self._tokens.get(token)
        if remembered is None:
            return False
        if _request_fingerprint(remembered) != _request_fingerprint(request):
            raise TransactionError(
                "this client request token was used for another transaction "
                "(DynamoDB: IdempotentParameterMismatch)"
            )
        return True

    def _prepared(self, operations: Sequence[Operation]) -> _PreparedTransaction:
        """Each operation's values as DynamoDB would store them, its table and key, whether
        an index key attribute has another type than a string, and the form its token
        remembers it by: one pass, with the checks of DynamoDB's request validation."""
        tables: list[_Table] = []
        payloads: list[dict[str, Any]] = []
        keys: list[tuple[str, str]] = []
        index_keys: list[bool | None] = []
        remembered: list[Any] = []  # _FIELDS_PER_OPERATION fields an operation, in a row
        kept_payloads: list[_RememberedPayload] = []
        updates = False
        tables_by_name = self._tables
        # The builder's plain snapshots are stored as they are: nothing else holds them,
        # and they hold their values as a read returns them (the builder checked the keys).
        plain: Iterable[bool] = (
            operations.plain if isinstance(operations, BuiltOperations) else itertools.repeat(False)
        )
        for operation, owned_plain in zip(operations, plain, strict=False):
            payload: dict[str, Any]
            kept: _RememberedPayload
            if owned_plain and type(operation) is Put:  # (most operations: nothing to do)
                payload = kept = operation.item  # type: ignore[assignment]  # (a dict)
                pk, sk = payload[PARTITION_KEY], payload[SORT_KEY]
                removed: tuple[str, ...] = ()
            else:
                payload, kept, (pk, sk), removed = _values_of(operation, owned_plain)
                updates = updates or isinstance(operation, Update)
            table_name = operation.table_name
            kind = type(operation).__name__
            if operation.cond is None:
                remembered += (kind, table_name, pk, sk, removed, (), ())
            else:
                structure, values = _remembered_condition(operation.condition_shape)
                remembered += (kind, table_name, pk, sk, removed, structure, values)
            # DynamoDB's request validation, operation by operation (as DynamoDB Local
            # answers): its table exists, then its index key values.
            table = tables_by_name.get(table_name)
            if table is None:
                raise _table_missing(table_name)
            index_keys.append(table.check_index_keys(payload))
            tables.append(table)
            payloads.append(payload)
            keys.append((pk, sk))
            kept_payloads.append(kept)
        return _PreparedTransaction(
            tables,
            payloads,
            keys,
            index_keys,
            (tuple(remembered), tuple(kept_payloads)),
            updates,
        )


class _PreparedTransaction(NamedTuple):
    tables: list[_Table]
    payloads: list[dict[str, Any]]
    keys: list[tuple[str, str]]
    # Per operation, what check_index_keys found: a type mismatch (True), none (False), or
    # no index key attribute at all (None).
    index_keys: list[bool | None]
    remembered: _Remembered
    updates: bool  # whether an operation is an Update (whose result is computed)


# What a token's transaction is remembered as: one tuple of the operations' fields, seven
# an operation in a row (kind, table, partition key, sort key, removed names, condition
# structure in prefix order, condition values: strings, numbers and tuples of them); and
# apart from it, each operation's payload: the store's copy when it holds the values as
# written (nothing more to build), else its attributes as name, value, name, value, ...
# The garbage collector stops tracking tuples of strings and numbers, but never one holding
# a dict: so the payloads go in one tuple per transaction, not one per operation. And each
# tuple made counts towards the next collection until that collection untracks it: one
# tuple of fields, not one per operation and one per key (two dozen a transaction), makes
# the collector run less often. (The operations themselves, with their items, boto3
# conditions and KeyPairs, kept over twenty tracked objects alive per transaction, which
# every full collection walked, 10,000 transactions' worth.)
_RememberedPayload = dict[str, Any] | tuple[Any, ...]
_Remembered = tuple[tuple[Any, ...], tuple[_RememberedPayload, ...]]
_FIELDS_PER_OPERATION = 7


def _remembered_condition(shape: ConditionShape) -> tuple[tuple[Any, ...], tuple[Any, ...]]:
    """A condition as its token remembers it: its structure and its values (the walk the
    builder made when it added the operation; refused here as the builder refuses it, for
    an operation built by hand)."""
    shape.check()
    return shape.structure, shape.values


def _request_fingerprint(remembered: _Remembered) -> tuple[Any, ...]:
    """The transaction as DynamoDB compares a replayed ClientRequestToken's request: values
    as DynamoDB JSON, so ``True`` is not ``1`` and ``1`` is not ``Decimal("1.0")`` (numbers
    are compared as written); set members and map entries in any order. Computed only when
    a token comes back, so a plain commit pays nothing for it."""
    fields, payloads = remembered
    operations = (
        fields[start : start + _FIELDS_PER_OPERATION]
        for start in range(0, len(fields), _FIELDS_PER_OPERATION)
    )
    return tuple(
        _operation_fingerprint(operation, payload)
        for operation, payload in zip(operations, payloads, strict=True)
    )


def _operation_fingerprint(
    operation: tuple[Any, ...], payload: _RememberedPayload
) -> tuple[Any, ...]:
    kind, table_name, pk, sk, removed, structure, values = operation
    pairs: Iterable[tuple[str, Any]] = (
        payload.items()
        if isinstance(payload, dict)
        else zip(payload[::2], payload[1::2], strict=True)
    )
    if kind == "Put":
        canonical: Any = _wire_attributes(dict(pairs))
    else:
        # An update's assignment order shapes DynamoDB's UpdateExpression, so it counts.
        canonical = (tuple((name, _wire(value)) for name, value in pairs), removed)
    # A condition's values as DynamoDB JSON (compared as DynamoDB does).
    return (kind, table_name, pk, sk, canonical, structure, tuple(map(_wire, values)))


def _wire_attributes(attributes: Mapping[str, Any]) -> frozenset[tuple[str, Any]]:
    return frozenset((name, _wire(value)) for name, value in attributes.items())


def _wire(value: Any) -> Any:
    """A hashable form of ``value`` as DynamoDB receives it (its DynamoDB JSON)."""
    return _canonical(serialize_value(value))


def _canonical(attribute: Mapping[str, Any]) -> Any:
    ((kind, content),) = attribute.items()
    if kind == "M":
        return kind, frozenset((name, _canonical(member)) for name, member in content.items())
    if kind == "L":
        return kind, tuple(_canonical(member) for member in content)
    if kind in ("SS", "NS"):
        return kind, frozenset(content)
    if kind == "BS":
        return kind, frozenset(bytes(member) for member in content)
    if kind == "B":
        return kind, bytes(content)
    return kind, content  # S and N as written, BOOL, NULL


def _refusal(
    operation: Operation, result: Mapping[str, Any], index_mismatch: bool | None
) -> str | None:
    """Why DynamoDB would cancel a write whose conditions held (its ValidationError
    message): an update growing its item past 400 KB, or an index key attribute of another
    type than its index's. ``None``: no reason."""
    if isinstance(operation, Update) and item_size(result) > MAX_ITEM_BYTES:
        return ITEM_TOO_LARGE_TO_UPDATE
    if index_mismatch:
        return INDEX_KEY_TYPE_MISMATCH
    return None


def _marshalled(written: Mapping[str, Any]) -> tuple[dict[str, Any], _RememberedPayload]:
    """Values as DynamoDB would store them (a copy the store owns), and as their token
    remembers them: the same dict when that copy holds them as written (the plain types),
    else flattened as written (name, value, name, value, ...).

    The builder has checked the request against DynamoDB's limits (item and key sizes,
    operation count), so a put item is not sized again here.
    """
    payload = normalize_plain_attributes(written)
    if payload is None:
        return normalize_attributes(written), tuple(itertools.chain.from_iterable(written.items()))
    return payload, payload


def _values_of(
    operation: Operation, owned_plain: bool
) -> tuple[dict[str, Any], _RememberedPayload, tuple[str, str], tuple[str, ...]]:
    """An operation's values as the store keeps them, as its token remembers them, its key
    and the names it removes. ``owned_plain``: an update's assignments are the builder's
    plain snapshot, kept as they are (the builder's plain Puts do not come here)."""
    if isinstance(operation, Put):
        payload, kept = _marshalled(operation.item)
        return payload, kept, _with_key(payload), ()
    if isinstance(operation, (Delete, ConditionCheck)):  # no values
        return {}, (), (operation.key.pk, operation.key.sk), ()
    if isinstance(operation, Update):
        if owned_plain:
            assigned = cast(dict[str, Any], operation.set)
            payload, kept = assigned, assigned
        else:
            payload, kept = _marshalled(operation.set)
        return payload, kept, (operation.key.pk, operation.key.sk), operation.remove
    raise TypeError(f"unknown operation {operation!r}")


def _holds(operation: Operation, current: dict[str, Any] | None) -> bool:
    # (The shape was checked when the transaction was prepared.)
    return operation.cond is None or shape_holds(operation.condition_shape, current)


def _reason(operation: Operation, current: dict[str, Any] | None) -> CancellationReason:
    if _holds(operation, current):
        return CancellationReason(code="None")
    return CancellationReason(
        code=CONDITIONAL_CHECK_FAILED,
        message="The conditional request failed",
        item=_copied(current) if current is not None else None,
    )


def _result(
    operation: Operation, payload: dict[str, Any], current: dict[str, Any] | None
) -> dict[str, Any]:
    """The item ``operation`` leaves behind (an updated item is sized later)."""
    if not isinstance(operation, Update):
        return payload
    # Stored values and the payload are normalized already: nothing to convert again.
    item = {**(current or operation.key.as_key()), **payload}
    for name in operation.remove:
        item.pop(name, None)
    return item


def _table_missing(name: str) -> PersistenceError:
    return PersistenceError(f"table {name!r} does not exist")


def _storable(item: Mapping[str, Any]) -> dict[str, Any]:
    stored = normalize_item(item)
    _with_key(stored)
    return stored


def _with_key(stored: dict[str, Any]) -> tuple[str, str]:
    """The item's key, refused unless both its attributes are non-empty strings."""
    pk, sk = stored.get(PARTITION_KEY), stored.get(SORT_KEY)
    if type(pk) is str and type(sk) is str and pk and sk:  # (every item but a bad one)
        return pk, sk
    for name, value in ((PARTITION_KEY, pk), (SORT_KEY, sk)):
        if not isinstance(value, str) or not value:
            raise TransactionError(f"an item needs a non-empty string {name!r}")
    return pk, sk  # type: ignore[return-value]  # both checked above


def _copied(value: Any) -> Any:
    """A copy of a stored value that the caller may change freely. Stored values are
    normalized: only dicts, lists and sets are mutable, everything else is shared."""
    kind = type(value)
    if kind is dict:
        return {name: _copied(member) for name, member in value.items()}
    if kind is list:
        return [_copied(member) for member in value]
    if kind is set:
        return set(value)  # members are str, numbers or bytes: immutable
    return value


def _is_epoch(value: Any) -> bool:
    # DynamoDB's TTL ignores items whose ttl is not a number.
    return isinstance(value, int) and not isinstance(value, bool)
