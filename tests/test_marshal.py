"""The direct marshalling path (no TypeSerializer round trip for the common types) turns
every value into exactly what boto3's TypeSerializer/TypeDeserializer would, and refuses
exactly what they refuse, plus what DynamoDB refuses and boto3 lets through (empty sets,
infinities and NaNs of either sign)."""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping, Set
from decimal import Decimal
from typing import Any

import pytest
from boto3.dynamodb.types import Binary, TypeDeserializer, TypeSerializer
from hypothesis import given, settings
from hypothesis import strategies as st

from enrollkit import InMemoryPersistence, InvalidInput, KeyPair
from enrollkit.persistence.marshal import (
    deserialize_item,
    deserialize_value,
    normalize_attributes,
    normalize_plain_attributes,
    normalize_value,
    serialize_value,
    to_plain,
)

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


class Colour(str, enum.Enum):
    RED = "red"


class Size(enum.IntEnum):
    LARGE = 3


# -- the reference: boto3's own round trip, and DynamoDB's extra refusals ---------------------


def dynamodb_refuses(value: Any) -> bool:
    """What DynamoDB refuses though boto3 serializes it: empty sets, non-finite numbers."""
    if isinstance(value, Decimal):
        return not value.is_finite()
    if isinstance(value, Set):
        return not value or any(dynamodb_refuses(member) for member in value)
    if isinstance(value, Mapping):
        return any(dynamodb_refuses(member) for member in value.values())
    if isinstance(value, (list, tuple)):
        return any(dynamodb_refuses(member) for member in value)
    return False


def boto3_wire(value: Any) -> dict[str, Any]:
    """TypeSerializer's answer, with its refusals as InvalidInput."""
    if dynamodb_refuses(value):
        raise InvalidInput("refused")
    try:
        return dict(_serializer.serialize(value))
    except (TypeError, ArithmeticError) as error:
        raise InvalidInput("refused") from error


def boto3_normalized(value: Any) -> Any:
    return to_plain(_deserializer.deserialize(boto3_wire(value)))  # type: ignore[arg-type]


def canonical(value: Any) -> Any:
    """Equal exactly when the values are equal AND of the same types, all the way down
    (1 == Decimal(1) == True, but DynamoDB tells them apart)."""
    if isinstance(value, dict):
        return ("dict", sorted((repr(k), canonical(v)) for k, v in value.items()))
    if isinstance(value, list):
        return ("list", [canonical(member) for member in value])
    if isinstance(value, (set, frozenset)):
        return (type(value).__name__, sorted(repr(canonical(member)) for member in value))
    if isinstance(value, Decimal):
        return ("Decimal", str(value))
    return (type(value).__name__, value)


def outcome(function: Callable[[Any], Any], value: Any) -> Any:
    try:
        return canonical(function(value))
    except InvalidInput:
        return "refused"


def wire_canonical(wire: Any) -> Any:
    """DynamoDB JSON with set members in a fixed order (a set's order is not)."""
    if isinstance(wire, dict):
        return {
            tag: sorted(payload, key=repr) if tag in ("SS", "NS", "BS") else wire_canonical(payload)
            for tag, payload in wire.items()
        }
    if isinstance(wire, list):
        return [wire_canonical(member) for member in wire]
    return wire


# -- generated values: everything DynamoDB stores, and much that it refuses -------------------

numbers = st.one_of(
    st.integers(),
    st.integers(min_value=-(10**38), max_value=10**38),
    st.sampled_from([10**38, 10**38 - 1, -(10**38), -(10**38) + 1, 10**40, 0]),
    st.decimals(allow_nan=True, allow_infinity=True),
    st.decimals(allow_nan=False, allow_infinity=False, places=3),
    st.sampled_from(
        [Decimal("-Infinity"), Decimal("-NaN"), Decimal("sNaN"), Decimal("1.50"), Decimal("-0")]
    ),
    st.sampled_from([Decimal("1E+2"), Decimal("1E-130"), Decimal("1E+126"), Decimal("9E+200")]),
    st.floats(allow_nan=True),
)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    numbers,
    st.text(max_size=8),
    st.binary(max_size=8),
    st.binary(max_size=8).map(bytearray),
    st.binary(max_size=8).map(Binary),
    st.sampled_from([Colour.RED, Size.LARGE, object(), 1j]),
)
set_members = st.one_of(
    st.integers(-(10**40), 10**40), st.text(max_size=4), st.binary(max_size=4), st.floats()
)
sets = st.one_of(
    st.sets(set_members, max_size=4),
    st.frozensets(st.text(max_size=4), max_size=4),
    st.sets(st.text(max_size=4), min_size=1, max_size=4),
    st.sets(st.decimals(allow_nan=False), max_size=3),
)
values = st.recursive(
    st.one_of(scalars, sets),
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.lists(children, max_size=3).map(tuple),
        st.dictionaries(st.text(max_size=4), children, max_size=4),
        st.dictionaries(st.integers(0, 5), children, max_size=2),
    ),
    max_leaves=12,
)


@settings(max_examples=500)
@given(values)
def test_normalize_is_boto3s_round_trip(value: Any) -> None:
    assert outcome(normalize_value, value) == outcome(boto3_normalized, value)


