"""ConditionExpressions for the DynamoDB backend's requests, built by boto3's
ConditionExpressionBuilder once per condition *shape* rather than once per request.

Part of the DynamoDB backend: only persistence/dynamodb.py imports this module (it loads
boto3), so ``import enrollkit`` stays light.

The expression and the name placeholders boto3 builds depend only on the condition's
shape: its condition classes, their formats and operators, its attribute names, and where
the values sit (and, for ``IN``, how many). The value placeholders are numbered ``:v0``,
``:v1``, ... in the order the builder meets the values, which is the order the shape is
walked in here. So a condition's compiled form is looked up by its shape, and its own
values are put behind the same placeholders. The first build of each shape is checked: the
builder must have given exactly the values found by the walk, one placeholder each, in that
order; a shape where it did not is never cached (each such condition is built by boto3).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any, NamedTuple

from boto3.dynamodb.conditions import AttributeBase, ConditionBase, ConditionExpressionBuilder

from enrollkit.persistence.marshal import serialize_value

# Shapes come from code (a handful per operation), but a condition on caller-chosen
# attribute names (the backfill's) makes new ones: the cache is bounded.
MAX_CACHED_SHAPES = 512


class _Compiled(NamedTuple):
    expression: str
    names: Mapping[str, str]  # shared by every request of the shape: never changed
    value_placeholders: tuple[str, ...]


class _Uncacheable(Exception):
    """A condition whose shape cannot safely stand for it."""


_compiled: dict[tuple[object, ...], _Compiled] = {}
_compiling = threading.Lock()  # (lookups need no lock: a dict's get is atomic)


def add_condition(condition: ConditionBase, names: dict[str, str], values: dict[str, Any]) -> str:
    """``condition``'s ConditionExpression, as boto3's ConditionExpressionBuilder builds it;
    its name placeholders are added to ``names``, its value placeholders to ``values`` (in
    DynamoDB JSON)."""
    compiled, found = _compile(condition)
    names.update(compiled.names)
    for placeholder, value in zip(compiled.value_placeholders, found, strict=True):
        values[placeholder] = serialize_value(value)
    return compiled.expression


def _compile(condition: ConditionBase) -> tuple[_Compiled, list[Any]]:
    """The compiled form of ``condition``'s shape, and ``condition``'s values in its order."""
    found: list[Any] = []
    try:
        shape = _shape(condition, found)
    except _Uncacheable:
        return _built(condition)
    compiled = _compiled.get(shape)
    if compiled is not None:
        return compiled, found
    compiled, built_values = _built(condition)
    if len(built_values) != len(found) or any(
        built is not value for built, value in zip(built_values, found, strict=True)
    ):
        return compiled, built_values
    with _compiling:
        if len(_compiled) >= MAX_CACHED_SHAPES:
            del _compiled[next(iter(_compiled))]  # the oldest
        _compiled[shape] = compiled
    return compiled, found


def _built(condition: ConditionBase) -> tuple[_Compiled, list[Any]]:
    built = ConditionExpressionBuilder().build_expression(condition)
    placeholders: dict[str, Any] = built.attribute_value_placeholders
    return (
        _Compiled(
            built.condition_expression,
            dict(built.attribute_name_placeholders),
            tuple(placeholders),
        ),
        list(placeholders.values()),
    )


def _shape(condition: ConditionBase, values: list[Any]) -> tuple[object, ...]:
    """``condition``'s shape, its values appended to ``values`` in the builder's order.

    The parts of a shape are of distinct types, so no two shapes can be mistaken for each
    other: a nested condition is a tuple, an attribute its class then its name (a str), a
    value ``None``, and a group of values (``IN``'s) its length (an int).
    """
    if not isinstance(condition, ConditionBase):
        raise _Uncacheable  # boto3 says what is wrong with it
    expression = condition.get_expression()
    grouped = condition.has_grouped_values
    parts: list[object] = [
        type(condition),
        expression["format"],
        expression["operator"],
        grouped,
    ]
    for value in expression["values"]:
        # The builder's own order of tests: a size() is both a condition and an attribute.
        if isinstance(value, ConditionBase):
            parts.append(_shape(value, values))
        elif isinstance(value, AttributeBase):
            if type(value.name) is not str:
                raise _Uncacheable
            parts.append(type(value))  # (Attr or Key: boto3 tells them apart in key conditions)
            parts.append(value.name)
        elif grouped:
            if type(value) is not list and type(value) is not tuple:
                raise _Uncacheable  # (a generator would be read up by the walk)
            values.extend(value)
            parts.append(len(value))
        else:
            values.append(value)
            parts.append(None)
    return tuple(parts)
