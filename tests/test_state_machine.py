"""Stateful model test: random enroll / cancel / add_vacancies / clock / TTL-sweep steps,
each run on a real store and on the reference model (tests/support/model.py).

After every step, every invariant of tests/support/invariants.py is checked on the
stored items of both tables, and the store must hold what the model holds. A step whose
answer (success value or error class) differs from the model's is a divergence.

Runs on the embedded backend (>= 200 examples of up to 40 steps) and on DynamoDB through
the shared moto server (>= 25 examples) and on DynamoDB Local (>= 10 examples).
``HYPOTHESIS_PROFILE=long`` runs 2000, 250 and 100.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta, timezone

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
    CancelPolicy,
    Course,
    DeduplicationWindow,
    DynamoDBPersistence,
    Enrollment,
    InMemoryPersistence,
    Tenant,
    User,
    Vacancy,
)
from enrollkit.persistence.base import BasePersistence
from tests.conftest import (
    NOW,
    OTHER_TENANT,
    TENANT,
    Endpoint,
    drop_tables,
    is_dynamodb_local,
    new_dynamodb,
)
from tests.support.invariants import STATS, Checked
from tests.support.model import Model

STEPS = 40
MEMORY_EXAMPLES = max(200, settings.default.max_examples)
DYNAMODB_EXAMPLES = max(25, settings.default.max_examples // 8)
DYNAMODB_LOCAL_EXAMPLES = max(10, settings.default.max_examples // 20)

USERS = [User(id=f"u{n}", name=f"User {n}", email=f"u{n}@example.com") for n in range(3)]
TENANTS = [TENANT, OTHER_TENANT]
ORDERS = ["o0", "o1"]
TOGGLED_ORDER = "o1"  # deleted and re-created by a rule, so cancel can meet OrderNotFound
MISSING_ORDER = "o-missing"
# Access periods around the reminders' edges: a 2-day course gets no 3-day reminder,
# a 20-day course no 30-day one, a 31-day course both.
ACCESS_PERIODS = [1, 2, 3, 4, 20, 30, 31, 45]
ZONES = [
    timezone.utc,
    timezone(timedelta(hours=5, minutes=30)),
    timezone(timedelta(hours=-3)),
    timezone(timedelta(hours=14)),
]
# How far a caller's clock lags behind the model's: mostly in step, sometimes hours or days
# behind (services' clocks are not in step, and TTL deletion is late).
LAGS = st.one_of(st.just(0), st.just(0), st.integers(min_value=1, max_value=2 * 86_400)).map(
    lambda s: timedelta(seconds=s)
)
CLOCK_STEPS = st.one_of(
    st.integers(min_value=1, max_value=3_600),
    st.integers(min_value=3_600, max_value=3 * 86_400),
    st.integers(min_value=3 * 86_400, max_value=40 * 86_400),
).map(lambda s: timedelta(seconds=s))


class EnrollmentMachine(RuleBasedStateMachine):
    """One example: a fresh store, two orders, three courses with drawn access periods."""

    label = "state_machine"
    make_persistence: Callable[[], BasePersistence] = InMemoryPersistence

    def __init__(self) -> None:
        super().__init__()
        self.persistence = type(self).make_persistence()
        self.model = Model(now=NOW)
        self.checked = self.make_checked()
        self.courses: list[Course] = []
        self.next_id = 0
        STATS[f"{self.label}.examples"] += 1

    def make_checked(self) -> Checked:
        return Checked(self.persistence, self.model, label=self.label)

    # -- setup ------------------------------------------------------------------------------

    @initialize(periods=st.lists(st.sampled_from(ACCESS_PERIODS), min_size=3, max_size=3))
    def setup(self, periods: list[int]) -> None:
        self.courses = [
            Course(id=f"c{n}", name=f"Course {n}", access_period=period)
            for n, period in enumerate(periods)
        ]
        for order in ORDERS:
            self.checked.put_order(order)

    def _step(self) -> None:
        self.checked.count("steps")

    def _new_id(self) -> str:
        self.next_id += 1
        return f"e{self.next_id}"

    # -- drawing arguments ------------------------------------------------------------------

    def _window(self, data: st.DataObject, course: Course) -> DeduplicationWindow | None:
        kind = data.draw(st.sampled_from(["none", "none", "valid", "valid", "too_long"]))
        if kind == "none":
            return None
        if kind == "valid":
            offset = data.draw(st.integers(min_value=0, max_value=course.access_period - 1))
        else:  # not shorter than the access period: InvalidInput
            offset = data.draw(st.integers(course.access_period, course.access_period + 3))
        return DeduplicationWindow(offset_days=offset)

    def _policy(self, data: st.DataObject) -> CancelPolicy | None:
        days = data.draw(st.sampled_from([None, 0, 0, 1, 2, 10]))
        if days is None:
            return None
        return CancelPolicy() if days == 0 else CancelPolicy(days=days)

    def _vacancy(self, data: st.DataObject, course: Course) -> Vacancy | None:
        kind = data.draw(
            st.sampled_from(["matching", "none", "matching", "none", "any", "held", "bogus"])
        )
        available = list(self.model.available)
        if kind == "matching":
            available = [seat for seat in available if self.model.available[seat] == course.id]
        candidates = list(self.model.held) if kind == "held" else available
        if kind == "bogus":
            order = data.draw(st.sampled_from([*ORDERS, MISSING_ORDER]))
            return Vacancy(org_id=TENANT.id, order_id=order, slot_id="no-such-slot")
        if kind == "none" or not candidates:
            return None
        org, order, slot = data.draw(st.sampled_from(candidates))
        if kind == "any" and data.draw(st.booleans()):
            # The same slot under the other org: no such seat.
            org = OTHER_TENANT.id if org == TENANT.id else TENANT.id
        return Vacancy(org_id=org, order_id=order, slot_id=slot)

    def _enroll(self, data: st.DataObject, enrollment: Enrollment, tenant: Tenant) -> None:
        self.checked.enroll(
            enrollment,
            tenant=tenant,
            vacancy=self._vacancy(data, enrollment.course),
            window=self._window(data, enrollment.course),
            policy=self._policy(data),
            zone=data.draw(st.sampled_from(ZONES)),
            lag=data.draw(LAGS),
        )

    # -- rules ------------------------------------------------------------------------------

    @rule(data=st.data())
    def enroll_new(self, data: st.DataObject) -> None:
        self._step()
        enrollment = Enrollment(
            id=self._new_id(),
            user=data.draw(st.sampled_from(USERS)),
            course=data.draw(st.sampled_from(self.courses)),
        )
        self._enroll(data, enrollment, data.draw(st.sampled_from(TENANTS)))

    @precondition(lambda self: bool(self.model.enrollments))
    @rule(data=st.data())
    def enroll_existing_id(self, data: st.DataObject) -> None:
        """The same id again: a retry (same content) or a conflict (other content)."""
        self._step()
        record = self.model.enrollments[data.draw(st.sampled_from(sorted(self.model.enrollments)))]
        user, course = record.user, record.course
        tenant = next(t for t in TENANTS if t.id == record.tenant_id)
        change = data.draw(
            st.sampled_from(["retry", "retry", "user", "course", "tenant", "course_renamed"])
        )
        if change == "user":
            user = data.draw(st.sampled_from([u for u in USERS if u != user]))
        elif change == "course":
            course = data.draw(st.sampled_from([c for c in self.courses if c.id != course.id]))
        elif change == "tenant":
            tenant = next(t for t in TENANTS if t.id != record.tenant_id)
        elif change == "course_renamed":
            course = course.model_copy(update={"name": f"{course.name} (v2)"})
        self._enroll(data, Enrollment(id=record.id, user=user, course=course), tenant)

    @precondition(lambda self: bool(self.model.enrollments))
    @rule(data=st.data())
    def reenroll_same_pair(self, data: st.DataObject) -> None:
        """A new enrollment of an enrolled (user, course): blocked while the lock is live,
        free once it expired (swept or not). Taking over an expired lock is what makes
        cancel() of the older enrollment leave the newer one's lock alone."""
        self._step()
        record = self.model.enrollments[data.draw(st.sampled_from(sorted(self.model.enrollments)))]
        enrollment = Enrollment(id=self._new_id(), user=record.user, course=record.course)
        self.checked.enroll(
            enrollment,
            tenant=next(t for t in TENANTS if t.id == record.tenant_id),
            window=self._window(data, record.course),
            policy=self._policy(data),
            zone=data.draw(st.sampled_from(ZONES)),
            lag=data.draw(LAGS),
        )

    def _lock_holders(self) -> list[str]:
        return [
            record.id
            for record in self.model.enrollments.values()
            if record.lock_until is not None and record.cancel_allowed(self.model.now_s)
        ]

    @precondition(lambda self: bool(self._lock_holders()))
    @rule(data=st.data())
    def take_over_expired_lock(self, data: st.DataObject) -> None:
        """Let a cancellable enrollment's lock expire, enroll the same (user, course) again,
        then maybe cancel the older one: its cancel must leave the newer lock alone."""
        self._step()
        record = self.model.enrollments[data.draw(st.sampled_from(self._lock_holders()))]
        assert record.lock_until is not None
        past = data.draw(st.integers(min_value=0, max_value=3_600))
        if record.lock_until + past > self.model.now_s:
            self.checked.advance(timedelta(seconds=record.lock_until + past - self.model.now_s))
        enrollment = Enrollment(id=self._new_id(), user=record.user, course=record.course)
        self.checked.enroll(
            enrollment,
            tenant=next(t for t in TENANTS if t.id == record.tenant_id),
            window=DeduplicationWindow(offset_days=0),
            zone=data.draw(st.sampled_from(ZONES)),
            lag=data.draw(LAGS),
        )
        if data.draw(st.booleans()):
            self.checked.cancel(record.id, tenant_id=record.tenant_id, lag=data.draw(LAGS))

    @precondition(lambda self: bool(self.model.available))
    @rule(data=st.data())
    def enroll_into_seat(self, data: st.DataObject) -> None:
        """Take an available seat, for its course, under the seat's org."""
        self._step()
        org, order, slot = data.draw(st.sampled_from(list(self.model.available)))
        course_id = self.model.available[(org, order, slot)]
        enrollment = Enrollment(
            id=self._new_id(),
            user=data.draw(st.sampled_from(USERS)),
            course=next(c for c in self.courses if c.id == course_id),
        )
        self.checked.enroll(
            enrollment,
            tenant=next(t for t in TENANTS if t.id == org),
            vacancy=Vacancy(org_id=org, order_id=order, slot_id=slot),
            window=self._window(data, enrollment.course),
            policy=self._policy(data) or CancelPolicy(),
            zone=data.draw(st.sampled_from(ZONES)),
            lag=data.draw(LAGS),
        )

    @precondition(lambda self: bool(self.model.held))
    @rule(data=st.data())
    def cancel_seat_holder(self, data: st.DataObject) -> None:
        """Cancel an enrollment that holds a seat: the seat goes back to its order."""
        self._step()
        holder = self.model.enrollments[
            data.draw(st.sampled_from(sorted(self.model.held.values())))
        ]
        self.checked.cancel(
            holder.id,
            tenant_id=holder.tenant_id,
            zone=data.draw(st.sampled_from(ZONES)),
            lag=data.draw(LAGS),
        )

    @precondition(lambda self: bool(self.model.enrollments))
    @rule(data=st.data())
    def cancel(self, data: st.DataObject) -> None:
        self._step()
        owner = self.model.enrollments[data.draw(st.sampled_from(sorted(self.model.enrollments)))]
        tenant_id = data.draw(st.sampled_from(["owner", None, "owner", "other"]))
        if tenant_id == "owner":
            tenant_id = owner.tenant_id
        elif tenant_id == "other":
            tenant_id = next(t.id for t in TENANTS if t.id != owner.tenant_id)
        target = owner.id if data.draw(st.integers(0, 7)) else "e-missing"
        self.checked.cancel(
            target,
            tenant_id=tenant_id,
            zone=data.draw(st.sampled_from(ZONES)),
            lag=data.draw(LAGS),
        )

    @rule(data=st.data())
    def add_vacancies(self, data: st.DataObject) -> None:
        self._step()
        self.checked.add_vacancies(
            org_id=data.draw(st.sampled_from([t.id for t in TENANTS])),
            order_id=data.draw(st.sampled_from([*ORDERS, *ORDERS, MISSING_ORDER])),
            course=data.draw(st.sampled_from(self.courses)),
            quantity=data.draw(st.integers(min_value=1, max_value=3)),
            zone=data.draw(st.sampled_from(ZONES)),
        )

    @rule(delta=CLOCK_STEPS)
    def advance_clock(self, delta: timedelta) -> None:
        self._step()
        self.checked.advance(delta)

    @rule(lag=st.integers(min_value=0, max_value=3 * 86_400))
    def ttl_sweep(self, lag: int) -> None:
        """DynamoDB deletes expired items late: sweep up to ``lag`` seconds ago."""
        self._step()
        self.checked.sweep(timedelta(seconds=lag))

    @rule(data=st.data())
    def toggle_order(self, data: st.DataObject) -> None:
        """Delete the order, or bring it back; drawn rarely, as it blocks seats while gone."""
        if data.draw(st.integers(0, 3)):
            return
        self._step()
        if TOGGLED_ORDER in self.model.orders:
            self.checked.delete_order(TOGGLED_ORDER)
        else:
            self.checked.put_order(TOGGLED_ORDER)

    # -- after every step -------------------------------------------------------------------

    @invariant()
    def store_matches_model(self) -> None:
        self.checked.check_store()

    def teardown(self) -> None:
        if isinstance(self.persistence, DynamoDBPersistence):
            drop_tables(self.persistence)


def test_state_machine_embedded() -> None:
    run_state_machine_as_test(
        EnrollmentMachine,
        settings=settings(
            settings.default, max_examples=MEMORY_EXAMPLES, stateful_step_count=STEPS
        ),
    )


def test_state_machine_dynamodb(dynamodb_endpoint: Endpoint) -> None:
    class DynamoDBMachine(EnrollmentMachine):
        label = "state_machine_dynamodb"

        @staticmethod
        def make_persistence() -> BasePersistence:
            return new_dynamodb(dynamodb_endpoint)

    run_state_machine_as_test(
        DynamoDBMachine,
        settings=settings(
            settings.default,
            # DynamoDB Local costs ~25 ms a call: a smaller budget there, the same program.
            max_examples=DYNAMODB_LOCAL_EXAMPLES
            if is_dynamodb_local(dynamodb_endpoint)
            else DYNAMODB_EXAMPLES,
            stateful_step_count=STEPS,
        ),
    )