@settings(max_examples=500)
@given(st.dictionaries(st.text(max_size=4), values, max_size=5))
def test_plain_normalizing_is_normalizing_of_items_stored_as_written(item: dict[str, Any]) -> None:
    """The embedded backend's token memory keeps an item's stored copy in place of the item
    as written only when normalize_plain_attributes gave it: so its result must be what
    normalizing gives, and as written to the last digit (DynamoDB compares a replayed
    request's numbers as written: Decimal("1.0") is not 1, though it is stored as 1)."""
    plain = normalize_plain_attributes(item)
    if plain is None:
        return
    assert canonical(plain) == outcome(normalize_attributes, item)
    for name, value in item.items():
        assert wire_canonical(serialize_value(plain[name])) == wire_canonical(boto3_wire(value))


def test_plain_normalizing_declines_values_stored_otherwise_than_written() -> None:
    for value in (Decimal("1.0"), Decimal(1), {"k": [Decimal("2")]}, (1,), b"x", {1, 2}, set()):
        assert normalize_plain_attributes({"v": value}) is None
    assert normalize_plain_attributes({"v": {"k": [1, "a", True, None, {"s"}]}}) == {
        "v": {"k": [1, "a", True, None, {"s"}]}
    }


@settings(max_examples=500)
@given(values)
def test_serialize_is_boto3s_type_serializer(value: Any) -> None:
    def ours(value: Any) -> Any:
        return wire_canonical(serialize_value(value))

    def theirs(value: Any) -> Any:
        return wire_canonical(boto3_wire(value))

    try:
        expected: Any = theirs(value)
    except InvalidInput:
        expected = "refused"
    try:
        actual: Any = ours(value)
    except InvalidInput:
        actual = "refused"
    assert actual == expected


@settings(max_examples=300)
@given(values)
def test_deserialize_is_boto3s_type_deserializer(value: Any) -> None:
    try:
        wire = boto3_wire(value)
    except InvalidInput:
        return
    expected = canonical(to_plain(_deserializer.deserialize(wire)))  # type: ignore[arg-type]
    assert canonical(deserialize_value(wire)) == expected


@settings(max_examples=300)
@given(st.dictionaries(st.text(max_size=4), values, max_size=6))
def test_deserialize_item_is_boto3s_type_deserializer(item: dict[str, Any]) -> None:
    try:
        wire = {name: boto3_wire(value) for name, value in item.items()}
    except InvalidInput:
        return
    expected = {
        name: canonical(to_plain(_deserializer.deserialize(value)))  # type: ignore[arg-type]
        for name, value in wire.items()
    }
    actual = {name: canonical(value) for name, value in deserialize_item(wire).items()}
    assert actual == expected


@pytest.mark.parametrize(
    "value",
    [
        1.5,
        float("nan"),
        Decimal("NaN"),
        Decimal("-NaN"),
        Decimal("Infinity"),
        Decimal("-Infinity"),
        10**38,
        -(10**38),
        set(),
        frozenset(),
        {"nested": [set()]},
        pytest.param({1, "a"}, id="mixed-set"),
        pytest.param(object(), id="object"),
        [1, 2.5],
    ],
    ids=repr,
)
def test_values_dynamodb_cannot_store_are_refused(value: Any) -> None:
    with pytest.raises(InvalidInput):
        normalize_value(value)
    with pytest.raises(InvalidInput):
        serialize_value(value)


def test_values_come_back_as_dynamodb_returns_them() -> None:
    assert normalize_value(10**38 - 1) == 10**38 - 1
    # boto3 passes a str subclass through as it is, and an int subclass through its digits.
    assert normalize_value(Colour.RED) == "red"
    assert type(normalize_value(Size.LARGE)) is int
    assert normalize_value(("a", 1)) == ["a", 1]
    assert normalize_value(frozenset({"a"})) == {"a"}
    assert type(normalize_value(frozenset({"a"}))) is set
    assert normalize_value(Decimal("2.0E+1")) == 20
    assert str(normalize_value(Decimal("1.50"))) == "1.50"
    assert normalize_value(bytearray(b"x")) == b"x"


def test_normalized_values_are_copies() -> None:
    original = {"m": {"l": [1, {"s": {"a"}}]}}
    normalized = normalize_value(original)
    normalized["m"]["l"][1]["s"].add("b")
    normalized["m"]["l"].append(2)
    assert original == {"m": {"l": [1, {"s": {"a"}}]}}


def test_embedded_reads_return_copies_the_caller_may_change() -> None:
    store = InMemoryPersistence()
    store.put_item({"id": "e", "sk": "0", "m": {"l": [1]}, "s": {"a"}})
    read = store.get_item(KeyPair(pk="e", sk="0"))
    assert read is not None
    read["m"]["l"].append(2)
    read["s"].add("b")
    read["new"] = 1
    queried = store.query("e")[0]
    queried["m"]["l"].append(3)
    assert store.get_item(KeyPair(pk="e", sk="0")) == {
        "id": "e",
        "sk": "0",
        "m": {"l": [1]},
        "s": {"a"},
    }
