"""Global secondary indexes, as the persistence layer sees them (pure: no AWS here).

An index is named by the layout (``enrollkit.layout.indexes`` says which exist and
which attributes key them); every backend maintains it and answers
``query_index()`` with DynamoDB's semantics:

- sparse: an item is in the index only when it has both key attributes;
- an index key attribute must be a non-empty string of at most 2,048 (partition) / 1,024
  (sort) bytes: DynamoDB refuses the request otherwise (ValidationException), and a write
  whose index key attribute has another type ("Type mismatch for Index Key"; in a
  transaction, that operation's cancellation reason is ``ValidationError``);
- results are ordered by the index sort key (ties by the table key), ascending or
  descending; ``limit`` caps the items read, and a page that stopped at the limit carries
  ``last_key``, even when nothing follows (as DynamoDB's ``LastEvaluatedKey``);
- reads of an index are eventually consistent on DynamoDB; the embedded backend shows
  every committed write at once.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from enrollkit.errors import InvalidInput, TransactionError

# DynamoDB's message for a write whose index key attribute has another type.
INDEX_KEY_TYPE_MISMATCH = "One or more parameter values were invalid: Type mismatch for Index Key"
MAX_INDEX_PARTITION_KEY_BYTES = 2048
MAX_INDEX_SORT_KEY_BYTES = 1024


@dataclass(frozen=True)
class GlobalIndex:
    """One global secondary index: its name and its two string key attributes.

    ``projection`` is ``None`` for ALL attributes, or the non-key attributes it carries
    (INCLUDE; the table's and the index's keys always come along).
    """

    name: str
    partition_key: str
    sort_key: str
    projection: tuple[str, ...] | None = None

    def keys_of(self, item: Mapping[str, Any]) -> tuple[str, str] | None:
        """The item's (partition, sort) values in this index, or ``None`` when it is not in
        it (sparse: an attribute missing)."""
        pk, sk = item.get(self.partition_key), item.get(self.sort_key)
        if isinstance(pk, str) and isinstance(sk, str):
            return pk, sk
        return None

    def check_values(self, attributes: Mapping[str, Any]) -> None:
        """Refuse index key values DynamoDB refuses for the whole request (ValidationException,
        checked before any condition): an empty string, or one over the key size limit."""
        for attribute, limit in (
            (self.partition_key, MAX_INDEX_PARTITION_KEY_BYTES),
            (self.sort_key, MAX_INDEX_SORT_KEY_BYTES),
        ):
            value = attributes.get(attribute)
            if isinstance(value, str) and not value:
                raise TransactionError(
                    f"attribute {attribute!r} keys index {self.name!r} and cannot be an empty "
                    "string (DynamoDB refuses the request)"
                )
            if isinstance(value, str) and len(value.encode()) > limit:
                raise TransactionError(
                    f"attribute {attribute!r} keys index {self.name!r}: at most {limit} bytes "
                    "(DynamoDB: size limit exceeded)"
                )

    def type_mismatch(self, item: Mapping[str, Any]) -> bool:
        """Whether an index key attribute holds another type than a string: DynamoDB refuses
        that write ("Type mismatch for Index Key"; in a transaction, a cancellation reason)."""
        return any(
            name in item and not isinstance(item[name], str)
            for name in (self.partition_key, self.sort_key)
        )

    def project(self, item: Mapping[str, Any], table_keys: tuple[str, ...]) -> dict[str, Any]:
        """The item as the index holds it."""
        if self.projection is None:
            return dict(item)
        kept = {*table_keys, self.partition_key, self.sort_key, *self.projection}
        return {name: value for name, value in item.items() if name in kept}


@dataclass(frozen=True)
class TableIndexes:
    """The indexes of each of enrollkit's two tables."""

    enrollments: tuple[GlobalIndex, ...] = ()
    orders: tuple[GlobalIndex, ...] = ()


@dataclass(frozen=True)
class SortKeyRange:
    """The sort-key part of an index Query: a prefix, or a range (bounds inclusive, either
    may be open). DynamoDB's key conditions allow one of the two, not both."""

    begins_with: str | None = None
    at_least: str | None = None
    at_most: str | None = None

    def __post_init__(self) -> None:
        if self.begins_with is not None and (self.at_least is not None or self.at_most is not None):
            raise InvalidInput("a sort-key condition is a prefix or a range, not both")
        if self.at_least is not None and self.at_most is not None and self.at_least > self.at_most:
            raise InvalidInput("a sort-key range needs its lower bound first")

    def holds(self, value: str) -> bool:
        if self.begins_with is not None:
            return value.startswith(self.begins_with)
        if self.at_least is not None and value < self.at_least:
            return False
        return self.at_most is None or value <= self.at_most


@dataclass(frozen=True)
class IndexPage:
    """One page of an index Query: the items, and the key to start the next page after
    (``None`` when the Query reached the end without stopping at its limit)."""

    items: list[dict[str, Any]] = field(default_factory=list)
    last_key: dict[str, Any] | None = None


def check_index_query(limit: int | None) -> None:
    """DynamoDB's Limit is a positive integer."""
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise InvalidInput(f"limit must be a positive int, not {limit!r}")
