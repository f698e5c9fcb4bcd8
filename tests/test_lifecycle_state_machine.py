"""Stateful test of the whole lifecycle: random enroll / record_access / complete / cancel /
clock advances / sweeper runs with random outages / handler failures / TTL deletions at
random lag (fed to the stream consumer), on a real store, against the reference model
(tests/support/lifecycle_model.py).

Checked after every step:
- every handler call is for an occurrence the model says fell due while its enrollment was
  live, made at or after its due time (none early), never once the enrollment is canceled;
- each occurrence succeeds at most once (exactly once: the final check);
- after every sweep at time T, every occurrence due by T of a live enrollment whose handler
  never failed has been delivered: with the sweeper up it runs at the first tick (minute)
  at or after each due time, so nothing is more than one tick late, and after an outage of
  any length its first run delivers everything missed.
At the end the sweeper comes up with healthy handlers: every occurrence of an enrollment
not canceled is delivered exactly once.

Embedded: >= 100 examples of 40 steps (thousands of steps). moto and DynamoDB Local: a
smaller budget (``HYPOTHESIS_PROFILE=long`` runs more).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from enrollkit import (
    Author,
    Certificate,
    DynamoDBPersistence,
    InMemoryPersistence,
    KeyPair,
    SweepSettings,
    cancel,
    complete,
    deliver_due,
    handle_stream_batch,
    record_access,
)
from enrollkit.persistence.base import BasePersistence
from tests.conftest import NOW, Endpoint, drop_tables, new_dynamodb
from tests.support.invariants import scan
from tests.support.lifecycle import Recorder, enroll_one, ttl_delete
from tests.support.lifecycle_model import OK, REFUSALS, LifecycleModel, seconds

TICK = timedelta(minutes=1)
STEPS = 40
MEMORY_EXAMPLES = max(300, settings.default.max_examples)
DYNAMODB_EXAMPLES = max(10, settings.default.max_examples // 16)
ADMIN = Author(id="admin", name="Admin")
PERIODS = [1, 2, 4, 9, 31, 45]
ADVANCES = st.one_of(
    st.integers(1, 600), st.integers(600, 2 * 86_400), st.integers(2 * 86_400, 40 * 86_400)
).map(lambda s: timedelta(seconds=s))


class LifecycleMachine(RuleBasedStateMachine):
    persistence: BasePersistence

    def __init__(self) -> None:
        super().__init__()
        self.t = NOW
        self.model = LifecycleModel(NOW)
        self.recorder = Recorder(clock=lambda: self.t)
        self.canceled_after: dict[str, int] = {}
        """Enrollment id -> how many handler calls were made before it was canceled."""
        self.sweeper_up = True
        self.next_id = 0
        self.persistence = self.make_store()

    def make_store(self) -> BasePersistence:
        return InMemoryPersistence()

    @initialize()
    def deploy(self) -> None:
        self.sweep()  # the sweeper's first run (its checkpoint) comes with the deployment

    # -- the world ------------------------------------------------------------------------------

    def sweep(self) -> None:
        deliver_due(
            persistence_layer=self.persistence,
            handlers=self.recorder.handlers,
            now=self.t,
            settings=SweepSettings(first_run_lookback=timedelta(days=1)),
        )
        self.check_delivered_by(self.t)

    def move_to(self, target: datetime) -> None:
        """Advance the clock; with the sweeper up, it runs at every tick something is due."""
        while True:
            due = self.model.next_due()
            if due is None:
                break
            start = datetime.fromtimestamp(due, tz=NOW.tzinfo)
            tick = NOW + TICK * -(-(start - NOW) // TICK)  # the first tick at or after it
            if tick > target:
                break
            self.t = max(self.t, tick)
            self.model.advance(self.t)
            if self.sweeper_up:
                self.sweep()
        self.t = target
        self.model.advance(self.t)

    # -- rules ----------------------------------------------------------------------------------

    def _wait(self, data: st.DataObject) -> None:
        """Time passes before each step (so that short runs see events fall due too)."""
        self.move_to(self.t + data.draw(ADVANCES))

    @rule(data=st.data(), period=st.sampled_from(PERIODS))
    def enroll(self, data: st.DataObject, period: int) -> None:
        self._wait(data)
        self.next_id += 1
        enrollment_id = f"e{self.next_id}"
        enroll_one(
            self.persistence, self.t, enrollment_id, access_period=period, user_id=enrollment_id
        )
        self.model.enroll(enrollment_id, period)

    def _existing(self, data: st.DataObject) -> str:
        self._wait(data)
        return data.draw(st.sampled_from(sorted(self.model.enrollments)))

    def _expect(self, expected: object, call: Any) -> None:
        try:
            call()
            answer: object = OK
        except REFUSALS as error:
            answer = type(error)
        if expected is not OK and isinstance(answer, type):
            assert issubclass(answer, expected), (answer, expected)  # type: ignore[arg-type]
        else:
            assert answer == expected, (answer, expected)

    @precondition(lambda self: self.model.enrollments)
    @rule(data=st.data())
    def access(self, data: st.DataObject) -> None:
        enrollment_id = self._existing(data)
        self._expect(
            self.model.record_access(enrollment_id),
            lambda: record_access(enrollment_id, persistence_layer=self.persistence, now=self.t),
        )

    @precondition(lambda self: self.model.enrollments)
    @rule(data=st.data(), days=st.sampled_from([None, 10, 31, 45, 100]))
    def complete(self, data: st.DataObject, days: int | None) -> None:
        enrollment_id = self._existing(data)
        expires = self.t + timedelta(days=days) if days is not None else None
        self._expect(
            self.model.complete(enrollment_id, expires),
            lambda: complete(
                enrollment_id,
                persistence_layer=self.persistence,
                certificate=Certificate(expires_at=expires),
                now=self.t,
            ),
        )

    @precondition(lambda self: self.model.enrollments)
    @rule(data=st.data())
    def cancel(self, data: st.DataObject) -> None:
        enrollment_id = self._existing(data)
        expected = self.model.cancel(enrollment_id)
        self._expect(
            expected,
            lambda: cancel(
                enrollment_id, author=ADMIN, persistence_layer=self.persistence, now=self.t
            ),
        )
        if expected is OK:
            self.canceled_after[enrollment_id] = len(self.recorder.log)

    @rule(delta=ADVANCES)
    def advance_clock(self, delta: timedelta) -> None:
        self.move_to(self.t + delta)

    @rule()
    def sweeper_outage(self) -> None:
        """The sweeper goes down, or comes back (and runs at once, as a scheduler would)."""
        self.sweeper_up = not self.sweeper_up
        if self.sweeper_up:
            self.sweep()

    @precondition(lambda self: self.sweeper_up)
    @rule()
    def sweep_now(self) -> None:
        self.sweep()

    @rule(count=st.integers(1, 3))
    def handlers_fail(self, count: int) -> None:
        self.recorder.fail_next = count

    @rule(lag=st.sampled_from([0, 30, 3600, 2 * 86_400, 10 * 86_400]))
    def ttl_deletes(self, lag: int) -> None:
        """DynamoDB's TTL deletes what expired ``lag`` seconds ago; the stream consumer
        handles the records."""
        cutoff = self.t - timedelta(seconds=lag)
        event = self.ttl_sweep(cutoff)
        response = handle_stream_batch(
            event, persistence_layer=self.persistence, handlers=self.recorder.handlers, now=self.t
        )
        assert response == {"batchItemFailures": []}

    def ttl_sweep(self, cutoff: datetime) -> dict[str, Any]:
        if isinstance(self.persistence, InMemoryPersistence):
            self.persistence.sweep_expired(cutoff)
            return self.persistence.drain_ttl_stream()
        records: list[dict[str, Any]] = []
        for item in scan(self.persistence, self.persistence.table_name):
            expiry = item.get("ttl")
            if isinstance(expiry, int) and expiry <= seconds(cutoff):
                key = KeyPair(item["id"], item["sk"])
                records.extend(ttl_delete(self.persistence, key, cutoff)["Records"])
        return {"Records": records}

    # -- checks ---------------------------------------------------------------------------------

    @invariant()
    def calls_are_for_live_occurrences_not_early_at_most_once(self) -> None:
        successes: set[tuple[str, Any, int]] = set()
        for index, (call, succeeded, at) in enumerate(self.recorder.log):
            key = (call.enrollment_id, call.event, seconds(call.due))
            assert key in self.model.happened, f"{key} was never due for a live enrollment"
            assert at is not None and at >= call.due, f"{key} called early, at {at}"
            canceled = self.canceled_after.get(call.enrollment_id)
            assert canceled is None or index < canceled, f"{key} called after its cancel"
            if succeeded:
                assert key not in successes, f"{key} delivered twice"
                successes.add(key)

    def check_delivered_by(self, t: datetime) -> None:
        delivered = {(c.enrollment_id, c.event, seconds(c.due)) for c in self.recorder.calls}
        failed = {(c.enrollment_id, c.event, seconds(c.due)) for c in self.recorder.failures}
        for key, enrollment_id in self.model.happened.items():
            if key[2] > seconds(t) or not self.model.live(enrollment_id) or key in failed:
                continue
            assert key in delivered, f"{key} due by {t} and not delivered"

    def teardown(self) -> None:
        try:
            # Handlers healthy, sweeper up: within the longest backoff everything is delivered.
            self.recorder.fail_next = 0
            self.sweeper_up = True
            self.sweep()
            for _ in range(8):
                self.move_to(self.t + timedelta(hours=1))
                self.sweep()
            delivered = [(c.enrollment_id, c.event, seconds(c.due)) for c in self.recorder.calls]
            assert len(delivered) == len(set(delivered))
            owed = {key for key, eid in self.model.happened.items() if self.model.live(eid)}
            assert owed <= set(delivered), f"never delivered: {sorted(owed - set(delivered))[:3]}"
        finally:
            self.drop()

    def drop(self) -> None:
        pass


def test_lifecycle_state_machine_embedded() -> None:
    run_state_machine_as_test(
        LifecycleMachine,
        settings=settings(max_examples=MEMORY_EXAMPLES, stateful_step_count=STEPS, deadline=None),
    )


def _on(endpoint: Endpoint) -> type[LifecycleMachine]:
    class OnDynamoDB(LifecycleMachine):
        def make_store(self) -> BasePersistence:
            return new_dynamodb(endpoint)

        def drop(self) -> None:
            assert isinstance(self.persistence, DynamoDBPersistence)
            drop_tables(self.persistence)

    return OnDynamoDB


def test_lifecycle_state_machine_dynamodb(dynamodb_endpoint: Endpoint) -> None:
    run_state_machine_as_test(
        _on(dynamodb_endpoint),
        settings=settings(
            max_examples=DYNAMODB_EXAMPLES, stateful_step_count=STEPS // 2, deadline=None
        ),
    )
