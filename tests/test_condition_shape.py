"""One walk of a condition (``transaction.condition_shape``) serves the builder's checks, the
embedded backend's token memory and the DynamoDB backend's expression cache: what it finds,
that each operation's condition is walked once, and that operations built by hand (without
the builder) are walked, checked, remembered and compiled like the builder's."""

from __future__ import annotations

import dataclasses
import gc
from collections.abc import Iterator, Sequence
from datetime import datetime, timezone
from typing import Any

import pytest
from boto3.dynamodb.conditions import Attr, ConditionBase, ConditionExpressionBuilder
from hypothesis import given, settings

from enrollkit import Course, InMemoryPersistence, KeyPair
from enrollkit.errors import TransactionCanceled, TransactionError
from enrollkit.persistence.base import BasePersistence
from enrollkit.persistence.conditions import condition_holds
from enrollkit.persistence.dynamodb import transact_items
from enrollkit.transaction import condition_shape
from enrollkit.transaction.builder import open_transaction
from enrollkit.transaction.condition_shape import shape_of, walked_once
from enrollkit.transaction.operations import ConditionCheck, Delete, Operation, Put, Update
from tests.test_expressions import boto3s, conditions, ours

NOW_2036 = datetime(2036, 1, 1, tzinfo=timezone.utc)


def key(pk: str) -> KeyPair:
    return KeyPair(pk=pk, sk="0")


# -- what the walk finds ---------------------------------------------------------------------


@settings(max_examples=300)
@given(conditions)
def test_the_walk_finds_boto3s_values_in_its_order_and_a_plain_structure(
    condition: ConditionBase,
) -> None:
    shape = shape_of(condition)
    built = ConditionExpressionBuilder().build_expression(condition)
    placeholders = list(built.attribute_value_placeholders.values())
    assert len(shape.values) == len(placeholders)
    assert all(ours is theirs for ours, theirs in zip(shape.values, placeholders, strict=True))
    # Strings and ints only: the garbage collector untracks a tuple of them (token memory),
    # and the expression cache hashes it.
    assert all(type(part) in (str, int) for part in shape.structure)
    assert shape.cacheable


def test_conditions_with_one_structure_differ_only_in_their_values() -> None:
    first, second = (
        Attr("s").eq(1) & Attr("t").is_in(["a"]),
        Attr("s").eq(2) & Attr("t").is_in(["b"]),
    )
    assert shape_of(first).structure == shape_of(second).structure
    assert (shape_of(first).values, shape_of(second).values) == ((1, "a"), (2, "b"))
    for other in (
        Attr("s").eq(1) & Attr("t").is_in(["a", "b"]),  # another number of IN's values
        Attr("s").eq(1) | Attr("t").is_in(["a"]),
        Attr("s").eq(1) & Attr("u").is_in(["a"]),
        Attr("s").eq(1) & Attr("t").size().eq(1),
        Attr("s").ne(1) & Attr("t").is_in(["a"]),
    ):
        assert shape_of(other).structure != shape_of(first).structure


def test_the_walk_does_not_read_up_a_generator() -> None:
    values = (value for value in ["a", "b"])
    shape = shape_of(Attr("s").is_in(values))
    assert list(values) == ["a", "b"]
    assert not shape.cacheable
    assert shape.refusal == "is_in takes a list of values"


def test_in_over_a_set_is_built_as_boto3_builds_it_from_the_cache_too() -> None:
    for members in ({"a", "b", "c"}, frozenset({"x", "y", "z"})):
        condition = Attr("set-in").is_in(members)
        assert ours(condition) == boto3s(condition)
        assert ours(condition) == boto3s(condition)


def test_refusals_come_in_prefix_order() -> None:
    condition = Attr("a").between(2, 1) & (Attr("b").lt(True) | Attr("c").is_in([]))
    assert shape_of(condition).refusal == "BETWEEN needs its lower bound first"
    assert shape_of(~Attr("b").lt(True) & Attr("a").between(2, 1)).refusal == (
        "< orders only strings, numbers and binaries"
    )
    assert shape_of(Attr("a").exists() & Attr("b").size().eq(1)).refusal is None


# -- the walk kept with its operation --------------------------------------------------------


def test_an_operations_walk_is_no_field() -> None:
    condition = Attr("sk").not_exists()
    first = Put("t", {"id": "a", "sk": "0"}, condition)
    assert first.condition_shape == shape_of(condition)
    assert first == Put("t", {"id": "a", "sk": "0"}, condition)  # (the other is not walked)
    assert "shape" not in repr(first)
    with pytest.raises(TypeError):
        Put("t", {}, condition, condition_shape=shape_of(condition))  # type: ignore[call-arg]
    other = Attr("sk").exists()
    assert dataclasses.replace(first, cond=other).condition_shape == shape_of(other)
    assert Delete("t", key("a")).condition_shape.structure == ()


