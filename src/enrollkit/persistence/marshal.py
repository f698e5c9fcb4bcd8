"""Python values <-> DynamoDB JSON, with boto3's TypeSerializer/TypeDeserializer semantics.

Both backends go through here, so they accept and refuse the same values and
hand back the same Python types: str, int, Decimal (non-integral numbers only),
bool, None, bytes, list, dict, set.

Each value's type is looked at once. The types enrollkit's items are made of (exactly
``str``, ``int``, ``bool``, ``None``, ``dict``, ``list``, and sets of ``str``) are
handled here directly; every other value (``Decimal``, binary, number and binary
sets, tuples, subclasses such as str enums, and everything DynamoDB has no type for)
goes through boto3's own TypeSerializer and TypeDeserializer, so boto3 decides what
it becomes and what is refused. tests/test_marshal.py checks the direct path against
boto3's on generated values.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Set
from decimal import Decimal
from typing import TYPE_CHECKING, Any, NamedTuple

from enrollkit.errors import InvalidInput, TransactionError
from enrollkit.transaction.limits import EXACT_INT_BOUND, MAX_ITEM_BYTES, item_size

if TYPE_CHECKING:
    from boto3.dynamodb.types import TypeDeserializer, TypeSerializer


class _Boto3Types(NamedTuple):
    serializer: TypeSerializer
    deserializer: TypeDeserializer
    binary: type[Any]


@functools.cache
def _boto3() -> _Boto3Types:
    """boto3's TypeSerializer, TypeDeserializer and Binary, imported on first use: the
    embedded backend needs them only for the rarer types, so importing it (and
    ``from enrollkit import InMemoryPersistence``) does not load boto3."""
    from boto3.dynamodb.types import Binary, TypeDeserializer, TypeSerializer

    return _Boto3Types(TypeSerializer(), TypeDeserializer(), Binary)


# DynamoDB numbers hold 38 significant digits: every int strictly inside this bound,
# and no int outside it (boto3's context traps the rounding).
_MAX_INT_DIGITS = 38


# -- Python -> DynamoDB JSON (the DynamoDB backend's requests) ------------------------------


def serialize_value(value: Any) -> dict[str, Any]:
    kind = type(value)
    if kind is str:
        return {"S": value}
    if kind is int and -EXACT_INT_BOUND < value < EXACT_INT_BOUND:
        return {"N": str(value)}
    if kind is bool:
        return {"BOOL": value}
    if value is None:
        return {"NULL": True}
    if kind is dict:
        return {"M": {key: serialize_value(member) for key, member in value.items()}}
    if kind is list:
        return {"L": [serialize_value(member) for member in value]}
    if _is_string_set(value):
        return {"SS": list(value)}
    return _serialize_with_boto3(value)


def serialize_attributes(item: Mapping[str, Any]) -> dict[str, Any]:
    """An item's attributes as DynamoDB JSON, without the size check (for items whose size
    the transaction builder has checked already)."""
    # Most values are strings: those without a call.
    return {
        name: {"S": value} if type(value) is str else serialize_value(value)
        for name, value in item.items()
    }


def serialize_item(item: Mapping[str, Any]) -> dict[str, Any]:
    _check_size(item)
    return serialize_attributes(item)


# -- DynamoDB JSON -> Python (the DynamoDB backend's responses) -------------------------------


def deserialize_value(value: Mapping[str, Any]) -> Any:
    if len(value) == 1:
        ((tag, payload),) = value.items()
        if tag == "S":
            return payload
        if tag == "N":
            return _number(payload)
        if tag == "M":
            return {key: deserialize_value(member) for key, member in payload.items()}
        if tag == "L":
            return [deserialize_value(member) for member in payload]
        if tag == "BOOL":
            return payload
        if tag == "NULL":
            return None
        if tag == "SS":
            return set(payload)
    return to_plain(_boto3().deserializer.deserialize(value))  # type: ignore[arg-type]


def deserialize_item(item: Mapping[str, Any]) -> dict[str, Any]:
    # Most values are strings: those without a call.
    result = {}
    for name, value in item.items():
        if len(value) == 1 and "S" in value:
            result[name] = value["S"]
        else:
            result[name] = deserialize_value(value)
    return result


# -- Python -> Python as DynamoDB would store it (the embedded backend) -----------------------


def normalize_value(value: Any) -> Any:
    """``value`` as it would come back from DynamoDB: a copy, refused if DynamoDB would be
    given no type for it (a round trip through DynamoDB JSON, without building it for the
    plain types: a container holding another type makes the round trip whole)."""
    try:
        return _plain_value(value)
    except _NotPlain:
        return to_plain(_boto3().deserializer.deserialize(_serialize_with_boto3(value)))  # type: ignore[arg-type]


def normalize_attributes(item: Mapping[str, Any]) -> dict[str, Any]:
    """An item as it would come back from DynamoDB, without the size check (for items whose
    size the transaction builder has checked already)."""
    # Most values are strings: those without a call.
    return {
        name: value if type(value) is str else normalize_value(value)
        for name, value in item.items()
    }


def normalize_plain_attributes(item: Mapping[str, Any]) -> dict[str, Any] | None:
    """:func:`normalize_attributes` of an item made only of the plain types (exactly
    ``str``, ``int``, ``bool``, ``None``, ``dict``, ``list``, non-empty sets of ``str``),
    whose stored values are their values as written; ``None`` for any other item (a
    ``Decimal("1.0")``, say, is stored as ``1``, which is not how it was written)."""
    stored = dict(item)  # (a C copy: most values are strings, kept as they are)
    try:
        for name, value in item.items():
            if type(value) is not str:
                stored[name] = _plain_value(value)
    except _NotPlain:
        return None
    return stored


class _NotPlain(Exception):
    """A value outside the plain types (see :func:`normalize_plain_attributes`)."""


def _plain_value(value: Any) -> Any:
    """A copy of a value of the plain types, which DynamoDB gives back as written."""
    kind = type(value)
    if kind is str or kind is bool or value is None:
        return value
    if kind is int and -EXACT_INT_BOUND < value < EXACT_INT_BOUND:
        return value
    if kind is dict:  # (strings, most members, without a call)
        return {
            key: member if type(member) is str else _plain_value(member)
            for key, member in value.items()
        }
    if kind is list:
        return [_plain_value(member) for member in value]
    if _is_string_set(value):
        return set(value)
    raise _NotPlain


def normalize_item(item: Mapping[str, Any]) -> dict[str, Any]:
    """An item as it would come back from DynamoDB, refused when it is too large."""
    _check_size(item)
    return normalize_attributes(item)


def to_plain(value: Any) -> Any:
    """Integral Decimals become int, Binary becomes bytes; containers are walked."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else value
    if isinstance(value, _boto3().binary):
        return value.__bytes__()
    if isinstance(value, dict):
        return {key: to_plain(member) for key, member in value.items()}
    if isinstance(value, list):
        return [to_plain(member) for member in value]
    if isinstance(value, (set, frozenset)):
        return {to_plain(member) for member in value}
    return value


