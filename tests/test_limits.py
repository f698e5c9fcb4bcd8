"""Item sizes, and the builder's snapshot of what it sends: :func:`sized_snapshot` copies
an item at every depth and sizes it in the same walk, as DynamoDB counts item size."""

from __future__ import annotations

import copy
from decimal import Decimal
from types import MappingProxyType
from typing import Any

import pytest
from boto3.dynamodb.types import Binary, TypeSerializer
from hypothesis import given, settings
from hypothesis import strategies as st

from enrollkit.errors import TransactionError
from enrollkit.persistence.marshal import normalize_plain_attributes
from enrollkit.transaction.limits import item_size, sized_snapshot, value_size

_serializer = TypeSerializer()
MUTABLE = (dict, list, set, bytearray)


# -- the reference: DynamoDB's item size, counted on boto3's DynamoDB JSON ---------------------


def wire_number_size(number: str) -> int:
    """1 byte per 2 significant digits (leading and trailing zeros left out), plus 1."""
    digits = "".join(map(str, Decimal(number).as_tuple().digits)).strip("0") or "0"
    return (len(digits) + 1) // 2 + 1


def wire_value_size(wire: dict[str, Any]) -> int:
    ((tag, payload),) = wire.items()
    if tag == "S":
        return len(payload.encode())
    if tag == "N":
        return wire_number_size(payload)
    if tag == "B":
        return len(payload)
    if tag in ("BOOL", "NULL"):
        return 1
    if tag == "SS":
        return sum(len(member.encode()) for member in payload)
    if tag == "NS":
        return sum(wire_number_size(member) for member in payload)
    if tag == "BS":
        return sum(len(member) for member in payload)
    if tag == "L":  # 3 bytes, plus 1 a member
        return 3 + sum(wire_value_size(member) + 1 for member in payload)
    assert tag == "M"  # 3 bytes, plus 1 an entry
    return 3 + wire_item_size(payload) + len(payload)


def wire_item_size(attributes: dict[str, Any]) -> int:
    return sum(len(name.encode()) + wire_value_size(value) for name, value in attributes.items())


# -- generated items: the values DynamoDB stores, nested ---------------------------------------

names = st.text(min_size=1, max_size=4)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.text(max_size=6),
    st.integers(-(10**37), 10**37),
    st.decimals(min_value=-(10**6), max_value=10**6, places=3),
    st.binary(max_size=6),
    st.binary(max_size=6).map(bytearray),
)
sets = st.one_of(
    st.sets(st.text(max_size=4), min_size=1, max_size=4),
    st.sets(st.integers(-(10**9), 10**9), min_size=1, max_size=4),
    st.frozensets(st.binary(max_size=4), min_size=1, max_size=3),
)
values = st.recursive(
    st.one_of(scalars, sets),
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.lists(children, max_size=3).map(tuple),
        st.dictionaries(names, children, max_size=4),
    ),
    max_leaves=16,
)
items = st.dictionaries(names, values, max_size=6)


def containers(value: Any) -> list[Any]:
    """Every container reachable from ``value``, itself included."""
    found = [value] if isinstance(value, (*MUTABLE, tuple, frozenset)) else []
    if isinstance(value, dict):
        members: Any = value.values()
    elif isinstance(value, (list, tuple, set, frozenset)):
        members = value
    else:
        return found
    for member in members:
        found.extend(containers(member))
    return found


def mutable_ids(value: Any) -> set[int]:
    return {id(found) for found in containers(value) if isinstance(found, MUTABLE)}


# -- sizes -------------------------------------------------------------------------------------


@settings(max_examples=300)
@given(items)
def test_the_snapshots_size_is_dynamodbs_item_size(item: dict[str, Any]) -> None:
    wire = {name: _serializer.serialize(value) for name, value in item.items()}
    assert sized_snapshot(item)[1] == wire_item_size(wire) == item_size(item)


@pytest.mark.parametrize(
    ("item", "size"),
    [
        ({"id": "a", "sk": "b"}, 2 + 1 + 2 + 1),
        ({"n": 0, "m": 100, "d": Decimal("-1.25")}, 1 + 2 + 1 + 2 + 1 + 3),
        ({"m": {"x": "yz"}}, 1 + 3 + (1 + 2 + 1)),
        ({"l": ["ab", 1, None]}, 1 + 3 + (2 + 1) + (2 + 1) + (1 + 1)),
        ({"s": {"ab", "c"}, "é": "é"}, 1 + 3 + 2 + 2),
        ({"b": bytearray(b"abc"), "t": ("a",)}, 1 + 3 + 1 + 3 + 2),
    ],
)
def test_sizes_of_known_items(item: dict[str, Any], size: int) -> None:
    assert sized_snapshot(item)[1] == size == item_size(item)


def test_value_size_counts_a_value_alone() -> None:
    assert value_size("é") == 2
    assert value_size({"x": ["y"]}) == 3 + 1 + (3 + 1 + 1) + 1


@pytest.mark.parametrize(
    "attributes",
    [{"": "x"}, {"m": {"": "x"}}, {"l": [{"": "x"}]}, {1: "x"}, {"m": {b"n": "x"}}],
    ids=["empty name", "empty map key", "empty key in a list", "int name", "bytes map key"],
)
def test_a_name_dynamodb_refuses_is_refused_at_any_depth(attributes: dict[Any, Any]) -> None:
    with pytest.raises(TransactionError, match="name"):
        sized_snapshot(attributes)


