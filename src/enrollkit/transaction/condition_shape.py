"""A boto3 condition walked once, for everything that needs its structure.

An operation's condition is walked node by node (each ``get_expression()``) once, when the
builder adds the operation, and the result is kept with the operation (its
``condition_shape``); a condition the layout builds once and keeps is walked once for all
its operations (``walked_once``). It serves:

- the builder, which refuses before sending what DynamoDB refuses to parse (``refusal``);
- the embedded backend, which evaluates the condition by its ``structure`` (compiled once
  per structure, in ``persistence/conditions.py``) and ``values``, and whose
  ClientRequestToken memory compares a replay by them (plain tuples, which the garbage
  collector stops tracking);
- the DynamoDB backend, which builds a ConditionExpression once per ``structure`` and puts
  each condition's ``values`` behind its placeholders.

The structure is what boto3's ConditionExpressionBuilder builds the expression and the name
placeholders from, in prefix order: per condition its format, operator and operand count,
then per operand a tag and what follows it: a nested condition; an attribute and its name; a
value; a group of values (``IN``'s) and its length. (The builder reads nothing else: not the
classes, whose formats and operators are there, nor an attribute's class, outside key
conditions.) Every part has a fixed length, so a structure reads back one way only: two
conditions of one structure get one expression and one set of names. The values are not in
it: ``values`` holds them in the builder's order, which numbers their placeholders ``:v0``,
``:v1``, ...

Pure: boto3's classes are looked up on the first walk (a condition is a boto3 object, so
boto3 is loaded by then), and ``import enrollkit`` stays free of boto3.
"""

from __future__ import annotations

import functools
import weakref
from collections.abc import Callable
from decimal import Decimal
from typing import Any, NamedTuple, TypeVar

from enrollkit.errors import InvalidInput, TransactionError
from enrollkit.transaction.limits import (
    EXACT_INT_BOUND,
    MAX_NUMBER_EXPONENT,
    MIN_NUMBER_EXPONENT,
    holds_unstorable_number,
    value_size,
)

# The tags of a structure's operands.
OPERAND_CONDITION = 0  # a nested condition follows
OPERAND_ATTRIBUTE = 1  # its name follows
OPERAND_VALUE = 2
OPERAND_GROUP = 3  # its length follows
OPERAND_UNREAD_GROUP = 4  # not a list, tuple or set: not read (a generator would be used up)

# Operators that order values: DynamoDB orders only strings, numbers and binaries.
_ORDERING_OPERATORS = frozenset({"<", "<=", ">", ">=", "BETWEEN"})
_LOGICAL_OPERATORS = frozenset({"AND", "OR", "NOT"})
# What a ConditionExpression may be built from (boto3's names for them).
_CONDITION_OPERATORS = frozenset(
    {
        *_ORDERING_OPERATORS,
        *_LOGICAL_OPERATORS,
        *("=", "<>", "IN", "begins_with", "contains"),
        *("attribute_exists", "attribute_not_exists", "attribute_type"),
    }
)
_ATTRIBUTE_ONLY_OPERATORS = frozenset({"attribute_exists", "attribute_not_exists"})
# Operators DynamoDB takes with any strings and numbers (not IN: its values are counted).
_PLAIN_VALUES_OPERATORS = frozenset(
    {"=", "<>", "<", "<=", ">", ">=", "contains", *_ATTRIBUTE_ONLY_OPERATORS}
)
# Operators whose literals must be of some types (checked below); others take any.
_TYPED_OPERATORS = _ORDERING_OPERATORS | {"begins_with", "attribute_type"}
_ATTRIBUTE_TYPES = frozenset({"S", "N", "B", "BOOL", "NULL", "M", "L", "SS", "NS", "BS"})
MAX_IN_OPERANDS = 100


class ConditionShape(NamedTuple):
    """What one walk of a condition finds (see the module's docstring)."""

    structure: tuple[Any, ...]  # strings and ints only (and an attribute's name as given)
    values: tuple[Any, ...]  # the literals, in ConditionExpressionBuilder's order
    # Why DynamoDB would refuse the condition (the first reason, in prefix order), or None.
    refusal: str | None
    # Whether ``structure`` and ``values`` stand for the condition in boto3's builder: not
    # when it is no condition, an attribute's name is no string, or IN's values are in
    # something the walk did not read.
    cacheable: bool

    def check(self) -> None:
        """Raise :class:`TransactionError` if DynamoDB would refuse the condition."""
        if self.refusal is not None:
            raise TransactionError(self.refusal)


NO_CONDITION = ConditionShape((), (), None, cacheable=False)
_new_shape = tuple.__new__  # (a NamedTuple's own __new__ costs a Python call)