class Recorder:
    """An executor that keeps each transaction's operations."""

    def __init__(self) -> None:
        self.operations: list[Operation] = []

    def execute_transaction(
        self, operations: Sequence[Operation], *, client_request_token: str
    ) -> None:
        self.operations = list(operations)


@pytest.fixture
def expressions_counted(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[object]]:
    """Every ``get_expression()`` call, by the condition it was called on."""
    calls: list[object] = []
    get_expression = ConditionBase.get_expression

    def counted(self: ConditionBase) -> Any:
        calls.append(self)
        return get_expression(self)

    monkeypatch.setattr(ConditionBase, "get_expression", counted)
    yield calls


def test_the_dynamodb_request_reuses_the_builders_walk(expressions_counted: list[object]) -> None:
    """Adding an operation walks its condition; building its request walks it no more."""

    def condition(value: int) -> ConditionBase:  # three nodes
        return Attr("walked-once").not_exists() | Attr("n").lt(value)

    transact_items([ConditionCheck("t", key("warm"), condition(0))])  # (boto3 builds it once)
    recorder = Recorder()
    expressions_counted.clear()
    with open_transaction(recorder, default_table_name="t") as transaction:
        transaction.put(item={"id": "a", "sk": "0"}, cond=condition(1))
        transaction.condition(key=key("b"), cond=condition(2))
    transact_items(recorder.operations)
    assert len(expressions_counted) == 2 * 3


def test_the_embedded_backend_reuses_the_builders_walk(expressions_counted: list[object]) -> None:
    """Adding walks a condition; the commit evaluates the walk's shape: each node once."""
    store = InMemoryPersistence()
    with store.transact_writer() as transaction:
        transaction.put(
            item={"id": "a", "sk": "0"}, cond=Attr("sk").not_exists() & Attr("n").not_exists()
        )
    assert len(expressions_counted) == 3


# -- operations built by hand ----------------------------------------------------------------


def test_operations_built_by_hand_are_compiled_and_their_conditions_hold_on_every_backend(
    persistence: BasePersistence,
) -> None:
    table = persistence.table_name

    def send(*operations: Operation) -> None:
        persistence.execute_transaction(operations, client_request_token=_token())

    send(
        Put(table, {"id": "a", "sk": "0", "n": 1}, cond=Attr("sk").not_exists()),
        Update(table, key("b"), set={"s": "x"}, cond=Attr("s").not_exists() | Attr("s").eq("y")),
    )
    with pytest.raises(TransactionCanceled) as cancelled:
        send(
            ConditionCheck(table, key("a"), Attr("n").is_in([2, 3])),
            Put(table, {"id": "c", "sk": "0"}, cond=Attr("sk").not_exists()),
        )
    assert [reason.code for reason in cancelled.value.reasons] == [
        "ConditionalCheckFailed",
        "None",
    ]
    send(
        ConditionCheck(table, key("a"), Attr("n").is_in([1, 3]) & Attr("n").between(0, 2)),
        Delete(table, key("b"), cond=Attr("s").eq("x")),
    )
    assert persistence.get_item(key("b")) is None
    assert persistence.get_item(key("c")) is None


_tokens = iter(range(10**9))


def _token() -> str:
    return f"by-hand-{next(_tokens)}"


def test_a_token_replayed_with_another_condition_built_by_hand_is_refused() -> None:
    store = InMemoryPersistence()

    def send(condition: ConditionBase) -> None:
        put = Put(store.table_name, {"id": "p", "sk": "0"}, cond=condition)
        store.execute_transaction([put], client_request_token="by-hand")

    send(Attr("n").ne(1))
    send(Attr("n").ne(1))  # a replay: the same request
    for other in (Attr("n").ne(2), Attr("n").ne(True), Attr("m").ne(1), Attr("n").eq(1)):
        with pytest.raises(TransactionError, match="IdempotentParameterMismatch"):
            send(other)
    assert store.transactions_committed == 1


def test_the_token_memory_holds_no_tracked_condition() -> None:
    """What a token remembers of a condition (its structure and values) is plain tuples,
    which the garbage collector stops tracking: not the shape, not the condition."""
    store = InMemoryPersistence()
    with store.transact_writer(client_request_token="remembered") as transaction:
        transaction.put(
            item={"id": "a", "sk": "0"},
            cond=Attr("sk").not_exists() | Attr("status").is_in(["A", "B"]),
        )
    gc.collect()
    gc.collect()  # (a tuple is untracked once the tuples in it are: a second collection)
    fields, _ = store._tokens["remembered"]
    structure, values = fields[-2:]  # (one operation's fields; its condition's come last)
    assert structure == shape_of(transaction.operations[0].cond).structure
    assert values == ("A", "B")
    assert not gc.is_tracked(fields)
    assert all(type(part) is tuple and not gc.is_tracked(part) for part in (structure, values))