# -- internals ----------------------------------------------------------------------------------


def _is_string_set(value: Any) -> bool:
    kind = type(value)
    return (
        (kind is set or kind is frozenset)
        and bool(value)
        and all(type(member) is str for member in value)
    )


def _number(text: str) -> Any:
    digits = text[1:] if text[:1] == "-" else text
    if digits.isascii() and digits.isdigit() and len(digits) <= _MAX_INT_DIGITS:
        return int(text)
    return to_plain(_boto3().deserializer.deserialize({"N": text}))


def _serialize_with_boto3(value: Any) -> dict[str, Any]:
    _refuse_unstorable(value)
    try:
        return dict(_boto3().serializer.serialize(value))
    except (TypeError, ArithmeticError) as error:
        # float, 40-digit numbers, objects: DynamoDB has no type for them.
        raise InvalidInput(f"DynamoDB cannot store this value: {error}") from error


def _refuse_unstorable(value: Any) -> None:
    """What boto3 would let through but DynamoDB refuses: empty sets, and the infinities
    and NaNs boto3 misses (it refuses only the positive, quiet ones)."""
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise InvalidInput(f"DynamoDB cannot store the number {value}")
    elif isinstance(value, Set):  # set, frozenset, and other set-likes boto3 takes as sets
        if not value:
            raise InvalidInput("DynamoDB cannot store an empty set")
        for member in value:
            _refuse_unstorable(member)
    elif isinstance(value, Mapping):
        for member in value.values():
            _refuse_unstorable(member)
    elif isinstance(value, (list, tuple)):
        for member in value:
            _refuse_unstorable(member)


def _check_size(item: Mapping[str, Any]) -> None:
    size = item_size(item)
    if size > MAX_ITEM_BYTES:
        raise TransactionError(
            f"the item is {size:,} bytes; DynamoDB's limit is {MAX_ITEM_BYTES:,} bytes"
        )