@functools.cache
def _boto3_parts() -> tuple[type[Any], type[Any], type[Any], Callable[[Any], dict[str, Any]]]:
    """What the walk needs from boto3 and the marshalling, imported on first use and then
    looked up once (an import statement costs on every node)."""
    from boto3.dynamodb.conditions import AttributeBase, ConditionBase
    from boto3.dynamodb.types import Binary

    from enrollkit.persistence.marshal import serialize_value

    return AttributeBase, ConditionBase, Binary, serialize_value


def shape_of(condition: object) -> ConditionShape:
    """Walk ``condition`` once: its structure, its values, and why DynamoDB would refuse it.

    Refused, as DynamoDB refuses them (ValidationException), so every backend refuses them
    before sending, with the same error:

    - anything but a ``boto3.dynamodb.conditions`` condition (a string, a bare ``Attr``);
    - a literal DynamoDB cannot hold: a float, an empty set, an object, a number beyond
      38 digits or its exponent range (checked by serializing it, as the request would);
    - an ordering comparison or BETWEEN with a literal that is not a string, number or
      binary; BETWEEN bounds of different types or in the wrong order; begins_with with a
      literal that is not a string or binary;
    - IN without operands or with more than 100; ``attribute_type`` with no type name.

    (An attribute of another type is no error: the comparison is then false. IN may mix
    types: DynamoDB Local accepts ``v IN (:s, :n)`` and compares each operand by type.)
    """
    walk = _Walk()
    if not isinstance(condition, walk.condition_base):
        return ConditionShape((), (), _not_a_condition(condition), cacheable=False)
    refusal = walk.condition(condition, checked=True)
    shape = (tuple(walk.structure), tuple(walk.values), refusal, not walk.unread)
    return _new_shape(ConditionShape, shape)


# The shapes of conditions built once and used by many operations (``walked_once``), by
# the condition's id: a weak reference to it (the entry goes when it does) and its shape.
_WALKED_ONCE: dict[int, tuple[weakref.ref[Any], ConditionShape]] = {}
_Condition = TypeVar("_Condition")


def walked_once(condition: _Condition) -> _Condition:
    """``condition``, walked now: every operation given this very object reuses the walk.

    For a condition built once and kept (the layout caches its conditions: a boto3
    condition is immutable). Its values must be strings or numbers, which cannot change
    under the kept walk (``ValueError`` otherwise); a refused condition is not kept, so
    each use refuses it as ``shape_of`` does."""
    shape = shape_of(condition)
    if not all(type(value) in (str, int) for value in shape.values):
        raise ValueError("a condition walked once holds strings and numbers only")
    if shape.refusal is None and shape.cacheable:
        key = id(condition)
        _WALKED_ONCE[key] = (weakref.ref(condition, lambda _: _WALKED_ONCE.pop(key, None)), shape)
    return condition


def shape_of_operation_condition(condition: object) -> ConditionShape:
    """An operation's condition walked: the kept walk of a condition ``walked_once``, else a
    new walk."""
    kept = _WALKED_ONCE.get(id(condition))
    if kept is not None and kept[0]() is condition:
        return kept[1]
    return shape_of(condition)


class _Walk:
    """What one walk has found so far, and boto3's classes it tells operands apart by."""

    __slots__ = ("attribute_base", "condition_base", "structure", "unread", "values")

    def __init__(self) -> None:
        self.attribute_base, self.condition_base, _, _ = _boto3_parts()
        self.structure: list[Any] = []
        self.values: list[Any] = []
        self.unread = False  # a part the walk could not read as boto3's builder would

    def condition(self, condition: Any, checked: bool) -> str | None:
        """Walk one condition; return the first refusal found where DynamoDB wants a
        condition (``checked``: the top, or under AND, OR, NOT; not an operand such as a
        ``size()``)."""
        structure, values = self.structure, self.values
        attribute_base, condition_base = self.attribute_base, self.condition_base
        expression = condition.get_expression()
        operator, operands = expression["operator"], expression["values"]
        structure += (expression["format"], operator, len(operands))
        refusal = None
        if checked and operator not in _CONDITION_OPERATORS:
            refusal = f"{operator!r} is not a condition (compare it with something)"
        logical = operator in _LOGICAL_OPERATORS
        plain = True  # every value a string or an int of at most 38 digits
        for operand in operands:
            # The builder's own order of tests: a size() is both a condition and an attribute.
            if isinstance(operand, condition_base):
                structure.append(OPERAND_CONDITION)
                inner = self.condition(operand, checked and logical)
                refusal = refusal or inner
                continue
            if logical and checked and refusal is None:
                refusal = _not_a_condition(operand)
            if isinstance(operand, attribute_base):
                name = operand.name
                if type(name) is not str or not name:
                    # DynamoDB: "Empty attribute name"; boto3 cannot build another type.
                    self.unread = self.unread or type(name) is not str
                    refusal = refusal or f"an attribute name is a non-empty string, not {name!r}"
                structure += (OPERAND_ATTRIBUTE, name)
            elif not condition.has_grouped_values:
                structure.append(OPERAND_VALUE)
                values.append(operand)
                if type(operand) is not str and not (
                    type(operand) is int and -EXACT_INT_BOUND < operand < EXACT_INT_BOUND
                ):
                    plain = False
            elif isinstance(operand, (list, tuple, set, frozenset)):
                structure += (OPERAND_GROUP, len(operand))
                values.extend(operand)
            else:
                structure.append(OPERAND_UNREAD_GROUP)
                self.unread = True
        # (The usual comparisons, of plain values, need no closer look.)
        if (
            checked
            and not logical
            and refusal is None
            and not (plain and operator in _PLAIN_VALUES_OPERATORS)
        ):
            return _comparison_refusal(operator, operands)
        return refusal


