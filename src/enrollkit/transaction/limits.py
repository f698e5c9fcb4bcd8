"""DynamoDB's limits on one TransactWriteItems request, and item sizes (pure).

The builder checks these before sending, so DynamoDB and the embedded backend
refuse the same requests, with the same typed error, before anything is written.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

from enrollkit.errors import TransactionError
from enrollkit.layout.table import MAX_PARTITION_KEY_BYTES, MAX_SORT_KEY_BYTES

MAX_TRANSACTION_OPERATIONS = 100
MAX_TRANSACTION_BYTES = 4 * 1024 * 1024
MAX_ITEM_BYTES = 400 * 1024

__all__ = [
    "MAX_ITEM_BYTES",
    "MAX_PARTITION_KEY_BYTES",
    "MAX_SORT_KEY_BYTES",
    "MAX_TRANSACTION_BYTES",
    "MAX_TRANSACTION_OPERATIONS",
    "item_size",
    "names_size",
    "value_size",
]

# DynamoDB's numbers: zero, or a magnitude from 1E-130 to 9.99...E+125 (38 digits; boto3's
# serializer checks the digits, and lets exponents up to E+126 and below E-130 through).
MIN_NUMBER_EXPONENT = -130
MAX_NUMBER_EXPONENT = 125


def holds_unstorable_number(value: Any) -> bool:
    """Whether ``value`` is, or contains, a number outside DynamoDB's range."""
    if isinstance(value, bool):
        return False
    if isinstance(value, (int, Decimal)):
        return bool(value) and not (
            MIN_NUMBER_EXPONENT <= Decimal(value).adjusted() <= MAX_NUMBER_EXPONENT
        )
    if isinstance(value, Mapping):
        return any(holds_unstorable_number(member) for member in value.values())
    if isinstance(value, (list, tuple, set, frozenset)):
        return any(holds_unstorable_number(member) for member in value)
    return False


def _number_size(value: int | Decimal) -> int:
    # DynamoDB: about one byte per two significant digits, plus one.
    if isinstance(value, int):  # the common case (ttl, counts), without Decimal
        significant = len(str(abs(value)).rstrip("0")) or 1
    else:
        significant = len(value.normalize().as_tuple().digits)
    return (significant + 1) // 2 + 1


def value_size(value: Any) -> int:
    """The size DynamoDB counts for one attribute value, in bytes."""
    kind = type(value)
    if kind is str:  # the common case first; an ASCII string is one byte per character
        return len(value) if value.isascii() else len(value.encode())
    if kind is int:
        return _number_size(value)
    if kind is dict:
        return _map_size(value)
    return _other_value_size(value)


def _map_size(value: Mapping[Any, Any]) -> int:
    # 3 bytes, plus each entry's name, value and 1 byte.
    size = 3 + len(value)
    for name, member in value.items():
        if type(name) is not str:
            _check_name(name)
        size += len(name) if name.isascii() else len(name.encode())
        if type(member) is str:
            size += len(member) if member.isascii() else len(member.encode())
        else:
            size += value_size(member)
    if "" in value:
        _check_name("")
    return size


def _other_value_size(value: Any) -> int:
    if value is None or isinstance(value, bool):
        return 1
    if isinstance(value, str):
        return len(value.encode())
    if isinstance(value, (bytes, bytearray)):
        return len(value)
    if isinstance(value, (int, Decimal)):
        return _number_size(value)
    if isinstance(value, Mapping):
        return _map_size(value)
    if isinstance(value, (list, tuple)):
        return 3 + sum(value_size(v) + 1 for v in value)
    if isinstance(value, (set, frozenset)):
        return sum(value_size(v) for v in value)
    return len(str(value).encode())


def item_size(item: Mapping[str, Any]) -> int:
    """The size DynamoDB counts for an item: names plus values. TransactionError for a name
    DynamoDB refuses (its own or a map's, at any depth): one that is empty or no string."""
    size = 0
    for name, value in item.items():
        if type(name) is not str:
            _check_name(name)
        size += len(name) if name.isascii() else len(name.encode())
        if type(value) is str:  # most values: no call
            size += len(value) if value.isascii() else len(value.encode())
        else:
            size += value_size(value)
    if "" in item:
        _check_name("")
    return size


def names_size(names: Iterable[str]) -> int:
    """The size of attribute names alone (an update's removals), each checked as
    :func:`item_size` checks names."""
    size = 0
    for name in names:
        if type(name) is not str or not name:
            _check_name(name)
        size += len(name) if name.isascii() else len(name.encode())
    return size


def _check_name(name: object) -> None:
    """Refuse an attribute or map key name DynamoDB refuses: an empty one ("Empty attribute
    name", ValidationException) or one that is not a string (botocore's parameter check)."""
    if not isinstance(name, str):
        raise TransactionError(
            f"DynamoDB's attribute and map key names are strings, not {type(name).__name__}"
        )
    if not name:
        raise TransactionError("DynamoDB refuses an empty attribute or map key name")
