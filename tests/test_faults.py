"""Fault injection: DynamoDB (moto) behind a client that fails 30% of the calls.

Faults: throttling, TransactionConflictException, conflict-only transaction
cancellations, TransactionInProgressException, InternalServerError, connection errors,
and lost responses (applied, then an error). See tests/support/faults.py for why the
faults sit in a client wrapper, outside botocore's retries.

The random program of tests/test_state_machine.py runs through it: every answer must be
the model's (success, or the true domain error), every invariant must hold after every
step (no duplicate, no orphan item, no seat lost or doubled), and a transport error may
reach the caller only for a call that changed nothing; the caller then re-issues it, as
a service would. Fault draws come from a seeded ``random.Random`` (its seed is part of
each example, so hypothesis replays and shrinks a failure exactly), and the examples
themselves are derandomized: the run is reproducible.
"""

from __future__ import annotations

import random
from datetime import timedelta

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, HTTPClientError
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import initialize, run_state_machine_as_test

from enrollkit import (
    CancelPolicy,
    DeduplicationWindow,
    DynamoDBPersistence,
    Enrollment,
    EnrollOutcome,
    KeyPair,
    RetryPolicy,
    Vacancy,
)
from enrollkit.errors import TransientFailure
from enrollkit.persistence.base import BasePersistence
from tests.conftest import NOW, TENANT, Endpoint, make_course, make_user, new_dynamodb
from tests.support.faults import FAULT_KINDS, FaultInjectingClient
from tests.support.invariants import STATS, Checked
from tests.support.model import Model
from tests.test_state_machine import ACCESS_PERIODS, STEPS, EnrollmentMachine

