"""The transaction builder, on both backends: operations, conditions, errors, limits, retries."""

from __future__ import annotations

import gc
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any

import pytest
from boto3.dynamodb.conditions import Attr
from boto3.dynamodb.types import Binary
from botocore.exceptions import ClientError

from enrollkit import InMemoryPersistence, KeyPair, RetryPolicy
from enrollkit.errors import (
    CancellationReason,
    TransactionCanceled,
    TransactionError,
    TransientFailure,
)
from enrollkit.persistence.base import BasePersistence
from enrollkit.transaction.builder import TransactionBuilder, TransactionExecutor, open_transaction
from enrollkit.transaction.operations import BuiltOperations, Operation, Put, Update
from tests.conftest import (
    MOTO_OVERSIZED_UPDATE,
    Endpoint,
    drop_tables,
    engine_of,
    new_dynamodb,
)

KB = 1024


class FirstFailed(TransactionCanceled):
    pass


class SecondFailed(TransactionCanceled):
    pass


def key(pk: str, sk: str = "0") -> KeyPair:
    return KeyPair(pk=pk, sk=sk)


Send = tuple[str, tuple[Operation, ...]]


@pytest.fixture
def sends(persistence: BasePersistence, monkeypatch: pytest.MonkeyPatch) -> list[Send]:
    """Every transaction the backend is asked to execute (token, operations)."""
    recorded: list[Send] = []
    original = persistence.execute_transaction

    def spy(operations: Sequence[Operation], *, client_request_token: str) -> None:
        recorded.append((client_request_token, tuple(operations)))
        original(operations, client_request_token=client_request_token)

    monkeypatch.setattr(persistence, "execute_transaction", spy)
    return recorded


# -- the four operations ---------------------------------------------------------------


def test_put_update_delete_condition_commit_together(
    persistence: BasePersistence, sends: list[Send]
) -> None:
    persistence.put_item({"id": "u", "sk": "0", "n": 1, "old": "x"})
    persistence.put_item({"id": "d", "sk": "0"})
    persistence.put_item({"id": "c", "sk": "0", "state": "open"})

    with persistence.transact_writer() as tx:
        tx.put(item={"id": "p", "sk": "0", "v": "new"}, cond=Attr("sk").not_exists())
        tx.update(
            key=key("u"),
            set={"n": 2, "price": Decimal("9.5")},
            remove=["old"],
            cond=Attr("n").eq(1),
        )
        tx.delete(key=key("d"), cond=Attr("sk").exists())
        tx.condition(key=key("c"), cond=Attr("state").eq("open"))

    assert len(sends) == 1
    assert persistence.get_item(key("p")) == {"id": "p", "sk": "0", "v": "new"}
    assert persistence.get_item(key("u")) == {"id": "u", "sk": "0", "n": 2, "price": Decimal("9.5")}
    assert persistence.get_item(key("d")) is None
    assert persistence.get_item(key("c")) == {"id": "c", "sk": "0", "state": "open"}


def test_update_of_a_missing_item_creates_it_unless_the_condition_requires_it(
    persistence: BasePersistence,
) -> None:
    with persistence.transact_writer() as tx:
        tx.update(key=key("fresh"), set={"status": "AVAILABLE"})
    assert persistence.get_item(key("fresh")) == {"id": "fresh", "sk": "0", "status": "AVAILABLE"}

    with pytest.raises(TransactionCanceled), persistence.transact_writer() as tx:
        tx.update(key=key("ghost"), set={"status": "USED"}, cond=Attr("sk").exists())
    assert persistence.get_item(key("ghost")) is None


def test_delete_of_a_missing_item_is_a_no_op(persistence: BasePersistence) -> None:
    with persistence.transact_writer() as tx:
        tx.delete(key=key("nothing"))
        tx.put(item={"id": "other", "sk": "0"})
    assert persistence.get_item(key("other")) == {"id": "other", "sk": "0"}


def test_one_transaction_spans_both_tables(persistence: BasePersistence) -> None:
    orders = persistence.order_table_name
    with persistence.transact_writer() as tx:
        # The same key in two tables is two items: allowed in one transaction.
        tx.put(item={"id": "o-1", "sk": "0", "where": "enrollments"})
        tx.put(item={"id": "o-1", "sk": "0", "where": "orders"}, table_name=orders)
        tx.update(key=key("o-1", "generated_items#s"), set={"status": "USED"}, table_name=orders)

    assert persistence.get_item(key("o-1")) == {"id": "o-1", "sk": "0", "where": "enrollments"}
    assert persistence.get_item(key("o-1"), table_name=orders) == {
        "id": "o-1",
        "sk": "0",
        "where": "orders",
    }
    assert persistence.query("o-1", table_name=orders) == [
        {"id": "o-1", "sk": "0", "where": "orders"},
        {"id": "o-1", "sk": "generated_items#s", "status": "USED"},
    ]

    # A condition on the orders table sees the orders item, not the enrollments one.
    with pytest.raises(TransactionCanceled), persistence.transact_writer() as tx:
        tx.condition(key=key("o-1"), cond=Attr("where").eq("enrollments"), table_name=orders)
        tx.put(item={"id": "after", "sk": "0"})
    assert persistence.get_item(key("after")) is None