# -- the snapshot ------------------------------------------------------------------------------


@settings(max_examples=300)
@given(items)
def test_the_snapshot_is_equal_and_shares_no_mutable_container(item: dict[str, Any]) -> None:
    as_given = copy.deepcopy(item)
    snapshot, _, _ = sized_snapshot(item)
    assert snapshot == as_given
    assert [type(found) for found in containers(snapshot)] == [
        type(found) for found in containers(item)
    ]
    assert not mutable_ids(snapshot) & mutable_ids(item)
    assert id(snapshot) != id(item)


@settings(max_examples=200)
@given(items)
def test_changing_the_item_afterwards_changes_neither_snapshot_nor_size(
    item: dict[str, Any],
) -> None:
    snapshot, size, _ = sized_snapshot(item)
    as_snapshot = copy.deepcopy(snapshot)
    for found in containers(item):
        if isinstance(found, dict):
            found["added"] = "x" * 100
        elif isinstance(found, (list, bytearray)):
            found.clear()
        elif isinstance(found, set):
            found.add(-1 if all(isinstance(member, int) for member in found) else "added")
    assert snapshot == as_snapshot
    assert item_size(snapshot) == size


def test_immutable_values_are_shared_and_containers_keep_their_kind() -> None:
    text, number, blob, frozen = "s" * 10, Decimal("1.5"), b"b", frozenset({"f"})
    inner = [{"k": "v"}]
    item = {
        "text": text,
        "number": number,
        "blob": blob,
        "frozen": frozen,
        "tuple": (inner, "t"),
        "buffer": bytearray(b"ab"),
        "proxy": MappingProxyType({"m": ["x"]}),
    }
    snapshot, _, _ = sized_snapshot(item)
    for name in ("text", "number", "blob", "frozen"):
        assert snapshot[name] is item[name]
    assert type(snapshot["tuple"]) is tuple
    assert snapshot["tuple"] == (inner, "t")
    assert snapshot["tuple"][0] is not inner
    assert snapshot["tuple"][0][0] is not inner[0]
    assert type(snapshot["buffer"]) is bytearray
    assert snapshot["buffer"] == b"ab"
    assert snapshot["buffer"] is not item["buffer"]
    # Another mapping becomes a dict (DynamoDB stores and gives back a map either way).
    assert snapshot["proxy"] == {"m": ["x"]}
    assert type(snapshot["proxy"]) is dict
    assert snapshot["proxy"]["m"] is not item["proxy"]["m"]


# -- plain values --------------------------------------------------------------------------------


def kinds(value: Any) -> Any:
    """``value``'s types, at every depth."""
    if isinstance(value, dict):
        return (dict, {name: kinds(member) for name, member in value.items()})
    if isinstance(value, (list, tuple)):
        return (type(value), [kinds(member) for member in value])
    return type(value)


@settings(max_examples=300)
@given(items)
def test_a_plain_snapshot_is_what_a_read_returns(item: dict[str, Any]) -> None:
    """Plain means: the embedded backend may keep the snapshot as it is, for it equals, type
    for type, the values as the backend normalizes them for a read."""
    snapshot, _, plain = sized_snapshot(item)
    normalized = normalize_plain_attributes(item)
    if plain:
        assert normalized is not None
        assert (normalized, kinds(normalized)) == (snapshot, kinds(snapshot))


@pytest.mark.parametrize(
    "value",
    [
        Decimal("1"),
        10**38,
        -(10**38),
        frozenset({"f"}),
        ("a",),
        set(),
        {1, 2},
        b"b",
        bytearray(b"b"),
        MappingProxyType({"k": "v"}),
        {"nested": Decimal("1.5")},
        [["deep", 10**40]],
    ],
    ids=repr,
)
def test_values_that_read_back_otherwise_are_not_plain(value: Any) -> None:
    assert sized_snapshot({"v": value})[2] is False


def test_plain_values_are_plain() -> None:
    item = {
        "s": "x",
        "n": 10**38 - 1,
        "negative": -(10**38) + 1,
        "flag": True,
        "nothing": None,
        "map": {"list": [1, "two", {"three": [None]}]},
        "tags": {"a", "b"},
    }
    assert sized_snapshot(item)[2] is True


# -- numbers and binaries the walk used to miscount -----------------------------------------------


@pytest.mark.parametrize(
    "number",
    [
        "1.000000000000000000000000000000000001",  # 38 significant digits
        "12345678901234567890123456789",  # 29: past the default context's 28
        "-9.9999999999999999999999999999999999999E+125",
        "1000000000000000000000000000000000000000",
    ],
)
def test_a_decimal_of_more_than_28_digits_is_counted_on_all_its_digits(number: str) -> None:
    assert value_size(Decimal(number)) == wire_number_size(number)


def test_a_boto3_binary_is_counted_as_its_bytes() -> None:
    assert value_size(Binary(b"abc")) == 3
    assert item_size({"id": "a", "b": Binary(b"abc")}) == len("id") + 1 + len("b") + 3