FAULT_RATE = 0.3
FAULT_EXAMPLES = max(20, settings.default.max_examples // 16)
# With 30% of calls failing independently, 8 attempts all fail with probability 0.3**8
# (7e-5 per commit): rare, yet over thousands of commits it happens, and after a lost
# response the library cannot tell the caller that its commit was applied. 20 attempts
# (0.3**20, 3e-11) keep that out of the run without hiding anything else.
RETRY_ATTEMPTS = 20
CALLER_RETRIES = 25


def faulty_dynamodb(
    server: Endpoint, *, seed: int, rate: float = FAULT_RATE
) -> tuple[DynamoDBPersistence, FaultInjectingClient]:
    """Fresh tables, reached through a fault-injecting client."""
    clean = new_dynamodb(server)
    faults = FaultInjectingClient(clean.client, rng=random.Random(seed), rate=rate)
    persistence = DynamoDBPersistence(
        clean.table_name,
        clean.order_table_name,
        client=faults,  # type: ignore[arg-type]
        retry_policy=RetryPolicy(
            attempts=RETRY_ATTEMPTS, sleep=lambda _: None, rng=random.Random(seed)
        ),
    )
    return persistence, faults


def record_faults(faults: FaultInjectingClient) -> None:
    for kind, count in faults.injected.items():
        STATS[f"faults.{kind}"] += count
    for method, count in faults.calls.items():
        STATS[f"faults.calls.{method}"] += count


# -- the tool itself ----------------------------------------------------------------------


@pytest.mark.parametrize("kind", FAULT_KINDS)
def test_each_fault_kind_fails_the_call_as_dynamodb_would(
    dynamodb_endpoint: Endpoint, kind: str
) -> None:
    persistence, faults = faulty_dynamodb(dynamodb_endpoint, seed=1, rate=0.0)
    client = persistence.client
    item = {"id": {"S": "x"}, "sk": {"S": "0"}}
    faults.force("transact_write_items", kind)
    with pytest.raises((ClientError, HTTPClientError, EndpointConnectionError)) as raised:
        client.transact_write_items(
            TransactItems=[{"Put": {"TableName": persistence.table_name, "Item": item}}]
        )
    stored = client.get_item(TableName=persistence.table_name, Key=item).get("Item")
    # Only a lost response is applied; every other fault leaves the store alone.
    assert (stored is not None) == (kind == "lost_response")
    assert faults.injected == {kind: 1}
    if kind == "conflict_cancellation":
        reasons = raised.value.response["CancellationReasons"]  # type: ignore[union-attr]
        assert [reason["Code"] for reason in reasons] == ["TransactionConflict"]


@pytest.mark.parametrize("method", ["query", "get_item"])
@pytest.mark.parametrize("kind", ["connection", "lost_response"])
def test_a_read_that_cannot_reach_dynamodb_is_a_transient_failure(
    dynamodb_endpoint: Endpoint, method: str, kind: str
) -> None:
    """Regression: a read's connection error was a plain PersistenceError, so a caller that
    re-issues calls on TransientFailure (as the class asks) gave up on a cancel whose
    Query met a dropped connection, though nothing had been written."""
    persistence, faults = faulty_dynamodb(dynamodb_endpoint, seed=2, rate=0.0)
    faults.force(method, kind)
    with pytest.raises(TransientFailure, match="could not be reached"):
        if method == "query":
            persistence.query("e1")
        else:
            persistence.get_item(KeyPair(pk="e1", sk="0"))


@pytest.mark.parametrize("kind", FAULT_KINDS)
def test_enroll_and_cancel_with_a_seat_apply_exactly_once(
    dynamodb_endpoint: Endpoint, kind: str
) -> None:
    """Each fault kind, on the first two attempts of each commit (and on cancel's read):
    one enrollment, one cancel, the seat taken once and given back once."""
    persistence, faults = faulty_dynamodb(dynamodb_endpoint, seed=3, rate=0.0)
    model = Model(now=NOW)
    checked = Checked(
        persistence,
        model,
        label="fault_scenarios",
        caller_retries=3,
        lost_responses=lambda: faults.lost_commits,
    )
    course = make_course("c1", access_period=60)
    checked.put_order("o1")
    checked.add_vacancies(org_id=TENANT.id, order_id="o1", course=course, quantity=2)
    org_id, order_id, slot_id = next(iter(model.available))
    seat = Vacancy(org_id=org_id, order_id=order_id, slot_id=slot_id)
    enrollment = Enrollment(id="e1", user=make_user("u1"), course=course)

    faults.force("transact_write_items", kind, kind)
    outcome = checked.enroll(
        enrollment,
        tenant=TENANT,
        vacancy=seat,
        window=DeduplicationWindow(offset_days=10),
        policy=CancelPolicy(days=7),
    )
    assert outcome is EnrollOutcome.CREATED
    checked.check_store()

    checked.advance(timedelta(days=1))
    if kind != "conflict_cancellation":
        faults.force("query", kind)
    faults.force("transact_write_items", kind, kind)
    assert checked.cancel("e1", tenant_id=TENANT.id) == "ok"
    snap = checked.check_store()

    assert faults.injected[kind] >= 3
    enrollments = snap[persistence.table_name]
    assert enrollments["e1", "0"]["status"] == "CANCELED"
    assert sum(1 for pk, _ in enrollments if pk.startswith("vacancies#")) == 2
    STATS[f"fault_scenarios.faults.{kind}"] += faults.injected[kind]


# -- the random program under faults ----------------------------------------------------------


def test_state_machine_under_faults(dynamodb_endpoint: Endpoint) -> None:
    class FaultyMachine(EnrollmentMachine):
        label = "faults"
        faults: FaultInjectingClient

        @staticmethod
        def make_persistence() -> BasePersistence:
            persistence, faults = faulty_dynamodb(dynamodb_endpoint, seed=0)
            faults.enabled = False  # until the example's seed is drawn
            FaultyMachine.faults = faults
            return persistence

        def make_checked(self) -> Checked:
            self.faults = FaultyMachine.faults
            return Checked(
                self.persistence,
                self.model,
                label=self.label,
                caller_retries=CALLER_RETRIES,
                lost_responses=lambda: self.faults.lost_commits,
            )

        @initialize(
            periods=st.lists(st.sampled_from(ACCESS_PERIODS), min_size=3, max_size=3),
            fault_seed=st.integers(min_value=0, max_value=2**32 - 1),
        )
        def setup(self, periods: list[int], fault_seed: int) -> None:  # type: ignore[override]
            """The parent's setup, then the example's own fault seed (replaced, not added)."""
            super().setup(periods)
            self.faults.rng.seed(fault_seed)
            self.faults.enabled = True

        def teardown(self) -> None:
            record_faults(self.faults)
            self.faults.enabled = False
            super().teardown()

    run_state_machine_as_test(
        FaultyMachine,
        settings=settings(
            settings.default,
            max_examples=FAULT_EXAMPLES,
            stateful_step_count=STEPS,
            derandomize=True,
        ),
    )
