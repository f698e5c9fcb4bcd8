"""The four kinds of transaction operation, as plain values (no AWS here).

A backend turns a sequence of these into one atomic write; the builder only
records and checks them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from enrollkit.errors import TransactionCanceled
from enrollkit.layout.table import PARTITION_KEY, SORT_KEY
from enrollkit.models import KeyPair

if TYPE_CHECKING:
    from boto3.dynamodb.conditions import ConditionBase


@dataclass(frozen=True)
class Put:
    """Write a whole item (replacing any item with the same key)."""

    table_name: str
    item: Mapping[str, Any]
    cond: ConditionBase | None = None
    exc_cls: type[Exception] = TransactionCanceled

    @property
    def key(self) -> KeyPair:
        return KeyPair(pk=self.item[PARTITION_KEY], sk=self.item[SORT_KEY])


@dataclass(frozen=True)
class Update:
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


@dataclass(frozen=True)
class Delete:
    """Delete an item (a no-op when it does not exist, unless ``cond`` says otherwise)."""

    table_name: str
    key: KeyPair
    cond: ConditionBase | None = None
    exc_cls: type[Exception] = TransactionCanceled


@dataclass(frozen=True)
class ConditionCheck:
    """Require ``cond`` to hold on an item, without writing it."""

    table_name: str
    key: KeyPair
    cond: ConditionBase
    exc_cls: type[Exception] = TransactionCanceled


Operation = Put | Update | Delete | ConditionCheck