# -- cancellation: which error, which reasons ----------------------------------------------


@pytest.mark.parametrize("first", ["condition", "put"])
def test_cancellation_raises_exc_cls_of_the_first_failed_operation_with_reasons_in_order(
    persistence: BasePersistence, first: str
) -> None:
    persistence.put_item({"id": "held", "sk": "0", "owner": "someone", "n": 7})

    def failing_condition(exc: type[TransactionCanceled]) -> Callable[[Any], None]:
        return lambda tx: tx.condition(key=key("absent"), cond=Attr("sk").exists(), exc_cls=exc)

    def failing_put(exc: type[TransactionCanceled]) -> Callable[[Any], None]:
        return lambda tx: tx.put(
            item={"id": "held", "sk": "0", "owner": "me"},
            cond=Attr("sk").not_exists(),
            exc_cls=exc,
        )

    order = (
        [failing_condition(FirstFailed), failing_put(SecondFailed)]
        if first == "condition"
        else [failing_put(FirstFailed), failing_condition(SecondFailed)]
    )
    with pytest.raises(TransactionCanceled) as raised, persistence.transact_writer() as tx:
        tx.put(item={"id": "ok", "sk": "0"})
        order[0](tx)
        tx.delete(key=key("ok2"))
        order[1](tx)

    error = raised.value
    assert type(error) is FirstFailed
    assert error.failed_index == 1
    codes = [reason.code for reason in error.reasons]
    assert codes == ["None", "ConditionalCheckFailed", "None", "ConditionalCheckFailed"]
    assert all(isinstance(reason, CancellationReason) for reason in error.reasons)
    held = {"id": "held", "sk": "0", "owner": "someone", "n": 7}
    items = [reason.item for reason in error.reasons]
    if first == "condition":
        assert items == [None, None, None, held]
        assert error.failed_item is None  # the checked item did not exist
    else:
        assert items == [None, held, None, None]
        assert error.failed_item == held
    # Nothing of a cancelled transaction is written.
    assert persistence.get_item(key("ok")) is None
    assert persistence.get_item(key("held")) == held


def test_default_exc_cls_is_transaction_canceled(persistence: BasePersistence) -> None:
    with pytest.raises(TransactionCanceled) as raised, persistence.transact_writer() as tx:
        tx.condition(key=key("absent"), cond=Attr("sk").exists())
    assert type(raised.value) is TransactionCanceled
    assert [reason.code for reason in raised.value.reasons] == ["ConditionalCheckFailed"]


@pytest.mark.parametrize("not_an_exception", [int, "DeduplicationConflictError", ValueError()])
def test_exc_cls_must_be_an_exception_class(
    persistence: BasePersistence, not_an_exception: Any
) -> None:
    with pytest.raises(TransactionError), persistence.transact_writer() as tx:
        tx.put(item={"id": "a", "sk": "0"}, exc_cls=not_an_exception)
    assert persistence.get_item(key("a")) is None


# -- refused before sending ---------------------------------------------------------------


def test_exactly_100_operations_commit(persistence: BasePersistence, sends: list[Send]) -> None:
    with persistence.transact_writer() as tx:
        for index in range(100):
            tx.put(item={"id": "many", "sk": f"{index:03}"})
    assert len(sends) == 1
    assert len(persistence.query("many")) == 100


def test_more_than_100_operations_is_refused_before_sending(
    persistence: BasePersistence, sends: list[Send]
) -> None:
    with pytest.raises(TransactionError), persistence.transact_writer() as tx:
        for index in range(101):
            tx.put(item={"id": "many", "sk": f"{index:03}"})
    assert sends == []
    assert persistence.query("many") == []


@pytest.mark.parametrize(
    "second",
    [
        lambda tx: tx.condition(key=key("same"), cond=Attr("sk").not_exists()),
        lambda tx: tx.update(key=key("same"), set={"a": 1}),
        lambda tx: tx.delete(key=key("same")),
        lambda tx: tx.put(item={"id": "same", "sk": "0", "again": True}),
    ],
    ids=["condition", "update", "delete", "put"],
)
def test_two_operations_on_one_item_are_refused_before_sending(
    persistence: BasePersistence, sends: list[Send], second: Callable[[Any], None]
) -> None:
    with pytest.raises(TransactionError), persistence.transact_writer() as tx:
        tx.put(item={"id": "same", "sk": "0"})
        second(tx)
    assert sends == []
    assert persistence.get_item(key("same")) is None


def test_request_over_4_mb_is_refused_before_sending(
    persistence: BasePersistence, sends: list[Send]
) -> None:
    # Eleven items of 390 KB: each is under the 400 KB item limit, together over 4 MB.
    with pytest.raises(TransactionError), persistence.transact_writer() as tx:
        for index in range(11):
            tx.put(item={"id": "big", "sk": str(index), "blob": "x" * (390 * KB)})
    assert sends == []
    assert persistence.query("big") == []


def test_item_over_400_kb_is_refused_before_sending(
    persistence: BasePersistence, sends: list[Send]
) -> None:
    with pytest.raises(TransactionError), persistence.transact_writer() as tx:
        tx.put(item={"id": "small", "sk": "0"})
        tx.put(item={"id": "huge", "sk": "0", "blob": "x" * (401 * KB)})
    assert sends == []
    assert persistence.get_item(key("small")) is None