def _not_a_condition(value: object) -> str:
    return (
        "cond must be a boto3.dynamodb.conditions condition, such as "
        f"Attr('sk').not_exists(), not {type(value).__name__}"
    )


def _comparison_refusal(operator: str, operands: tuple[Any, ...]) -> str | None:
    """Why DynamoDB would refuse a condition that is not AND, OR or NOT, or None."""
    AttributeBase, ConditionBase, Binary, serialize_value = _boto3_parts()
    if (
        operator in _ATTRIBUTE_ONLY_OPERATORS
        and len(operands) == 1
        and isinstance(operands[0], AttributeBase)
    ):
        return None  # attribute_exists(a), attribute_not_exists(a): nothing more to check
    if operator == "IN":
        candidates = operands[1]
        if not isinstance(candidates, (list, tuple, set, frozenset)):
            return "is_in takes a list of values"
        if not 1 <= len(candidates) <= MAX_IN_OPERANDS:
            return f"IN takes 1 to {MAX_IN_OPERANDS} values"
        # boto3 sends every member as a value (an Attr among them cannot be serialized).
        literals = list(candidates)
    else:
        literals = [o for o in operands[1:] if not isinstance(o, (AttributeBase, ConditionBase))]
    for literal in literals:
        # A string is always a DynamoDB string; an int of at most 38 digits always a
        # storable number (a TTL, a count): neither needs serializing to be sure.
        if type(literal) is str or (
            type(literal) is int and -EXACT_INT_BOUND < literal < EXACT_INT_BOUND
        ):
            continue
        try:
            serialize_value(literal)
            value_size(literal)  # (refuses a map key DynamoDB refuses, at any depth)
        except (InvalidInput, TransactionError) as error:
            return f"{operator}: {error}"
        if holds_unstorable_number(literal):
            return (
                f"{operator}: DynamoDB's numbers range from 1E{MIN_NUMBER_EXPONENT} to "
                f"9.99...E+{MAX_NUMBER_EXPONENT} in magnitude"
            )
    if operator not in _TYPED_OPERATORS:
        return None  # =, <>, IN and contains take a literal of any type
    kinds = [_literal_kind(literal, Binary) for literal in literals]
    if operator in _ORDERING_OPERATORS and not all(k in ("S", "N", "B") for k in kinds):
        return f"{operator} orders only strings, numbers and binaries"
    if operator == "begins_with" and not all(k in ("S", "B") for k in kinds):
        return "begins_with takes a string or binary prefix"
    if operator == "attribute_type" and not all(
        isinstance(literal, str) and literal in _ATTRIBUTE_TYPES for literal in literals
    ):
        return f"attribute_type takes one of {', '.join(sorted(_ATTRIBUTE_TYPES))}"
    if operator == "BETWEEN" and len(literals) == 2:
        if kinds[0] != kinds[1]:
            return "the bounds of BETWEEN must have one type"
        low, high = literals
        if kinds[0] == "N":
            low, high = Decimal(low), Decimal(high)
        elif kinds[0] == "B":
            low, high = bytes(low), bytes(high)
        if low > high:
            return "BETWEEN needs its lower bound first"
    return None


def _literal_kind(value: Any, binary: type[Any]) -> str | None:
    """A condition literal's DynamoDB type, when it is one that can be ordered."""
    if isinstance(value, str):
        return "S"
    if isinstance(value, (int, Decimal)) and not isinstance(value, bool):
        return "N"
    if isinstance(value, (bytes, bytearray, binary)):
        return "B"
    return None  # BOOL, NULL, sets, lists, maps
