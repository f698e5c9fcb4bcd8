"""The four kinds of transaction operation, as plain values (no AWS here).

A backend turns a sequence of these into one atomic write; the builder only
records and checks them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, overload

from enrollkit.errors import TransactionCanceled
from enrollkit.layout.table import PARTITION_KEY, SORT_KEY
from enrollkit.models import KeyPair
from enrollkit.transaction.condition_shape import (
    NO_CONDITION,
    ConditionShape,
    shape_of_operation_condition,
)

if TYPE_CHECKING:
    from boto3.dynamodb.conditions import ConditionBase


class _ShapeOnFirstUse:
    """An operation's ``condition_shape``: its ``cond`` walked on first use, by the builder
    as it adds the operation, else by the backend sending an operation built by hand; then
    kept in the operation's ``__dict__``, where later reads find it (this descriptor has
    no ``__set__``). ``functools.cached_property`` does the same but, on Python 3.11, takes
    a lock on every first use.

    Not a dataclass field: no ``__init__`` argument, no part of eq or repr. An operation is
    frozen, so its ``cond`` stays the one walked (``dataclasses.replace`` makes another
    operation, walked anew); its values are taken when walked, as the builder takes a
    put's item and an update's values when it adds them."""

    @overload
    def __get__(self, operation: None, owner: type[Any]) -> _ShapeOnFirstUse: ...

    @overload
    def __get__(self, operation: _Conditioned, owner: type[Any]) -> ConditionShape: ...

    def __get__(
        self, operation: _Conditioned | None, owner: type[Any]
    ) -> ConditionShape | _ShapeOnFirstUse:
        if operation is None:
            return self
        cond = operation.cond
        shape = NO_CONDITION if cond is None else shape_of_operation_condition(cond)
        operation.__dict__["condition_shape"] = shape
        return shape


class _Conditioned:
    """What every operation has: a condition (or None), walked once."""

    cond: ConditionBase | None
    condition_shape = _ShapeOnFirstUse()


# Each operation writes its fields into its __dict__ in one update: the __init__ a frozen
# dataclass generates sets each field through object.__setattr__, which made building an
# operation 60% dearer, and the builder builds nine per enroll. (init=False: the fields,
# eq, repr, replace() and frozenness stay the dataclass's.)


@dataclass(frozen=True, init=False)
class Put(_Conditioned):
    """Write a whole item (replacing any item with the same key)."""

    table_name: str
    item: Mapping[str, Any]
    cond: ConditionBase | None = None
    exc_cls: type[Exception] = TransactionCanceled

    def __init__(
        self,
        table_name: str,
        item: Mapping[str, Any],
        cond: ConditionBase | None = None,
        exc_cls: type[Exception] = TransactionCanceled,
    ) -> None:
        self.__dict__.update(table_name=table_name, item=item, cond=cond, exc_cls=exc_cls)

    @property
    def key(self) -> KeyPair:
        return KeyPair(pk=self.item[PARTITION_KEY], sk=self.item[SORT_KEY])


@dataclass(frozen=True, init=False)
class Update(_Conditioned):
    """Change some attributes of an item: ``set`` assigns values, ``remove`` drops names.

    Like DynamoDB's UpdateItem, an update of a missing item creates it unless
    ``cond`` requires it to exist.
    """

    table_name: str
    key: KeyPair
    set: Mapping[str, Any] = field(default_factory=dict)
    remove: tuple[str, ...] = ()
    cond: ConditionBase | None = None
    exc_cls: type[Exception] = TransactionCanceled

    def __init__(
        self,
        table_name: str,
        key: KeyPair,
        set: Mapping[str, Any] | None = None,
        remove: tuple[str, ...] = (),
        cond: ConditionBase | None = None,
        exc_cls: type[Exception] = TransactionCanceled,
    ) -> None:
        self.__dict__.update(
            table_name=table_name,
            key=key,
            set={} if set is None else set,
            remove=remove,
            cond=cond,
            exc_cls=exc_cls,
        )


@dataclass(frozen=True, init=False)
class Delete(_Conditioned):
    """Delete an item (a no-op when it does not exist, unless ``cond`` says otherwise)."""

    table_name: str
    key: KeyPair
    cond: ConditionBase | None = None
    exc_cls: type[Exception] = TransactionCanceled

    def __init__(
        self,
        table_name: str,
        key: KeyPair,
        cond: ConditionBase | None = None,
        exc_cls: type[Exception] = TransactionCanceled,
    ) -> None:
        self.__dict__.update(table_name=table_name, key=key, cond=cond, exc_cls=exc_cls)


@dataclass(frozen=True, init=False)
class ConditionCheck(_Conditioned):
    """Require ``cond`` to hold on an item, without writing it."""

    table_name: str
    key: KeyPair
    cond: ConditionBase
    exc_cls: type[Exception] = TransactionCanceled

    def __init__(
        self,
        table_name: str,
        key: KeyPair,
        cond: ConditionBase,
        exc_cls: type[Exception] = TransactionCanceled,
    ) -> None:
        self.__dict__.update(table_name=table_name, key=key, cond=cond, exc_cls=exc_cls)


Operation = Put | Update | Delete | ConditionCheck


class BuiltOperations(tuple[Operation, ...]):
    """A transaction's operations as the builder hands them to a backend (a tuple of them,
    in order, for any backend).

    Each Put's item and each Update's assignments are the builder's snapshot, taken when
    the operation was added, which nothing outside the builder and the backend holds (the
    builder's ``operations`` gives copies). ``plain[i]`` tells whether operation ``i``'s
    values are all plain (``limits.sized_snapshot``: read back exactly as written), so a
    backend that keeps values as they read back may keep that snapshot as it is.

    Made by the builder only, after its checks (keys, sizes, names): a backend trusts what
    it says. Operations built by hand go to a backend as any other sequence."""

    plain: tuple[bool, ...]

    def __new__(cls, operations: Iterable[Operation], plain: Iterable[bool]) -> BuiltOperations:
        built = super().__new__(cls, operations)
        built.plain = tuple(plain)
        if len(built.plain) != len(built):
            raise ValueError("one plain flag per operation")
        return built