def test_update_that_grows_an_item_over_400_kb_writes_nothing(
    persistence: BasePersistence, request: pytest.FixtureRequest
) -> None:
    """DynamoDB (Local) cancels the transaction with a ValidationError reason for that
    operation; AWS lists "an item size to update has exceeded the maximum allowed size" among
    TransactWriteItems' cancellation causes. moto refuses the whole request instead."""
    if engine_of(persistence) == "moto":
        request.applymarker(pytest.mark.xfail(strict=True, reason=MOTO_OVERSIZED_UPDATE))
    persistence.put_item({"id": "grow", "sk": "0", "blob": "x" * (300 * KB)})
    with pytest.raises(TransactionCanceled) as raised, persistence.transact_writer() as tx:
        tx.put(item={"id": "side", "sk": "0"})
        tx.update(key=key("grow"), set={"more": "y" * (200 * KB)})
    assert [reason.code for reason in raised.value.reasons] == ["None", "ValidationError"]
    assert raised.value.failed_index == 1
    assert "operation 2 (Update of 'grow'/'0'): ValidationError" in str(raised.value)
    assert persistence.get_item(key("side")) is None
    assert set(persistence.get_item(key("grow")) or {}) == {"id", "sk", "blob"}


# -- what was sized is what is sent -----------------------------------------------------------


def nested_values() -> dict[str, Any]:
    """Every kind of container DynamoDB stores, nested: a map holding a list of maps, a
    string set, a list holding a list, and a bytearray (binary, mutable too)."""
    return {
        "profile": {"name": "Ana", "tags": [{"k": "v"}], "scores": [1, 2]},
        "labels": {"a", "b"},
        "grid": [["x"], "y"],
        "blob": bytearray(b"ab"),
    }


def change_every_container(values: dict[str, Any]) -> None:
    """Change, in place, each container of :func:`nested_values`: one change makes the
    values far over DynamoDB's 400 KB item limit."""
    values["profile"]["name"] = "z" * (500 * KB)
    values["profile"]["tags"][0]["k"] = "changed"
    values["profile"]["scores"].append(3)
    values["labels"].add("c")
    values["grid"][0].append("more")
    values["blob"].extend(b"cd")


def test_put_sends_its_item_as_of_put_at_every_depth(persistence: BasePersistence) -> None:
    """The builder sizes a put's item when it is added; a caller changing a nested value
    afterwards changes neither that check nor what is stored (else an oversized item
    would reach the embedded backend, which stores it, unsized)."""
    item = {"id": "snap", "sk": "0", **nested_values()}
    with persistence.transact_writer() as tx:
        tx.put(item=item)
        change_every_container(item)
    assert persistence.get_item(key("snap")) == {
        "id": "snap",
        "sk": "0",
        **nested_values(),
        "blob": b"ab",  # (binary comes back as bytes)
    }


def test_update_sends_its_values_as_of_update_at_every_depth(
    persistence: BasePersistence,
) -> None:
    persistence.put_item({"id": "snap", "sk": "1", "kept": "k"})
    assigned = nested_values()
    with persistence.transact_writer() as tx:
        tx.update(key=key("snap", "1"), set=assigned)
        change_every_container(assigned)
    assert persistence.get_item(key("snap", "1")) == {
        "id": "snap",
        "sk": "1",
        "kept": "k",
        **nested_values(),
        "blob": b"ab",
    }


def plain_values() -> dict[str, Any]:
    """:func:`nested_values` without the bytearray: values of the plain types only, which
    the embedded backend keeps as the builder's snapshot holds them."""
    values = nested_values()
    del values["blob"]
    return values


def test_the_operations_a_builder_shows_are_copies_of_what_it_sent(
    persistence: BasePersistence,
) -> None:
    """The builder hands its snapshots to the backend (the embedded one keeps plain ones as
    they are); what ``operations`` shows afterwards is a copy: changing it changes nothing
    stored."""
    persistence.put_item({"id": "shown", "sk": "1"})
    with persistence.transact_writer() as tx:
        tx.put(item={"id": "shown", "sk": "0", **plain_values()})
        tx.update(key=key("shown", "1"), set=plain_values())
    put, update = tx.operations
    assert isinstance(put, Put) and isinstance(update, Update)
    assert put.item == {"id": "shown", "sk": "0", **plain_values()}
    assert update.set == plain_values()
    change_every_container({**put.item, "blob": bytearray()})  # type: ignore[arg-type]
    change_every_container({**update.set, "blob": bytearray()})
    assert persistence.get_item(key("shown")) == {"id": "shown", "sk": "0", **plain_values()}
    assert persistence.get_item(key("shown", "1")) == {
        "id": "shown",
        "sk": "1",
        **plain_values(),
    }


def test_a_plain_item_is_stored_as_of_put_however_it_changes(
    persistence: BasePersistence,
) -> None:
    item = {"id": "plain", "sk": "0", **plain_values()}
    with persistence.transact_writer() as tx:
        tx.put(item=item)
        change_every_container({**item, "blob": bytearray()})
    assert persistence.get_item(key("plain")) == {"id": "plain", "sk": "0", **plain_values()}


