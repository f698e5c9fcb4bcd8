"""Evaluates boto3 condition objects against an item, with DynamoDB's semantics.

Used by the embedded backend, so a condition holds there exactly when it would
hold in DynamoDB: a missing attribute fails every comparison but ``<>``, values
of different types are never equal nor ordered, and numbers compare by value.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from boto3.dynamodb.conditions import ConditionBase

_MISSING = object()
_PATH_PART = re.compile(r"^([^\[\]]+)((?:\[\d+\])*)$")
_INDEX = re.compile(r"\[(\d+)\]")


def condition_holds(condition: ConditionBase, item: Mapping[str, Any] | None) -> bool:
    """Whether ``condition`` holds on ``item`` (``None``: the item does not exist)."""
    return _evaluate(condition, item or {})


def _evaluate(condition: ConditionBase, item: Mapping[str, Any]) -> bool:
    expression = condition.get_expression()
    operator: str = expression["operator"]
    values = expression["values"]
    if operator == "AND":
        return _evaluate(values[0], item) and _evaluate(values[1], item)
    if operator == "OR":
        return _evaluate(values[0], item) or _evaluate(values[1], item)
    if operator == "NOT":
        return not _evaluate(values[0], item)
    if operator == "attribute_exists":
        return _resolve(values[0], item) is not _MISSING
    if operator == "attribute_not_exists":
        return _resolve(values[0], item) is _MISSING
    operands = [_resolve(value, item) for value in values]
    if operator == "=":
        return _equal(operands[0], operands[1])
    if operator == "<>":
        return not _equal(operands[0], operands[1])
    if operator in ("<", "<=", ">", ">="):
        return _ordered(operator, operands[0], operands[1])
    if operator == "BETWEEN":
        return _ordered(">=", operands[0], operands[1]) and _ordered("<=", operands[0], operands[2])
    if operator == "IN":
        return any(_equal(operands[0], _resolve(candidate, item)) for candidate in values[1])
    if operator == "begins_with":
        subject, prefix = operands
        return _both_text_or_binary(subject, prefix) and subject.startswith(prefix)
    if operator == "contains":
        return _contains(operands[0], operands[1])
    if operator == "attribute_type":
        return operands[0] is not _MISSING and _type_code(operands[0]) == operands[1]
    raise NotImplementedError(f"condition operator {operator!r} is not supported")


def _resolve(operand: Any, item: Mapping[str, Any]) -> Any:
    """An operand's value: an attribute's value (or _MISSING), a size, or a literal."""
    kind = type(operand)
    if kind is str or kind is int:  # the usual literals, without the class checks
        return operand
    attribute_base, condition_base = condition_classes()
    if isinstance(operand, condition_base) and operand.expression_operator == "size":
        value = _resolve(operand.get_expression()["values"][0], item)
        if value is _MISSING or isinstance(value, (bool, int, Decimal)) or value is None:
            return _MISSING
        return len(value)
    if isinstance(operand, attribute_base):
        return _lookup(operand.name, item)
    return operand


@functools.cache
def condition_classes() -> tuple[type[Any], type[Any]]:
    """boto3's condition classes, imported on first use: a condition to evaluate is a boto3
    object, so boto3 is loaded by then, and importing this module does not load it."""
    from boto3.dynamodb.conditions import AttributeBase, ConditionBase

    return AttributeBase, ConditionBase


def _lookup(path: str, item: Mapping[str, Any]) -> Any:
    steps = _steps(path)
    if steps is None:
        return _MISSING
    current: Any = item
    for name, indexes in steps:
        # (stored items are dicts: the exact type first, an ABC check is slow)
        if not (type(current) is dict or isinstance(current, Mapping)) or name not in current:
            return _MISSING
        current = current[name]
        for index in indexes:
            if not isinstance(current, list) or index >= len(current):
                return _MISSING
            current = current[index]
    return current


@functools.lru_cache(maxsize=1024)
def _steps(path: str) -> tuple[tuple[str, tuple[int, ...]], ...] | None:
    """``a.b[2]`` as ((a, ()), (b, (2,))), parsed once per path; ``None`` if malformed."""
    steps = []
    for part in path.split("."):
        match = _PATH_PART.match(part)
        if match is None:
            return None
        name, indexes = match.groups()
        steps.append((name, tuple(int(i) for i in _INDEX.findall(indexes))))
    return tuple(steps)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, Decimal)) and not isinstance(value, bool)


def _both_text_or_binary(left: Any, right: Any) -> bool:
    """Whether both are strings or both are binary: what DynamoDB orders and prefixes."""
    return (isinstance(left, str) and isinstance(right, str)) or (
        isinstance(left, bytes) and isinstance(right, bytes)
    )


def _two_strings_or_ints(left: Any, right: Any) -> bool:
    """Exactly two ``str`` or two ``int`` (no bool, no Decimal): the usual operands, which
    compare as they are."""
    kind = type(left)
    return kind is type(right) and (kind is str or kind is int)


def _equal(left: Any, right: Any) -> bool:
    if _two_strings_or_ints(left, right):
        return bool(left == right)
    if left is _MISSING or right is _MISSING:
        return False
    if _is_number(left) and _is_number(right):
        return Decimal(left) == Decimal(right)
    if _type_code(left) != _type_code(right):
        return False
    return bool(left == right)


def _ordered(operator: str, left: Any, right: Any) -> bool:
    if not _two_strings_or_ints(left, right):  # (those compare as they are)
        if _is_number(left) and _is_number(right):
            left, right = Decimal(left), Decimal(right)
        elif not _both_text_or_binary(left, right):
            return False  # DynamoDB orders only numbers, strings and binaries, each among its kind
    if operator == "<":
        return bool(left < right)
    if operator == "<=":
        return bool(left <= right)
    if operator == ">":
        return bool(left > right)
    return bool(left >= right)


def _contains(subject: Any, member: Any) -> bool:
    if isinstance(subject, str):
        return isinstance(member, str) and member in subject
    if isinstance(subject, bytes):
        return isinstance(member, bytes) and member in subject
    if isinstance(subject, (set, frozenset, list)):
        return any(_equal(element, member) for element in subject)
    return False


def _type_code(value: Any) -> str:
    kind = type(value)
    if kind is str:  # the usual types by their exact type first: an ABC check is slow
        return "S"
    if kind is dict:
        return "M"
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "BOOL"
    if _is_number(value):
        return "N"
    if isinstance(value, str):
        return "S"
    if isinstance(value, bytes):
        return "B"
    if isinstance(value, Mapping):
        return "M"
    if isinstance(value, list):
        return "L"
    if isinstance(value, (set, frozenset)):
        element = next(iter(value))
        return {"N": "NS", "S": "SS", "B": "BS"}[_type_code(element)]
    return type(value).__name__
