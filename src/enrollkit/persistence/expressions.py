"""ConditionExpressions for the DynamoDB backend's requests, built by boto3's
ConditionExpressionBuilder once per condition *structure* rather than once per request.

Part of the DynamoDB backend: only persistence/dynamodb.py imports this module (it loads
boto3), so ``import enrollkit`` stays light.

The expression and the name placeholders boto3 builds depend only on a condition's
structure (``transaction.condition_shape``: formats, operators, attribute names, where the
values sit and, for ``IN``, how many). The value placeholders are numbered ``:v0``, ``:v1``,
... in the order the builder meets the values, which is the order of the walk's ``values``.
So a condition's compiled form is looked up by its structure, and its own values are put
behind the same placeholders. The first build of each structure is checked: the builder must
have given exactly the walk's values, one placeholder each, in that order; a structure where
it did not is never cached (each such condition is built by boto3).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from boto3.dynamodb.conditions import ConditionBase, ConditionExpressionBuilder

from enrollkit.persistence.marshal import serialize_value
from enrollkit.transaction.condition_shape import ConditionShape, shape_of

# Structures come from code (a handful per operation), but a condition on caller-chosen
# attribute names (the backfill's) makes new ones: the cache is bounded.
MAX_CACHED_SHAPES = 512


class _Compiled(NamedTuple):
    expression: str
    names: Mapping[str, str]  # shared by every request of the shape: never changed
    value_placeholders: tuple[str, ...]


_compiled: dict[tuple[object, ...], _Compiled] = {}
_compiling = threading.Lock()  # (lookups need no lock: a dict's get is atomic)


def add_condition(
    condition: ConditionBase,
    names: dict[str, str],
    values: dict[str, Any],
    shape: ConditionShape | None = None,
) -> str:
    """``condition``'s ConditionExpression, as boto3's ConditionExpressionBuilder builds it;
    its name placeholders are added to ``names``, its value placeholders to ``values`` (in
    DynamoDB JSON). ``shape``: ``condition`` walked already (an operation's
    ``condition_shape``), else it is walked here."""
    compiled, found = _compile(condition, shape if shape is not None else shape_of(condition))
    names.update(compiled.names)
    for placeholder, value in zip(compiled.value_placeholders, found, strict=True):
        values[placeholder] = serialize_value(value)
    return compiled.expression


def _compile(condition: ConditionBase, shape: ConditionShape) -> tuple[_Compiled, Sequence[Any]]:
    """The compiled form of ``condition``'s structure, and ``condition``'s values in its
    order."""
    if not shape.cacheable:
        return _built(condition)  # (boto3 says what is wrong with it, if anything)
    structure, found = shape.structure, shape.values
    compiled = _compiled.get(structure)
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
        _compiled[structure] = compiled
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