def test_values_of_other_types_are_stored_as_they_read_back(
    persistence: BasePersistence,
) -> None:
    """Not plain: the embedded backend converts them as it converts any operation's."""
    with persistence.transact_writer() as tx:
        tx.put(
            item={
                "id": "other",
                "sk": "0",
                "whole": Decimal("2.0"),
                "frozen": frozenset({"f"}),
                "pair": ("a", 1),
            }
        )
    stored = persistence.get_item(key("other"))
    assert stored == {"id": "other", "sk": "0", "whole": 2, "frozen": {"f"}, "pair": ["a", 1]}
    assert stored is not None
    assert (type(stored["whole"]), type(stored["frozen"]), type(stored["pair"])) == (
        int,
        set,
        list,
    )


def test_a_boto3_binary_is_sized_sent_and_read_back_as_bytes(persistence: BasePersistence) -> None:
    """The size walk used to fail on boto3's Binary with a bare TypeError."""
    with persistence.transact_writer() as tx:
        tx.put(item={"id": "binary", "sk": "0", "blob": Binary(b"\x00ab")})
    assert persistence.get_item(key("binary")) == {"id": "binary", "sk": "0", "blob": b"\x00ab"}


def test_built_operations_carry_one_plain_flag_per_operation() -> None:
    put = Put("t", {"id": "a", "sk": "0"})
    assert BuiltOperations([put], [True]).plain == (True,)
    assert BuiltOperations([put], [True]) == (put,)
    with pytest.raises(ValueError, match="one plain flag per operation"):
        BuiltOperations([put], [])


# -- block and builder lifecycle -------------------------------------------------------------


def test_builder_is_single_use(persistence: BasePersistence, sends: list[Send]) -> None:
    with persistence.transact_writer() as tx:
        tx.put(item={"id": "once", "sk": "0"})
    with pytest.raises(TransactionError):
        tx.put(item={"id": "twice", "sk": "0"})
    with pytest.raises(TransactionError):
        tx.delete(key=key("once"))
    with pytest.raises(TransactionError):
        tx.commit()
    assert len(sends) == 1
    assert persistence.get_item(key("twice")) is None
    assert persistence.get_item(key("once")) == {"id": "once", "sk": "0"}


def test_commit_inside_the_block_sends_once_and_the_block_ends_quietly(
    persistence: BasePersistence, sends: list[Send]
) -> None:
    with persistence.transact_writer() as tx:
        tx.put(item={"id": "early", "sk": "0"})
        tx.commit()
        assert persistence.get_item(key("early")) == {"id": "early", "sk": "0"}
        with pytest.raises(TransactionError):  # still single use
            tx.put(item={"id": "late", "sk": "0"})
    assert len(sends) == 1
    assert persistence.get_item(key("late")) is None


def test_discard_inside_the_block_sends_nothing(
    persistence: BasePersistence, sends: list[Send]
) -> None:
    with persistence.transact_writer() as tx:
        tx.put(item={"id": "dropped", "sk": "0"})
        tx.discard()
    assert sends == []
    assert persistence.get_item(key("dropped")) is None


def test_builder_discarded_by_an_exception_is_single_use_too(persistence: BasePersistence) -> None:
    with pytest.raises(RuntimeError), persistence.transact_writer() as tx:
        raise RuntimeError("boom")
    with pytest.raises(TransactionError):
        tx.put(item={"id": "late", "sk": "0"})


def test_exception_inside_the_block_sends_nothing(
    persistence: BasePersistence, sends: list[Send]
) -> None:
    class Boom(Exception):
        pass

    with pytest.raises(Boom), persistence.transact_writer() as tx:
        tx.put(item={"id": "never", "sk": "0"})
        tx.delete(key=key("never-2"))
        raise Boom
    assert sends == []
    assert persistence.get_item(key("never")) is None


def test_empty_block_sends_nothing(persistence: BasePersistence, sends: list[Send]) -> None:
    with persistence.transact_writer():
        pass
    assert sends == []
    if isinstance(persistence, InMemoryPersistence):
        assert persistence.transactions_committed == 0


# -- values are values -----------------------------------------------------------------------

TRICKY = [":v0", "#n0 = :x", "attribute_not_exists(id)", ":u0", "#u0", "a) OR (b", "SET #a = :b"]


def test_values_that_look_like_expression_syntax_are_stored_verbatim(
    persistence: BasePersistence,
) -> None:
    item = {"id": "tricky", "sk": "0", **{f"a{index}": value for index, value in enumerate(TRICKY)}}
    with persistence.transact_writer() as tx:
        tx.put(item=item, cond=Attr("sk").not_exists() & Attr("a0").ne(":v0"))
    assert persistence.get_item(key("tricky")) == item

    # Conditions compare against the values, never interpret them.
    with persistence.transact_writer() as tx:
        tx.update(
            key=key("tricky"),
            set={"#n0 = :x": ":v0", ":v0": "#n0", "nested": {"#k": [":v1", "attribute_exists(x)"]}},
            remove=["a1"],
            cond=Attr("a0").eq(":v0") & Attr("a2").eq("attribute_not_exists(id)"),
        )
    stored = persistence.get_item(key("tricky"))
    assert stored is not None
    assert stored["#n0 = :x"] == ":v0"
    assert stored[":v0"] == "#n0"
    assert stored["nested"] == {"#k": [":v1", "attribute_exists(x)"]}
    assert "a1" not in stored
    assert stored["a2"] == "attribute_not_exists(id)"

    # A value equal to a placeholder name does not match the attribute it would name.
    with pytest.raises(TransactionCanceled), persistence.transact_writer() as tx:
        tx.condition(key=key("tricky"), cond=Attr("a0").eq("#n0"))


