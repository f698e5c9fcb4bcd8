"""Evaluates a condition against an item, with DynamoDB's semantics.

Used by the embedded backend, so a condition holds there exactly when it would
hold in DynamoDB: a missing attribute fails every comparison but ``<>``, values
of different types are never equal nor ordered, and numbers compare by value.

It reads the condition's shape (:mod:`enrollkit.transaction.condition_shape`), the walk
the builder made when it added the operation, not the boto3 objects: its structure is
compiled once into a predicate, which takes the shape's values. So the values evaluated are
the ones the DynamoDB backend sends and the token memory remembers, taken when the operation
was added (a list given to ``is_in`` and changed later changes neither).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from enrollkit.transaction.condition_shape import (
    OPERAND_ATTRIBUTE,
    OPERAND_CONDITION,
    OPERAND_GROUP,
    OPERAND_VALUE,
    ConditionShape,
    shape_of,
)

if TYPE_CHECKING:
    from boto3.dynamodb.conditions import ConditionBase

_MISSING = object()
_PATH_PART = re.compile(r"^([^\[\]]+)((?:\[\d+\])*)$")
_INDEX = re.compile(r"\[(\d+)\]")

# A compiled condition, and a compiled operand: each reads an item and the shape's values.
Predicate = Callable[[Mapping[str, Any], tuple[Any, ...]], bool]
_Getter = Callable[[Mapping[str, Any], tuple[Any, ...]], Any]


def condition_holds(condition: ConditionBase, item: Mapping[str, Any] | None) -> bool:
    """Whether a boto3 ``condition`` holds on ``item`` (``None``: the item does not exist).

    Raises:
        TransactionError: DynamoDB would refuse the condition (see ``shape_of``).
    """
    shape = shape_of(condition)
    shape.check()
    return shape_holds(shape, item)


def shape_holds(shape: ConditionShape, item: Mapping[str, Any] | None) -> bool:
    """Whether the condition walked into ``shape`` holds on ``item`` (``None``: the item
    does not exist). ``shape`` is one the builder accepts (its ``check()`` passed)."""
    return compiled(shape.structure)(item or {}, shape.values)


@functools.lru_cache(maxsize=1024)
def compiled(structure: tuple[Any, ...]) -> Predicate:
    """The predicate of a condition's structure (one per structure: the values are apart)."""
    if not structure:
        return _always
    reader = _StructureReader(structure)
    return _predicate(reader.node())


def _always(item: Mapping[str, Any], values: tuple[Any, ...]) -> bool:
    return True


@dataclass(frozen=True)
class _Node:
    """One condition of a structure: its operator and its operands (nodes, attribute names,
    value positions, groups of value positions)."""

    operator: str
    operands: tuple[Any, ...]


@dataclass(frozen=True)
class _Attribute:
    name: str


@dataclass(frozen=True)
class _Value:
    position: int


@dataclass(frozen=True)
class _Group:
    positions: tuple[int, ...]


class _StructureReader:
    """Reads a structure back into nodes, in the prefix order the walk wrote it (values
    numbered in the order the walk took them)."""

    def __init__(self, structure: tuple[Any, ...]) -> None:
        self._parts = iter(structure)
        self._next_value = 0

    def node(self) -> _Node:
        _format, operator, count = next(self._parts), next(self._parts), next(self._parts)
        return _Node(operator, tuple(self._operand() for _ in range(count)))

    def _operand(self) -> _Node | _Attribute | _Value | _Group:
        tag = next(self._parts)
        if tag == OPERAND_CONDITION:
            return self.node()
        if tag == OPERAND_ATTRIBUTE:
            return _Attribute(next(self._parts))
        if tag == OPERAND_VALUE:
            return _Value(self._values(1)[0])
        if tag == OPERAND_GROUP:
            return _Group(self._values(next(self._parts)))
        # An unread group (IN over something not a list): the shape's check() refused it.
        raise TypeError(f"a structure with operand tag {tag!r} cannot be evaluated")

    def _values(self, count: int) -> tuple[int, ...]:
        first = self._next_value
        self._next_value += count
        return tuple(range(first, first + count))


def _predicate(node: _Node) -> Predicate:
    operator, operands = node.operator, node.operands
    if operator in ("AND", "OR", "NOT"):
        inner = [_predicate(operand) for operand in operands]
        if operator == "NOT":
            (negated,) = inner
            return lambda item, values: not negated(item, values)
        left, right = inner
        if operator == "AND":
            return lambda item, values: left(item, values) and right(item, values)
        return lambda item, values: left(item, values) or right(item, values)
    if operator == "IN":
        subject, candidates = _getter(operands[0]), operands[1]
        assert isinstance(candidates, _Group)
        positions = candidates.positions
        return lambda item, values: _is_in(subject(item, values), [values[p] for p in positions])
    getters = [_getter(operand) for operand in operands]
    test = _TESTS.get(operator)
    if test is None:
        raise NotImplementedError(f"condition operator {operator!r} is not supported")
    if len(getters) == 1:
        (only,) = getters
        return lambda item, values: test(only(item, values))
    if len(getters) == 2:
        first, second = getters
        return lambda item, values: test(first(item, values), second(item, values))
    return lambda item, values: test(*(get(item, values) for get in getters))


def _getter(operand: _Node | _Attribute | _Value | _Group) -> _Getter:
    """An operand's value: an attribute's value (or _MISSING), a size, or a literal."""
    if isinstance(operand, _Value):
        position = operand.position
        return lambda item, values: values[position]
    if isinstance(operand, _Attribute):
        return _attribute_getter(operand.name)
    if isinstance(operand, _Node) and operand.operator == "size":
        (measured,) = [_getter(inner) for inner in operand.operands]
        return lambda item, values: _size(measured(item, values))
    # Another condition as an operand (DynamoDB would not parse it): equal to nothing.
    return lambda item, values: _MISSING


def _attribute_getter(path: str) -> _Getter:
    steps = _steps(path)
    if steps is None:
        return lambda item, values: _MISSING
    if len(steps) == 1 and not steps[0][1]:  # a top-level name (stored items are dicts)
        name = steps[0][0]
        return lambda item, values: item.get(name, _MISSING)
    return lambda item, values: _lookup(steps, item)


def _size(value: Any) -> Any:
    if value is _MISSING or isinstance(value, (bool, int, Decimal)) or value is None:
        return _MISSING
    return len(value)


def _is_in(subject: Any, candidates: list[Any]) -> bool:
    return any(_equal(subject, candidate) for candidate in candidates)


def _lookup(steps: tuple[tuple[str, tuple[int, ...]], ...], item: Mapping[str, Any]) -> Any:
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


# What each comparison tests, given its operands' values.
_TESTS: dict[str, Callable[..., bool]] = {
    "attribute_exists": lambda value: value is not _MISSING,
    "attribute_not_exists": lambda value: value is _MISSING,
    "=": _equal,
    "<>": lambda left, right: not _equal(left, right),
    "<": lambda left, right: _ordered("<", left, right),
    "<=": lambda left, right: _ordered("<=", left, right),
    ">": lambda left, right: _ordered(">", left, right),
    ">=": lambda left, right: _ordered(">=", left, right),
    "BETWEEN": lambda subject, low, high: (
        _ordered(">=", subject, low) and _ordered("<=", subject, high)
    ),
    "begins_with": lambda subject, prefix: (
        _both_text_or_binary(subject, prefix) and subject.startswith(prefix)
    ),
    "contains": _contains,
    "attribute_type": lambda value, code: value is not _MISSING and _type_code(value) == code,
}
