"""ClientRequestToken, on every backend: what DynamoDB Local does is what DynamoDB does
(AWS, TransactWriteItems: "a ClientRequestToken makes the call idempotent ... valid for 10
minutes"; the same token with other parameters is IdempotentParameterMismatchException).

moto ignores tokens: each replay is applied again. enrollkit never relies on the token alone
(every write is conditioned so that a re-applied commit is recognised), and the cases where
moto's answer differs are pinned below as strict xfails, so a moto fix shows up.
"""

from __future__ import annotations

import random
import uuid

import pytest
from boto3.dynamodb.conditions import Attr

from enrollkit import DynamoDBPersistence, Enrollment, EnrollOutcome, KeyPair, RetryPolicy, enroll
from enrollkit.errors import TransactionCanceled, TransactionError
from enrollkit.persistence.base import BasePersistence
from tests.conftest import NOW, TENANT, Endpoint, engine_of, make_course, make_user, new_dynamodb
from tests.support.faults import FaultInjectingClient

MOTO_IGNORES_TOKENS = (
    "moto ignores ClientRequestToken and applies a replay again (DynamoDB and DynamoDB Local "
    "answer a replay within 10 minutes without applying it)"
)


def token() -> str:
    # DynamoDB Local keeps tokens across tables (-sharedDb): never reuse one between tests.
    return str(uuid.uuid4())


def key(pk: str) -> KeyPair:
    return KeyPair(pk=pk, sk="0")


def pin_moto(persistence: object, request: pytest.FixtureRequest) -> None:
    if engine_of(persistence) == "moto":
        request.applymarker(pytest.mark.xfail(strict=True, reason=MOTO_IGNORES_TOKENS))


def test_a_replay_with_the_same_token_and_payload_is_not_applied_again(
    persistence: BasePersistence, request: pytest.FixtureRequest
) -> None:
    pin_moto(persistence, request)
    same = token()
    for _ in range(3):
        # Applied twice, the condition would fail and cancel the replay.
        with persistence.transact_writer(client_request_token=same) as tx:
            tx.put(item={"id": "once", "sk": "0"}, cond=Attr("sk").not_exists())
            tx.update(key=key("counter"), set={"v": 1})
    assert persistence.get_item(key("once")) == {"id": "once", "sk": "0"}


def test_the_same_token_with_another_payload_is_refused(
    persistence: BasePersistence, request: pytest.FixtureRequest
) -> None:
    pin_moto(persistence, request)
    reused = token()
    with persistence.transact_writer(client_request_token=reused) as tx:
        tx.put(item={"id": "first", "sk": "0"})
    with (
        pytest.raises(TransactionError, match=r"IdempotentParameterMismatch|another transaction"),
        persistence.transact_writer(client_request_token=reused) as tx,
    ):
        tx.put(item={"id": "second", "sk": "0"})
    assert persistence.get_item(key("second")) is None


@pytest.mark.parametrize(
    "value",
    [pytest.param((True, 1), id="bool-vs-number"), pytest.param(("1", 1), id="string-vs-number")],
)
def test_a_payload_differing_only_in_type_is_another_payload(
    persistence: BasePersistence, request: pytest.FixtureRequest, value: tuple[object, object]
) -> None:
    pin_moto(persistence, request)
    reused = token()
    first, second = value
    with persistence.transact_writer(client_request_token=reused) as tx:
        tx.put(item={"id": "typed", "sk": "0", "v": first})
    with (
        pytest.raises(TransactionError),
        persistence.transact_writer(client_request_token=reused) as tx,
    ):
        tx.put(item={"id": "typed", "sk": "0", "v": second})
    assert persistence.get_item(key("typed")) == {"id": "typed", "sk": "0", "v": first}


def test_the_token_of_a_cancelled_transaction_runs_again(persistence: BasePersistence) -> None:
    """A cancelled transaction leaves no record of its token: the same request, once its
    condition holds, is applied (DynamoDB Local and the embedded backend agree; moto too,
    as it ignores tokens)."""
    same = token()
    persistence.put_item({"id": "blocker", "sk": "0"})
    for expect_cancelled in (True, False):
        if not expect_cancelled:
            with persistence.transact_writer() as tx:
                tx.delete(key=key("blocker"))
        try:
            with persistence.transact_writer(client_request_token=same) as tx:
                tx.put(item={"id": "after", "sk": "0"}, cond=Attr("sk").not_exists())
                tx.condition(key=key("blocker"), cond=Attr("sk").not_exists())
        except TransactionCanceled:
            assert expect_cancelled
        else:
            assert not expect_cancelled
    assert persistence.get_item(key("after")) == {"id": "after", "sk": "0"}


def test_a_lost_enroll_response_is_retried_with_its_token_and_answers_created(
    dynamodb_endpoint: Endpoint, request: pytest.FixtureRequest
) -> None:
    """The commit is applied, its response lost; the builder re-sends it with the same token.
    DynamoDB answers that replay with success, so enroll() says CREATED. On moto the replay is
    applied again, its conditions fail, and enroll() recognises its own enrollment:
    ALREADY_ENROLLED (correct, but it cannot tell the caller it was this very call)."""
    clean = new_dynamodb(dynamodb_endpoint)
    pin_moto(clean, request)
    faults = FaultInjectingClient(clean.client, rng=random.Random(0), rate=0.0)
    persistence = DynamoDBPersistence(
        clean.table_name,
        clean.order_table_name,
        client=faults,  # type: ignore[arg-type]
        retry_policy=RetryPolicy(sleep=lambda _: None),
    )
    faults.force("transact_write_items", "lost_response")
    enrollment = Enrollment(user=make_user("u-lost"), course=make_course("c-lost"))
    outcome = enroll(enrollment, tenant=TENANT, persistence_layer=persistence, now=NOW)
    assert faults.lost_commits == 1
    assert outcome is EnrollOutcome.CREATED


@pytest.mark.parametrize("bad", ["", "x" * 37])
def test_a_token_dynamodb_refuses_is_refused_before_sending(
    persistence: BasePersistence, bad: str
) -> None:
    """DynamoDB (Local): "Member must have length less than or equal to 36" (and at least 1)."""
    with (
        pytest.raises(TransactionError, match="client request token"),
        persistence.transact_writer(client_request_token=bad) as tx,
    ):
        tx.put(item={"id": "never", "sk": "0"})
    assert persistence.get_item(key("never")) is None