def test_update_names_are_attribute_names_not_paths(persistence: BasePersistence) -> None:
    persistence.put_item({"id": "names", "sk": "0", "course": {"id": "c-1"}})
    with persistence.transact_writer() as tx:
        tx.update(key=key("names"), set={"course.id": "top-level"})
    assert persistence.get_item(key("names")) == {
        "id": "names",
        "sk": "0",
        "course": {"id": "c-1"},
        "course.id": "top-level",
    }


# -- client request token ---------------------------------------------------------------------


def test_builder_sends_its_client_request_token(
    persistence: BasePersistence, sends: list[Send]
) -> None:
    with persistence.transact_writer(client_request_token="my-token-1") as tx:
        tx.put(item={"id": "t", "sk": "0"})
    assert [token for token, _ in sends] == ["my-token-1"]
    with persistence.transact_writer() as tx:
        tx.put(item={"id": "t2", "sk": "0"})
    assert sends[1][0] and sends[1][0] != "my-token-1"


def test_embedded_backend_applies_a_repeated_token_once() -> None:
    store = InMemoryPersistence()
    for _ in range(3):
        # The condition would fail on a second application: the token makes it a no-op.
        with store.transact_writer(client_request_token="same-token") as tx:
            tx.put(item={"id": "once", "sk": "0"}, cond=Attr("sk").not_exists())
            tx.update(key=key("counter"), set={"v": 1})
    assert store.transactions_committed == 1
    assert store.get_item(key("once")) == {"id": "once", "sk": "0"}


def test_embedded_backend_refuses_a_token_reused_for_other_operations() -> None:
    store = InMemoryPersistence()
    with store.transact_writer(client_request_token="token-x") as tx:
        tx.put(item={"id": "first", "sk": "0"})
    with (
        pytest.raises(TransactionError),
        store.transact_writer(client_request_token="token-x") as tx,
    ):
        tx.put(item={"id": "second", "sk": "0"})
    assert store.get_item(key("second")) is None
    assert store.transactions_committed == 1


@pytest.mark.parametrize(
    ("first", "second"),
    [
        (True, 1),
        (1, Decimal("1.0")),
        (Decimal("1.0"), 1),
        ([1, True], [1, 1]),
        ({"k": False}, {"k": 0}),
    ],
    ids=["bool-vs-number", "number-as-written", "stored-otherwise", "in-a-list", "in-a-map"],
)
def test_embedded_token_replay_tells_payload_types_apart_as_dynamodb_does(
    first: Any, second: Any
) -> None:
    """DynamoDB Local, same token: {"BOOL": true} then {"N": "1"} (or "1" then "1.0")
    is IdempotentParameterMismatchException, not a replay. Python's True == 1 is not."""
    store = InMemoryPersistence()
    with store.transact_writer(client_request_token="token-v") as tx:
        tx.put(item={"id": "v", "sk": "0", "v": first})
    with (
        pytest.raises(TransactionError),
        store.transact_writer(client_request_token="token-v") as tx,
    ):
        tx.put(item={"id": "v", "sk": "0", "v": second})
    with (
        pytest.raises(TransactionError),
        store.transact_writer(client_request_token="token-v") as tx,
    ):
        tx.put(item={"id": "v", "sk": "0"}, cond=Attr("v").ne(second))
    assert store.get_item(key("v")) == {"id": "v", "sk": "0", "v": first}
    assert store.transactions_committed == 1


def test_embedded_token_replay_is_recognised_after_its_items_changed() -> None:
    """A token remembers its request, not the items as they are now: later writes to those
    items (the store's copies a plain request is remembered by) change nothing."""
    store = InMemoryPersistence()
    request = {"id": "r", "sk": "0", "m": {"k": ["v"]}, "s": {"a"}}

    def commit() -> None:
        with store.transact_writer(client_request_token="token-r") as tx:
            tx.put(item=request, cond=Attr("sk").not_exists())
            tx.update(key=key("u"), set={"n": 1, "m": {"k": 1}})

    commit()
    with store.transact_writer() as tx:
        tx.update(key=key("r"), set={"m": {"k": ["w"]}}, remove=["s"])
        tx.put(item={"id": "u", "sk": "0", "n": 2})
    commit()  # a replay: not applied again (its condition would cancel it)
    assert store.transactions_committed == 2
    assert store.get_item(key("r")) == {"id": "r", "sk": "0", "m": {"k": ["w"]}}
    with pytest.raises(TransactionError, match="IdempotentParameterMismatch"):
        request["m"] = {"k": ["w"]}
        commit()


