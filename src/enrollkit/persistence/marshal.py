"""Python values <-> DynamoDB JSON, through boto3's TypeSerializer/TypeDeserializer.

Both backends go through here, so they accept and refuse the same values and
hand back the same Python types: str, int, Decimal (non-integral numbers only),
bool, None, bytes, list, dict, set.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import Binary, TypeDeserializer, TypeSerializer

from enrollkit.errors import InvalidInput, TransactionError
from enrollkit.transaction.limits import MAX_ITEM_BYTES, item_size

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


def serialize_value(value: Any) -> dict[str, Any]:
    _refuse_empty_sets(value)
    try:
        return dict(_serializer.serialize(value))
    except (TypeError, ArithmeticError) as error:
        # float, 40-digit numbers, objects: DynamoDB has no type for them.
        raise InvalidInput(f"DynamoDB cannot store this value: {error}") from error


def serialize_item(item: Mapping[str, Any]) -> dict[str, Any]:
    size = item_size(item)
    if size > MAX_ITEM_BYTES:
        raise TransactionError(
            f"the item is {size:,} bytes; DynamoDB's limit is {MAX_ITEM_BYTES:,} bytes"
        )
    return {name: serialize_value(value) for name, value in item.items()}


def deserialize_item(item: Mapping[str, Any]) -> dict[str, Any]:
    return {name: to_plain(_deserializer.deserialize(value)) for name, value in item.items()}


def normalize_item(item: Mapping[str, Any]) -> dict[str, Any]:
    """An item as it would come back from DynamoDB (a round trip through DynamoDB JSON)."""
    return deserialize_item(serialize_item(item))


def to_plain(value: Any) -> Any:
    """Integral Decimals become int, Binary becomes bytes; containers are walked."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else value
    if isinstance(value, Binary):
        return value.__bytes__()
    if isinstance(value, dict):
        return {key: to_plain(member) for key, member in value.items()}
    if isinstance(value, list):
        return [to_plain(member) for member in value]
    if isinstance(value, (set, frozenset)):
        return {to_plain(member) for member in value}
    return value


def _refuse_empty_sets(value: Any) -> None:
    if isinstance(value, (set, frozenset)):
        if not value:
            raise InvalidInput("DynamoDB cannot store an empty set")
    elif isinstance(value, Mapping):
        for member in value.values():
            _refuse_empty_sets(member)
    elif isinstance(value, (list, tuple)):
        for member in value:
            _refuse_empty_sets(member)
