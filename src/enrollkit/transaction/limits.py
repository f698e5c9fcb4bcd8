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
    "EXACT_INT_BOUND",
    "MAX_ITEM_BYTES",
    "MAX_PARTITION_KEY_BYTES",
    "MAX_SORT_KEY_BYTES",
    "MAX_TRANSACTION_BYTES",
    "MAX_TRANSACTION_OPERATIONS",
    "item_size",
    "names_size",
    "sized_snapshot",
    "value_size",
]

# DynamoDB's numbers: zero, or a magnitude from 1E-130 to 9.99...E+125 (38 digits; boto3's
# serializer checks the digits, and lets exponents up to E+126 and below E-130 through).
MIN_NUMBER_EXPONENT = -130
MAX_NUMBER_EXPONENT = 125
# An int below this in magnitude has at most 38 digits: DynamoDB stores it exactly (a
# larger one is refused or rounded), so it reads back as the same int.
EXACT_INT_BOUND = 10**38


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
    else:  # (counted on the digits: normalize() would round past 28 digits)
        significant = len("".join(map(str, value.as_tuple().digits)).strip("0")) or 1
    return (significant + 1) // 2 + 1


def value_size(value: Any) -> int:
    """The size DynamoDB counts for one attribute value, in bytes."""
    if type(value) is str:  # the common case first; an ASCII string is one byte per character
        return len(value) if value.isascii() else len(value.encode())
    return _sized_copy(value)[1]


def item_size(item: Mapping[str, Any]) -> int:
    """The size DynamoDB counts for an item: names plus values. TransactionError for a name
    DynamoDB refuses (its own or a map's, at any depth): one that is empty or no string."""
    return sized_snapshot(item)[1]


def sized_snapshot(attributes: Mapping[str, Any]) -> tuple[dict[str, Any], int, bool]:
    """A copy of an item (or an update's assignments) that shares no mutable container with
    it, at any depth, its size as :func:`item_size` counts and checks it, and whether it is
    plain: one walk.

    Dicts, lists, sets and bytearrays are copied (other mappings become dicts, as DynamoDB
    gives them back; a tuple becomes a tuple of copies); every other value is immutable,
    or no value DynamoDB stores, and is shared. The transaction builder keeps this copy, so
    what it sized is what it sends, whatever the caller changes afterwards.

    Plain: every value is of the types a backend reads back exactly as written (``str``,
    ``bool``, ``None``, an ``int`` of at most 38 digits, ``dict`` and ``list`` of those, a
    non-empty ``set`` of ``str``), so the copy is already what a read returns (the embedded
    backend stores it as it is).

    (A map value at any depth is copied and sized by this function too.)"""
    # A C copy: most values are strings, kept as they are; each value that is not a string
    # is then replaced, in the copy, by its own copy.
    entries = dict(attributes)
    size = 0
    plain = True
    for name, value in entries.items():
        if type(name) is not str:
            _check_name(name)
        size += len(name) if name.isascii() else len(name.encode())
        if type(value) is str:  # most values: no call
            size += len(value) if value.isascii() else len(value.encode())
        elif type(value) is int:  # the next most (ttl, counts): nothing to copy
            size += _number_size(value)
            plain = plain and -EXACT_INT_BOUND < value < EXACT_INT_BOUND
        else:
            # (Replacing the value of a key while iterating changes no dict's size: allowed.)
            entries[name], value_bytes, value_plain = _sized_copy(value)
            size += value_bytes
            plain = plain and value_plain
    if "" in entries:
        _check_name("")
    return entries, size, plain


def _sized_copy(value: Any) -> tuple[Any, int, bool]:
    """One value that is not a ``str``: its copy (itself when immutable), its size, and
    whether it is plain."""
    if type(value) is dict:
        entries, size, plain = sized_snapshot(value)
        # 3 bytes, plus each entry's name, value and 1 byte.
        return entries, 3 + len(entries) + size, plain
    if type(value) is set:  # (enrollkit's own items hold sets of strings)
        members = set(value)
        return members, _set_size(members), bool(members) and all(type(m) is str for m in members)
    if type(value) is int:
        return value, _number_size(value), -EXACT_INT_BOUND < value < EXACT_INT_BOUND
    if type(value) is list:
        copied = list(value)
        size, plain = _list_size(copied)
        return copied, size, plain
    if value is None or type(value) is bool:
        return value, 1, True
    return (*_sized_copy_of_other(value), False)


def _sized_copy_of_other(value: Any) -> tuple[Any, int]:
    """A value of none of the plain types: its copy and its size."""
    if isinstance(value, str):
        return value, len(value.encode())
    if isinstance(value, bytes):
        return value, len(value)
    if isinstance(value, bytearray):
        return bytearray(value), len(value)
    if isinstance(value, (int, Decimal)):
        return value, _number_size(value)
    copied: Any
    if isinstance(value, Mapping):
        copied, size, _ = sized_snapshot(value)
        return copied, 3 + len(copied) + size
    if isinstance(value, (list, tuple)):
        copied = list(value)
        size = _list_size(copied)[0]
        return (copied if isinstance(value, list) else tuple(copied)), size
    if isinstance(value, (set, frozenset)):
        # Members are hashable, so immutable: a frozenset is shared, a set copied.
        copied = value if isinstance(value, frozenset) else set(value)
        return copied, _set_size(copied)
    if hasattr(type(value), "__bytes__"):  # boto3's Binary: its bytes
        return value, len(bytes(value))
    return value, len(str(value).encode())


def _set_size(members: Iterable[Any]) -> int:
    """The size of a set's members (hashable, so immutable): their values' sizes."""
    size = 0
    for member in members:
        if type(member) is str:
            size += len(member) if member.isascii() else len(member.encode())
        else:
            size += _sized_copy(member)[1]
    return size


def _list_size(members: list[Any]) -> tuple[int, bool]:
    """The size of a fresh list copy: 3 bytes, plus each member's value and 1 byte, and
    whether its members are plain; each member that is not a string is replaced, in
    ``members``, by its own copy."""
    size = 3 + len(members)
    plain = True
    for index, member in enumerate(members):
        if type(member) is str:
            size += len(member) if member.isascii() else len(member.encode())
        else:
            members[index], member_bytes, member_plain = _sized_copy(member)
            size += member_bytes
            plain = plain and member_plain
    return size, plain


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