def test_embedded_token_replay_ignores_set_and_map_order_as_dynamodb_does() -> None:
    store = InMemoryPersistence()
    for members, fields in (({"a", "b"}, {"x": 1, "y": 2}), ({"b", "a"}, {"y": 2, "x": 1})):
        with store.transact_writer(client_request_token="token-o") as tx:
            tx.put(item={"id": "o", "sk": "0", "s": members, "m": fields}, cond=Attr("s").ne({"c"}))
    assert store.transactions_committed == 1


CONDITION_CHANGES: dict[str, tuple[Callable[[], Any], Callable[[], Any]]] = {
    "operator": (lambda: Attr("s").ne(1), lambda: Attr("s").eq(1)),
    "attribute": (lambda: Attr("s").ne(1), lambda: Attr("t").ne(1)),
    "value": (lambda: Attr("s").ne(1), lambda: Attr("s").ne(2)),
    "value-type": (lambda: Attr("s").ne(1), lambda: Attr("s").ne(True)),
    "and-or": (
        lambda: Attr("s").ne(1) & Attr("t").ne(2),
        lambda: Attr("s").ne(1) | Attr("t").ne(2),
    ),
    # (every condition holds on the missing item: a replay is answered before conditions)
    "in-candidates": (lambda: ~Attr("s").is_in([1, 2]), lambda: ~Attr("s").is_in([1, 3])),
    "size": (lambda: ~Attr("s").gt(1), lambda: ~Attr("s").size().gt(1)),
    "none": (lambda: Attr("s").ne(1), lambda: None),
}


@pytest.mark.parametrize("change", list(CONDITION_CHANGES))
def test_embedded_token_replay_compares_conditions(change: str) -> None:
    """A condition is part of the request: the same token with another condition is
    IdempotentParameterMismatch on DynamoDB, and the same condition built anew a replay."""
    original, changed = CONDITION_CHANGES[change]
    store = InMemoryPersistence()
    for _ in range(2):
        with store.transact_writer(client_request_token="token-c") as tx:
            tx.put(item={"id": "c", "sk": "0"}, cond=original())
    with (
        pytest.raises(TransactionError, match="IdempotentParameterMismatch"),
        store.transact_writer(client_request_token="token-c") as tx,
    ):
        tx.put(item={"id": "c", "sk": "0"}, cond=changed())
    assert store.transactions_committed == 1


def collect_fully() -> None:
    """Two full collections: the collector untracks a tuple of untracked values only once
    the tuples inside it are untracked, which one collection does or not depending on the
    order it meets them in."""
    gc.collect()
    gc.collect()


def test_embedded_backend_remembers_tokens_without_tracked_objects() -> None:
    """The remembered transactions (10,000 of them) must not hold objects the garbage
    collector tracks: every full collection walks those, so a store's commits got slower as
    it remembered more (the operations with their conditions held over 20 per enroll)."""
    store = InMemoryPersistence()
    with store.transact_writer() as tx:
        tx.put(item={"id": "warm", "sk": "0", "m": {"k": "v"}}, cond=Attr("sk").not_exists())
    collect_fully()
    before = len(gc.get_objects())
    for n in range(500):
        with store.transact_writer() as tx:
            tx.put(item={"id": f"p{n}", "sk": "0", "m": {"k": "v"}}, cond=Attr("sk").not_exists())
            tx.update(key=key(f"u{n}"), set={"v": n}, cond=Attr("v").ne(n) & ~Attr("w").lt(3))
            tx.delete(key=key(f"d{n}"), cond=Attr("sk").not_exists() | Attr("x").is_in([1, 2]))
    collect_fully()
    # The stored items and their partitions count 3 per transaction here; remembering the
    # transaction adds the tuples that hold its item's nested map: about 6 in all.
    # Remembering the operations themselves made it 34.
    assert (len(gc.get_objects()) - before) / 500 < 8


def test_embedded_backend_remembers_a_transaction_in_a_few_tracked_objects_whatever_its_size() -> (
    None
):
    """A token keeps plain payloads by the store's own copies, which a tuple per operation
    would keep tracked (a tuple holding a dict always is): nine puts then cost nine. The
    payloads share one tuple per transaction: its new partition and about two more."""
    store = InMemoryPersistence()
    with store.transact_writer() as tx:
        tx.put(item={"id": "warm", "sk": "0"})
    per_transaction = []
    for batch in range(3):  # the least of three: another thread's objects only add
        collect_fully()
        before = len(gc.get_objects())
        for n in range(100):
            with store.transact_writer() as tx:
                for part in range(9):
                    tx.put(item={"id": f"e{batch}-{n}", "sk": f"p{part}", "v": part, "s": "t"})
        collect_fully()
        per_transaction.append((len(gc.get_objects()) - before) / 100)
    assert min(per_transaction) < 5


def test_embedded_backend_does_not_remember_the_token_of_a_cancelled_transaction() -> None:
    store = InMemoryPersistence()
    store.put_item({"id": "blocker", "sk": "0"})
    with pytest.raises(TransactionCanceled), store.transact_writer(client_request_token="tk") as tx:
        tx.condition(key=key("blocker"), cond=Attr("sk").not_exists())
        tx.put(item={"id": "x", "sk": "0"})
    assert store.get_item(key("x")) is None


