"""The DynamoDB backend's ConditionExpressions, built by boto3 once per condition shape, are
exactly what boto3's ConditionExpressionBuilder builds for each condition: the expression,
the name placeholders, and each value behind the placeholder boto3 gives it, for conditions
met for the first time and for conditions whose shape was built before."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from boto3.dynamodb.conditions import Attr, ConditionBase, ConditionExpressionBuilder, Key
from hypothesis import given, settings
from hypothesis import strategies as st

from enrollkit import KeyPair
from enrollkit.persistence import expressions
from enrollkit.persistence.dynamodb import transact_items
from enrollkit.persistence.expressions import add_condition
from enrollkit.persistence.marshal import serialize_value
from enrollkit.transaction.operations import ConditionCheck, Put, Update


def boto3s(condition: ConditionBase) -> tuple[str, dict[str, str], list[tuple[str, Any]]]:
    built = ConditionExpressionBuilder().build_expression(condition)
    return (
        built.condition_expression,
        dict(built.attribute_name_placeholders),
        [
            (placeholder, serialize_value(value))
            for placeholder, value in built.attribute_value_placeholders.items()
        ],
    )


def ours(condition: ConditionBase) -> tuple[str, dict[str, str], list[tuple[str, Any]]]:
    names: dict[str, str] = {}
    values: dict[str, Any] = {}
    expression = add_condition(condition, names, values)
    return expression, names, list(values.items())


# -- generated conditions: every operator, nested, on plain and nested attribute paths ---------

names = st.one_of(
    st.sampled_from(["id", "sk", "ttl", "status", "a.b", "l[0]", "m.l[2].x", "n"]),
    st.text(st.characters(blacklist_characters=".[]"), min_size=1, max_size=4),
)
# (distinct values of one type too, so that values put behind the wrong placeholder show)
literals = st.one_of(st.integers(-(10**30), 10**30), st.text(max_size=3), st.booleans(), st.none())
attributes = names.map(Attr)
sizes = attributes.map(lambda a: a.size())
operands = st.one_of(attributes, sizes)


def comparisons() -> st.SearchStrategy[ConditionBase]:
    def compare(method: str) -> Callable[[Any, Any], ConditionBase]:
        return lambda subject, value: getattr(subject, method)(value)

    on_attributes = st.sampled_from(["eq", "ne", "lt", "lte", "gt", "gte"]).map(compare)
    on_sizes = st.sampled_from(["eq", "lt", "lte", "gt", "gte"]).map(compare)  # (no ne)
    right = st.one_of(literals, attributes)
    return st.one_of(
        st.builds(lambda f, s, v: f(s, v), on_attributes, attributes, right),
        st.builds(lambda f, s, v: f(s, v), on_sizes, sizes, right),
        st.builds(lambda s, low, high: s.between(low, high), operands, literals, literals),
        st.builds(lambda a, v: a.begins_with(v), attributes, literals),
        st.builds(lambda a, v: a.contains(v), attributes, literals),
        st.builds(lambda a, vs: a.is_in(vs), attributes, st.lists(literals, max_size=4)),
        st.builds(lambda a, t: a.attribute_type(t), attributes, st.sampled_from(["S", "N"])),
        attributes.map(lambda a: a.exists()),
        attributes.map(lambda a: a.not_exists()),
    )


conditions = st.recursive(
    comparisons(),
    lambda children: st.one_of(
        st.builds(lambda a, b: a & b, children, children),
        st.builds(lambda a, b: a | b, children, children),
        children.map(lambda c: ~c),
    ),
    max_leaves=6,
)


@settings(max_examples=400)
@given(conditions)
def test_a_condition_gets_boto3s_expression_first_time_and_from_the_cache(
    condition: ConditionBase,
) -> None:
    expected = boto3s(condition)
    assert ours(condition) == expected  # built (or already cached by an earlier example)
    assert ours(condition) == expected  # from the cache


@settings(max_examples=300)
@given(st.data())
def test_conditions_of_one_shape_each_get_their_own_values(data: st.DataObject) -> None:
    """The same shape with other values (and other names, which are part of the shape)."""
    build = data.draw(st.sampled_from(SHAPES))
    first = build(data.draw(names), data.draw(literals), data.draw(literals))
    second = build(data.draw(names), data.draw(literals), data.draw(literals))
    assert ours(first) == boto3s(first)
    assert ours(second) == boto3s(second)


SHAPES: list[Callable[[str, Any, Any], ConditionBase]] = [
    lambda name, x, y: Attr(name).eq(x),
    lambda name, x, y: Attr("sk").exists() & (Attr(name).not_exists() | Attr(name).gt(x)),
    lambda name, x, y: Attr(name).is_in([x, y]) & Attr("t").eq(y),
    lambda name, x, y: Attr(name).between(x, y) | ~Attr(name).size().lt(y),
    lambda name, x, y: Attr(name).not_exists() | Attr(name).eq(x),
]


def test_in_with_another_number_of_values_is_another_shape() -> None:
    one, three = Attr("s").is_in(["a"]), Attr("s").is_in(["a", "b", "c"])
    assert ours(one) == boto3s(one)
    assert ours(three) == boto3s(three)
    assert len(ours(three)[2]) == 3


def test_in_over_a_generator_is_built_by_boto3_from_all_its_values() -> None:
    """The walk must not read up a one-shot iterable before boto3 builds it."""
    condition = Attr("s").is_in(value for value in ["a", "b"])
    assert ours(condition) == (
        "#n0 IN (:v0, :v1)",
        {"#n0": "s"},
        [(":v0", {"S": "a"}), (":v1", {"S": "b"})],
    )


def test_a_key_attribute_and_a_plain_one_are_other_shapes() -> None:
    assert ours(Key("k").eq(1)) == boto3s(Key("k").eq(1))
    assert ours(Attr("k").eq(2)) == boto3s(Attr("k").eq(2))


def test_not_a_condition_is_refused_as_boto3_refuses_it() -> None:
    with pytest.raises(Exception) as theirs:
        ConditionExpressionBuilder().build_expression("id = 1")  # type: ignore[arg-type]
    with pytest.raises(type(theirs.value)):
        add_condition("id = 1", {}, {})  # type: ignore[arg-type]


def test_the_cache_is_bounded() -> None:
    for number in range(expressions.MAX_CACHED_SHAPES + 50):
        add_condition(Attr(f"attribute-{number}").eq(number), {}, {})
    assert len(expressions._compiled) <= expressions.MAX_CACHED_SHAPES
    # The newest shapes are kept.
    assert ours(Attr("newest").eq(1)) == boto3s(Attr("newest").eq(1))


def test_each_request_has_its_own_name_and_value_maps() -> None:
    """Changing one request (as a botocore handler may) changes no later request."""
    check = ConditionCheck("t", KeyPair(pk="p", sk="s"), Attr("status").eq("A"))
    first: Any = transact_items([check])[0]["ConditionCheck"]
    first["ExpressionAttributeNames"]["#n0"] = "changed"
    first["ExpressionAttributeValues"][":v0"] = {"S": "changed"}
    second = transact_items([check])[0]["ConditionCheck"]
    assert second["ExpressionAttributeNames"] == {"#n0": "status"}
    assert second["ExpressionAttributeValues"] == {":v0": {"S": "A"}}


def test_operations_and_their_conditions_on_the_wire() -> None:
    put = Put("t", {"id": "p", "sk": "s", "n": 3}, cond=Attr("id").not_exists())
    update = Update(
        "t",
        KeyPair(pk="p", sk="s"),
        set={"status": "X", "n": 4},
        remove=("gone",),
        cond=Attr("status").eq("A"),
    )
    assert transact_items([put, update]) == [
        {
            "Put": {
                "TableName": "t",
                "Item": {"id": {"S": "p"}, "sk": {"S": "s"}, "n": {"N": "3"}},
                "ConditionExpression": "attribute_not_exists(#n0)",
                "ExpressionAttributeNames": {"#n0": "id"},
                "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
            }
        },
        {
            "Update": {
                "TableName": "t",
                "Key": {"id": {"S": "p"}, "sk": {"S": "s"}},
                "UpdateExpression": "SET #u0 = :u0, #u1 = :u1 REMOVE #r0",
                "ConditionExpression": "#n0 = :v0",
                "ExpressionAttributeNames": {
                    "#u0": "status",
                    "#u1": "n",
                    "#r0": "gone",
                    "#n0": "status",
                },
                "ExpressionAttributeValues": {
                    ":u0": {"S": "X"},
                    ":u1": {"N": "4"},
                    ":v0": {"S": "A"},
                },
                "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
            }
        },
    ]


def test_a_shape_is_built_by_boto3_once(monkeypatch: pytest.MonkeyPatch) -> None:
    builds: list[ConditionBase] = []
    build = ConditionExpressionBuilder.build_expression

    def counted(self: ConditionExpressionBuilder, condition: ConditionBase, **kwargs: Any) -> Any:
        builds.append(condition)
        return build(self, condition, **kwargs)

    monkeypatch.setattr(ConditionExpressionBuilder, "build_expression", counted)
    for value in range(5):
        condition = Attr("sk").exists() & Attr("once-only").eq(value)
        assert ours(condition) == boto3s(condition)
    assert len(builds) == 1 + 5  # ours once, boto3s (the reference) every time