# -- the embedded backend evaluates the walk ---------------------------------------------------


def test_the_embedded_backend_evaluates_the_values_taken_when_the_operation_was_added() -> None:
    """As the DynamoDB backend sends them: a list given to is_in and changed afterwards does
    not change the condition."""
    store = InMemoryPersistence()
    store.put_item({"id": "a", "sk": "0", "s": "x"})
    allowed = ["x"]
    with store.transact_writer() as transaction:
        transaction.condition(key=key("a"), cond=Attr("s").is_in(allowed))
        allowed[0] = "y"
    refused = ["y"]
    with pytest.raises(TransactionCanceled), store.transact_writer() as transaction:
        transaction.condition(key=key("a"), cond=Attr("s").is_in(refused))
        refused[0] = "x"


def test_condition_holds_refuses_what_the_builder_refuses() -> None:
    """The public evaluator (for backends of one's own) walks and checks its condition."""
    assert condition_holds(Attr("s").eq("x"), {"s": "x"})
    assert not condition_holds(Attr("s").eq("x"), None)
    with pytest.raises(TransactionError, match="orders only"):
        condition_holds(Attr("s").lt(True), {"s": "x"})


# -- conditions walked once, for every operation ---------------------------------------------


def test_a_condition_walked_once_is_not_walked_again_by_its_operations(
    expressions_counted: list[object],
) -> None:
    kept = walked_once(Attr("sk").not_exists() | Attr("ttl").lte(5))
    expressions_counted.clear()
    first, second = Put("t", {"id": "a", "sk": "0"}, kept), ConditionCheck("t", key("b"), kept)
    assert first.condition_shape is second.condition_shape
    assert expressions_counted == []
    equal = Attr("sk").not_exists() | Attr("ttl").lte(5)  # equal, but another object
    assert Put("t", {"id": "a", "sk": "0"}, equal).condition_shape == first.condition_shape
    assert len(expressions_counted) == 3


def test_a_condition_walked_once_is_forgotten_with_it() -> None:
    kept = walked_once(Attr("sk").not_exists())
    key_of_it = id(kept)
    assert key_of_it in condition_shape._WALKED_ONCE
    del kept
    gc.collect()
    assert key_of_it not in condition_shape._WALKED_ONCE


def test_only_conditions_of_strings_and_numbers_are_walked_once() -> None:
    with pytest.raises(ValueError, match="strings and numbers"):
        walked_once(Attr("m").eq({"k": "v"}))
    refused = walked_once(Attr("").eq("x"))  # not kept: each use refuses it
    assert id(refused) not in condition_shape._WALKED_ONCE
    with (
        pytest.raises(TransactionError, match="non-empty string"),
        open_transaction(Recorder(), default_table_name="t") as transaction,
    ):
        transaction.condition(key=key("a"), cond=refused)


def test_the_layouts_kept_conditions_are_walked_once() -> None:
    from enrollkit.layout import enrollment, order, seat, table

    for condition in (
        enrollment.root_is_new(),
        table.item_exists(),
        table.item_absent(),
        table.absent_or_expired(NOW_2036),
        seat.seat_is_for(Course(id="c", name="C", access_period=30)),
        order.order_usable_by("org"),
    ):
        assert id(condition) in condition_shape._WALKED_ONCE


# -- the operations' own __init__ ----------------------------------------------------------------


@pytest.mark.parametrize(
    "operation",
    [
        Put("t", {"id": "a", "sk": "0"}, Attr("sk").not_exists(), KeyError),
        Update("t", key("a"), {"v": 1}, ("w",), Attr("sk").exists(), KeyError),
        Delete("t", key("a"), Attr("sk").exists(), KeyError),
        ConditionCheck("t", key("a"), Attr("sk").exists(), KeyError),
    ],
    ids=lambda operation: type(operation).__name__,
)
def test_operations_stay_frozen_dataclasses_of_their_fields(operation: Operation) -> None:
    """Their __init__ writes the fields in one update; the rest is the dataclass's."""
    names = [field.name for field in dataclasses.fields(operation)]
    assert list(vars(operation)) == names  # (the walk, once made, comes after them)
    assert type(operation)(**{name: getattr(operation, name) for name in names}) == operation
    assert dataclasses.replace(operation, table_name="u").table_name == "u"
    assert repr(operation).startswith(f"{type(operation).__name__}(table_name='t', ")
    with pytest.raises(dataclasses.FrozenInstanceError):
        operation.table_name = "u"  # type: ignore[misc]


def test_an_update_without_assignments_gets_its_own_empty_ones() -> None:
    first, second = Update("t", key("a"), remove=("v",)), Update("t", key("b"), remove=("v",))
    assert first.set == {} and first.set is not second.set