# -- retries (fake executor) ------------------------------------------------------------------


class FlakyExecutor:
    """Fails with TransientFailure ``failures`` times, then succeeds."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.calls: list[tuple[str, tuple[Operation, ...]]] = []
        self.applied = 0

    def execute_transaction(
        self, operations: Sequence[Operation], *, client_request_token: str
    ) -> None:
        self.calls.append((client_request_token, tuple(operations)))
        if len(self.calls) <= self.failures:
            raise TransientFailure("throttled")
        self.applied += 1


def no_sleep_policy(attempts: int = 8, sleeps: list[float] | None = None) -> RetryPolicy:
    record = sleeps if sleeps is not None else []
    return RetryPolicy(attempts=attempts, sleep=record.append)


def test_fake_executor_satisfies_the_protocol() -> None:
    executor: TransactionExecutor = FlakyExecutor(0)
    assert hasattr(executor, "execute_transaction")


@pytest.mark.parametrize("failures", [1, 3, 7])
def test_transient_failures_are_retried_with_the_same_token(failures: int) -> None:
    executor = FlakyExecutor(failures)
    sleeps: list[float] = []
    with open_transaction(
        executor, default_table_name="t", retry_policy=no_sleep_policy(8, sleeps)
    ) as tx:
        tx.put(item={"id": "a", "sk": "0"})
        tx.delete(key=key("b"))
    assert len(executor.calls) == failures + 1
    tokens = {token for token, _ in executor.calls}
    assert len(tokens) == 1
    assert tokens == {tx.client_request_token}
    assert all(ops == executor.calls[0][1] for _, ops in executor.calls)
    assert executor.applied == 1
    assert len(sleeps) == failures
    assert all(0 <= delay <= RetryPolicy().max_delay for delay in sleeps)


def test_retries_give_up_after_the_policy_attempts() -> None:
    executor = FlakyExecutor(failures=100)
    sleeps: list[float] = []
    builder = TransactionBuilder(
        executor,
        default_table_name="t",
        client_request_token="fixed",
        retry_policy=no_sleep_policy(4, sleeps),
    )
    builder.put(item={"id": "a", "sk": "0"})
    with pytest.raises(TransientFailure):
        builder.commit()
    assert [token for token, _ in executor.calls] == ["fixed"] * 4
    assert len(sleeps) == 3
    assert executor.applied == 0


def test_default_policy_sleeps_between_retries_and_uses_its_attempts() -> None:
    sleeps: list[float] = []
    policy = RetryPolicy(sleep=sleeps.append)
    executor = FlakyExecutor(failures=1000)
    with (
        pytest.raises(TransientFailure),
        open_transaction(executor, default_table_name="t", retry_policy=policy) as tx,
    ):
        tx.put(item={"id": "a", "sk": "0"})
    assert len(executor.calls) == policy.attempts
    assert len(sleeps) == policy.attempts - 1


def test_a_failed_condition_is_not_retried() -> None:
    class Refusing:
        calls = 0

        def execute_transaction(
            self, operations: Sequence[Operation], *, client_request_token: str
        ) -> None:
            self.calls += 1
            raise TransactionCanceled(
                reasons=[
                    CancellationReason("None"),
                    CancellationReason("ConditionalCheckFailed", item={"id": "x", "sk": "0"}),
                ]
            )

    executor = Refusing()
    with (
        pytest.raises(SecondFailed) as raised,
        open_transaction(executor, default_table_name="t", retry_policy=no_sleep_policy()) as tx,
    ):
        tx.put(item={"id": "a", "sk": "0"}, exc_cls=FirstFailed)
        tx.put(item={"id": "x", "sk": "0"}, exc_cls=SecondFailed)
    assert executor.calls == 1
    assert raised.value.failed_index == 1
    assert raised.value.failed_item == {"id": "x", "sk": "0"}


def test_cancellation_without_a_failed_condition_is_plain_transaction_canceled() -> None:
    class Validation:
        def execute_transaction(
            self, operations: Sequence[Operation], *, client_request_token: str
        ) -> None:
            raise TransactionCanceled(
                reasons=[CancellationReason("None"), CancellationReason("ValidationError")]
            )

    with (
        pytest.raises(TransactionCanceled) as raised,
        open_transaction(
            Validation(), default_table_name="t", retry_policy=no_sleep_policy()
        ) as tx,
    ):
        tx.put(item={"id": "a", "sk": "0"}, exc_cls=FirstFailed)
        tx.put(item={"id": "b", "sk": "0"}, exc_cls=SecondFailed)
    assert type(raised.value) is TransactionCanceled
    assert [reason.code for reason in raised.value.reasons] == ["None", "ValidationError"]


def test_builder_records_operations_in_order_with_default_table() -> None:
    executor = FlakyExecutor(0)
    with open_transaction(executor, default_table_name="enr", retry_policy=no_sleep_policy()) as tx:
        tx.put(item={"id": "a", "sk": "0"})
        tx.put(item={"id": "a", "sk": "0"}, table_name="orders")
    (_, operations), *_ = executor.calls
    assert [type(op) for op in operations] == [Put, Put]
    assert [op.table_name for op in operations] == ["enr", "orders"]


@pytest.mark.parametrize(
    "add",
    [
        lambda tx, cond: tx.put(item={"id": "x", "sk": "0"}, cond=cond),
        lambda tx, cond: tx.update(key=key("x"), set={"a": 1}, cond=cond),
        lambda tx, cond: tx.delete(key=key("x"), cond=cond),
        lambda tx, cond: tx.condition(key=key("x"), cond=cond),
    ],
    ids=["put", "update", "delete", "condition"],
)
def test_a_condition_dynamodb_cannot_parse_is_refused_on_every_operation(
    persistence: BasePersistence, sends: list[Send], add: Callable[[Any, Any], None]
) -> None:
    # DynamoDB answers ValidationException: BETWEEN's bounds are the wrong way round.
    with pytest.raises(TransactionError), persistence.transact_writer() as tx:
        tx.put(item={"id": "other", "sk": "0"})
        add(tx, Attr("sk").exists() & Attr("n").between(10, 1))
    assert sends == []
    assert persistence.get_item(key("other")) is None


@pytest.mark.parametrize(
    "cond",
    ["attribute_not_exists(sk)", Attr("sk"), Attr("s").size(), 42],
    ids=["expression-string", "bare-attr", "bare-size", "number"],
)
@pytest.mark.parametrize(
    "add",
    [
        lambda tx, cond: tx.put(item={"id": "x", "sk": "0"}, cond=cond),
        lambda tx, cond: tx.update(key=key("x"), set={"a": 1}, cond=cond),
        lambda tx, cond: tx.delete(key=key("x"), cond=cond),
        lambda tx, cond: tx.condition(key=key("x"), cond=cond),
    ],
    ids=["put", "update", "delete", "condition"],
)
def test_a_cond_that_is_not_a_condition_is_a_transaction_error(
    persistence: BasePersistence, sends: list[Send], add: Callable[[Any, Any], None], cond: Any
) -> None:
    # The seed passed expression strings (cond_expr='attribute_not_exists(sk)').
    with pytest.raises(TransactionError, match="condition"), persistence.transact_writer() as tx:
        add(tx, cond)
    assert sends == []


# -- attribute names ---------------------------------------------------------------------

# DynamoDB (Local) refuses an empty name, its own or a map's ("Empty attribute name",
# ValidationException); botocore refuses a name that is not a string before sending.
BAD_NAMES: dict[str, dict[Any, Any]] = {
    "empty name": {"": "x"},
    "empty map key": {"m": {"": "x"}},
    "empty key of a map in a list": {"l": [{"": "x"}]},
    "int name": {1: "x"},
    "bytes name": {b"n": "x"},
    "int map key": {"m": {1: "x"}},
}


@pytest.mark.parametrize("attributes", list(BAD_NAMES.values()), ids=list(BAD_NAMES))
def test_a_name_dynamodb_refuses_is_refused_before_sending(
    persistence: BasePersistence, sends: list[Send], attributes: dict[Any, Any]
) -> None:
    with pytest.raises(TransactionError, match="name"), persistence.transact_writer() as tx:
        tx.put(item={"id": "named", "sk": "0"})
        tx.put(item={"id": "named", "sk": "1", **attributes})
    with pytest.raises(TransactionError, match="name"), persistence.transact_writer() as tx:
        tx.update(key=key("named", "2"), set=attributes)
    with pytest.raises(TransactionError, match="name"):
        persistence.put_item({"id": "named", "sk": "3", **attributes})
    assert sends == []
    assert persistence.query("named") == []


@pytest.mark.dynamodb_local
def test_dynamodb_local_refuses_the_empty_names_the_builder_refuses(
    dynamodb_local_server: Endpoint,
) -> None:
    """The premise of the two tests around this one, on AWS's own engine: sent as they are
    (the client, not the builder), empty names are a ValidationException. (A name that is
    not a string never leaves botocore.)"""
    store = new_dynamodb(dynamodb_local_server)
    try:
        item = {"id": {"S": "named"}, "sk": {"S": "0"}}
        requests = [
            {"Item": {**item, "": {"S": "x"}}},
            {"Item": {**item, "m": {"M": {"": {"S": "x"}}}}},
            {
                "Item": item,
                "ConditionExpression": "attribute_not_exists(#n)",
                "ExpressionAttributeNames": {"#n": ""},
            },
        ]
        for request in requests:
            put = {"Put": {"TableName": store.table_name, **request}}
            with pytest.raises(ClientError, match="Empty attribute name") as refused:
                store.client.transact_write_items(TransactItems=[put])
            assert refused.value.response["Error"]["Code"] == "ValidationException"
        assert store.query("named") == []
    finally:
        drop_tables(store)


@pytest.mark.parametrize("removed", ["", 1, b"n"])
def test_an_update_removing_a_name_dynamodb_refuses_is_refused_before_sending(
    persistence: BasePersistence, sends: list[Send], removed: Any
) -> None:
    with pytest.raises(TransactionError, match="name"), persistence.transact_writer() as tx:
        tx.update(key=key("named"), set={"a": "x"}, remove=[removed])
    assert sends == []
    assert persistence.get_item(key("named")) is None
