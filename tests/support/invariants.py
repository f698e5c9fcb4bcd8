"""Invariants over the stored items of both tables, a TTL sweep for either backend,
and the counters that docs/reliability.md reports.

Everything here reads the store directly (``InMemoryPersistence.scan`` or a paginated
DynamoDB ``Scan``), never through enrollkit's operations, so a check cannot share a bug
with the code it checks.
"""

from __future__ import annotations

import atexit
import fcntl
import json
import os
from collections import Counter
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta, timezone, tzinfo
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from enrollkit import (
    Author,
    CancelPolicy,
    Course,
    DeduplicationWindow,
    EnrollkitError,
    Enrollment,
    EnrollOutcome,
    InMemoryPersistence,
    KeyPair,
    LifecycleEvent,
    Tenant,
    TransientFailure,
    Vacancy,
    add_vacancies,
    cancel,
    enroll,
    lock_hash,
)
from enrollkit.persistence.base import BasePersistence
from enrollkit.persistence.marshal import deserialize_item
from enrollkit.timing import iso
from tests.support.faults import FAULT_KINDS
from tests.support.model import OK, Model, seconds

Key = tuple[str, str]
Table = dict[Key, dict[str, Any]]
Snapshot = dict[str, Table]
"""Table name -> (id, sk) -> item: every item of both tables."""

SUMMARY_ENV = "ENROLLKIT_RELIABILITY_SUMMARY"

# -- counters -------------------------------------------------------------------------------

STATS: Counter[str] = Counter()
"""What the reliability tests did, by ``<label>.<what>``: examples, steps, invariant checks,
divergences, calls and outcomes, faults injected (``faults.<kind>``), bad inputs tried."""


def _totals(counts: Mapping[str, int]) -> dict[str, int]:
    """The figures docs/reliability.md reports, summed over the tests that made them."""
    totals: Counter[str] = Counter()
    for key, value in counts.items():
        label, _, what = key.partition(".")
        if label == "total":
            continue
        if label == "faults" and what in FAULT_KINDS:  # faults.<kind>
            what = f"faults.{what}"
        counted = what in (
            "examples",
            "steps",
            "store_checks",
            "divergences",
            "transport_errors_after_effect",
        )
        if counted or (what.startswith("faults.") and what.count(".") == 1):
            totals[what] += value
    totals["invariant_checks"] = counts.get("invariant_checks", 0) + counts.get("model_checks", 0)
    totals["bad_inputs"] = counts.get("hostile.bad_inputs", 0)
    totals["faults"] = sum(v for k, v in totals.items() if k.startswith("faults."))
    return {f"total.{key}": value for key, value in totals.items()}


def _write_summary() -> None:
    """Add this run's counts to the JSON file named by $ENROLLKIT_RELIABILITY_SUMMARY
    (counts add up over runs: delete the file to start afresh)."""
    path = os.environ.get(SUMMARY_ENV)
    if not path or not STATS:
        return
    target = Path(path)
    # Parallel test workers (pytest-xdist) each add their counts: one at a time.
    with Path(f"{target}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        merged: Counter[str] = Counter()
        if target.exists():
            merged.update(json.loads(target.read_text()))
        merged.update(STATS)
        counts = {key: value for key, value in merged.items() if not key.startswith("total.")}
        summary = {**dict(sorted(counts.items())), **dict(sorted(_totals(counts).items()))}
        target.write_text(json.dumps(summary, indent=2) + "\n")


atexit.register(_write_summary)


# -- reading the store ------------------------------------------------------------------------


def scan(persistence: BasePersistence, table_name: str) -> list[dict[str, Any]]:
    if isinstance(persistence, InMemoryPersistence):
        return persistence.scan(table_name=table_name)
    client = persistence.client  # type: ignore[attr-defined]
    items: list[dict[str, Any]] = []
    for page in client.get_paginator("scan").paginate(TableName=table_name, ConsistentRead=True):
        items.extend(deserialize_item(item) for item in page.get("Items", []))
    return items


def snapshot(persistence: BasePersistence) -> Snapshot:
    return {
        name: {(item["id"], item["sk"]): item for item in scan(persistence, name)}
        for name in (persistence.table_name, persistence.order_table_name)
    }


def sweep(persistence: BasePersistence, cutoff: datetime) -> int:
    """Delete items whose ``ttl`` is at or before ``cutoff``, as DynamoDB's TTL process
    does (late). moto has no TTL process, so on DynamoDB this deletes them itself."""
    if isinstance(persistence, InMemoryPersistence):
        return persistence.sweep_expired(cutoff)
    client = persistence.client  # type: ignore[attr-defined]
    limit = seconds(cutoff)
    swept = 0
    for name in (persistence.table_name, persistence.order_table_name):
        for item in scan(persistence, name):
            expiry = item.get("ttl")
            if isinstance(expiry, int) and not isinstance(expiry, bool) and expiry <= limit:
                client.delete_item(
                    TableName=name, Key={"id": {"S": item["id"]}, "sk": {"S": item["sk"]}}
                )
                swept += 1
    return swept


# -- invariants -------------------------------------------------------------------------------


class InvariantViolation(AssertionError):
    pass


def _timestamp(value: Any) -> float:
    return datetime.fromisoformat(str(value)).timestamp()


def _is_utc(value: Any) -> bool:
    try:
        parsed = datetime.fromisoformat(str(value))
    except ValueError:
        return False
    return parsed.utcoffset() == timedelta(0)


def check_invariants(
    snap: Snapshot,
    *,
    enrollments_table: str,
    orders_table: str,
    now: datetime,
    seats_added: Mapping[str, int],
) -> list[str]:
    """Every invariant of the issue, on stored items. Returns the violations found."""
    problems: list[str] = []
    items = snap[enrollments_table]
    orders = snap[orders_table]
    now_s = seconds(now)

    def check(ok: bool, message: str) -> None:
        STATS["invariant_checks"] += 1
        if not ok:
            problems.append(message)

    roots = {pk: item for (pk, sk), item in items.items() if sk == "0" and pk != "lock"}
    canceled = {pk for pk, root in roots.items() if root.get("status") == "CANCELED"}

    # Every item of an enrollment's collection has its `0` item.
    for pk, sk in items:
        if pk == "lock" or pk.startswith("vacancies#"):
            continue
        check(pk in roots, f"orphan item {pk!r}/{sk!r}: no `0` item")

    # At most one live lock per (user, course), held by a non-canceled enrollment.
    live_lock_holders: Counter[str] = Counter()
    for (pk, sk), lock in items.items():
        if pk != "lock" or not (isinstance(lock.get("ttl"), int) and lock["ttl"] > now_s):
            continue
        owner = roots.get(str(lock.get("enrollment_id")))
        check(owner is not None, f"live lock {sk} held by a missing enrollment")
        if owner is None:
            continue
        check(owner.get("status") != "CANCELED", f"live lock {sk} held by a canceled enrollment")
        check(
            lock_hash(owner["user"]["id"], owner["course"]["id"]) == sk,
            f"lock {sk} held by an enrollment of another (user, course)",
        )
    for (pk, sk), meta in items.items():
        if sk == "metadata#lock" and isinstance(meta.get("ttl"), int) and meta["ttl"] > now_s:
            root = roots.get(pk)
            if root is not None and root.get("status") != "CANCELED":
                live_lock_holders[str(meta.get("hash"))] += 1
                lock = items.get(("lock", str(meta.get("hash"))))
                check(
                    lock is not None and lock.get("enrollment_id") == pk,
                    f"{pk!r} has a live metadata#lock but does not hold the lock",
                )
    for hash_, holders in live_lock_holders.items():
        check(holders <= 1, f"{holders} live locks on (user, course) {hash_}")

    # A canceled enrollment has no schedule, lock metadata, cancel policy or seat.
    for pk in canceled:
        leftovers = [
            sk
            for (item_pk, sk) in items
            if item_pk == pk
            and (
                sk.startswith("schedules#")
                or sk in ("metadata#lock", "cancel_policy", "parent_vacancy")
            )
        ]
        check(not leftovers, f"canceled enrollment {pk!r} still has {leftovers}")
        check((pk, "canceled_date") in items, f"canceled enrollment {pk!r} has no canceled_date")

    # Every schedule is due after its enrollment and no later than its expiry.
    for (pk, sk), schedule in items.items():
        if not sk.startswith("schedules#") or pk not in roots:
            continue
        root = roots[pk]
        enrolled = _timestamp(root["create_date"])
        expiry = enrolled + int(root["course"]["access_period"]) * 86_400
        due = schedule.get("ttl")
        check(isinstance(due, int), f"schedule {pk!r}/{sk!r} has no ttl")
        if not isinstance(due, int):
            continue
        check(due > enrolled, f"schedule {pk!r}/{sk!r} is due before its enrollment")
        check(due <= expiry, f"schedule {pk!r}/{sk!r} is due after the access expires")
        if sk != LifecycleEvent.COURSE_EXPIRED.value:
            check(due < expiry, f"reminder {pk!r}/{sk!r} is not before the expiry")

    # Each enrollment has its tenant item, naming the tenant of its `0`.
    for pk, root in roots.items():
        tenant = items.get((pk, "metadata#tenant"))
        check(
            tenant is not None
            and tenant.get("tenant_id") == f"ORG#{root.get('metadata__tenant_id')}",
            f"{pk!r} has no matching metadata#tenant",
        )

    # Dates are stored in UTC, whatever zone `now` was given in.
    for table in (items, orders):
        for (pk, sk), item in table.items():
            for name in ("create_date", "update_date"):
                if name in item:
                    check(_is_utc(item[name]), f"{pk!r}/{sk!r} {name} is not UTC: {item[name]!r}")

    # Seat conservation per order: available + held by non-canceled == added.
    available: Counter[str] = Counter()
    for pk, sk in items:
        if pk.startswith("vacancies#"):
            available[sk.split("#", 1)[0]] += 1
    held: Counter[str] = Counter()
    for (pk, sk), parent in items.items():
        if sk == "parent_vacancy" and pk in roots and pk not in canceled:
            held[str(parent.get("order_id"))] += 1
    ledger: dict[str, Counter[str]] = {}
    for (pk, sk), record in orders.items():
        if sk.startswith("generated_items#"):
            ledger.setdefault(pk, Counter())[str(record.get("status"))] += 1
    for order in {*seats_added, *available, *held, *ledger}:
        added = seats_added.get(order, 0)
        check(
            available[order] + held[order] == added,
            f"order {order!r}: {available[order]} available + {held[order]} held != {added} added",
        )
        statuses = ledger.get(order, Counter())
        check(
            statuses["AVAILABLE"] == available[order] and statuses["USED"] == held[order],
            f"order {order!r}: ledger {dict(statuses)} disagrees with "
            f"{available[order]} seats and {held[order]} holders",
        )
    return problems


def check_against_model(snap: Snapshot, model: Model, *, enrollments_table: str) -> list[str]:
    """The store holds what the model says: the same enrollments and statuses, the same
    live locks, the same available seats, the cancel policies still in force."""
    problems: list[str] = []
    items = snap[enrollments_table]

    def check(ok: bool, message: str) -> None:
        STATS["model_checks"] += 1
        if not ok:
            problems.append(message)

    roots = {pk: item for (pk, sk), item in items.items() if sk == "0" and pk != "lock"}
    check(set(roots) == set(model.enrollments), f"enrollments {sorted(roots)} != model")
    for enrollment_id, record in model.enrollments.items():
        root = roots.get(enrollment_id)
        if root is None:
            continue
        check(
            (root.get("status") == "CANCELED") == record.canceled,
            f"{enrollment_id!r} status {root.get('status')} but model canceled={record.canceled}",
        )
        check(
            root.get("metadata__tenant_id") == record.tenant_id,
            f"{enrollment_id!r} tenant changed",
        )
        check(
            root.get("user") == record.user.model_dump(mode="json")
            and root.get("course") == record.course.model_dump(mode="json"),
            f"{enrollment_id!r} content changed",
        )
        policy_in_force = record.has_policy and (
            record.policy_deadline is None or record.policy_deadline > model.now_s
        )
        stored_policy = (enrollment_id, "cancel_policy") in items
        check(
            stored_policy or not policy_in_force,
            f"{enrollment_id!r} lost its cancel policy",
        )
        check(
            record.has_policy or not stored_policy,
            f"{enrollment_id!r} has a cancel policy it was not given",
        )

    stored_locks = {
        sk: str(lock.get("enrollment_id"))
        for (pk, sk), lock in items.items()
        if pk == "lock" and isinstance(lock.get("ttl"), int) and lock["ttl"] > model.now_s
    }
    expected_locks = {
        lock_hash(user, course): owner for (user, course), owner in model.live_locks().items()
    }
    check(stored_locks == expected_locks, f"live locks {stored_locks} != model {expected_locks}")

    stored_seats = {
        (pk.removeprefix("vacancies#"), *sk.split("#", 1)): str(item["course"]["id"])
        for (pk, sk), item in items.items()
        if pk.startswith("vacancies#")
    }
    check(stored_seats == model.available, f"seats {stored_seats} != model {model.available}")
    return problems


def assert_store_ok(persistence: BasePersistence, model: Model, *, label: str) -> Snapshot:
    """Check every invariant and the model's view; raise with all violations."""
    before = STATS["invariant_checks"] + STATS["model_checks"]
    snap = snapshot(persistence)
    problems = check_invariants(
        snap,
        enrollments_table=persistence.table_name,
        orders_table=persistence.order_table_name,
        now=model.now,
        seats_added=model.added,
    )
    problems += check_against_model(snap, model, enrollments_table=persistence.table_name)
    STATS[f"{label}.invariant_checks"] += STATS["invariant_checks"] + STATS["model_checks"] - before
    STATS[f"{label}.store_checks"] += 1
    if problems:
        STATS["invariant_violations"] += len(problems)
        raise InvariantViolation("\n".join(problems))
    return snap


# -- running calls against the store and the model --------------------------------------------


class Divergence(AssertionError):
    """The library answered otherwise than the model: a different success or error class."""


class TransportErrorAfterEffect(AssertionError):
    """A transport error reached the caller although the call had changed the store."""


Outcome = Any  # EnrollOutcome, "ok", or an exception class


class Checked:
    """Runs each call on the store and on the model, compares the answers, then checks
    every invariant on the stored items.

    ``caller_retries``: how often a caller re-issues a call that raised
    ``TransientFailure`` (as a service would); before each re-issue, the store must be
    exactly as before the call: a transport error may only mean "nothing happened".
    ``lost_responses``: a counter of lost-response faults, so that an enroll whose commit
    was applied and whose retry then found it reports ALREADY_ENROLLED, not CREATED.
    """

    def __init__(
        self,
        persistence: BasePersistence,
        model: Model,
        *,
        label: str,
        caller_retries: int = 0,
        lost_responses: Callable[[], int] | None = None,
    ) -> None:
        self.persistence = persistence
        self.model = model
        self.label = label
        self.caller_retries = caller_retries
        self.lost_responses = lost_responses or (lambda: 0)
        for name in ("divergences", "transport_errors_after_effect"):
            STATS[f"{label}.{name}"] += 0  # reported as 0, not left out

    def count(self, name: str, amount: int = 1) -> None:
        STATS[f"{self.label}.{name}"] += amount

    def check_store(self) -> Snapshot:
        return assert_store_ok(self.persistence, self.model, label=self.label)

    def _diverged(self, message: str) -> None:
        STATS[f"{self.label}.divergences"] += 1
        raise Divergence(message)

    def _run(
        self, operation: str, call: Callable[[], Any], *, resumable: bool = False
    ) -> tuple[Outcome, Any]:
        """(outcome, value): the value's outcome, or the class of the enrollkit error raised.

        ``resumable``: the call makes several transactions and a re-issued call completes
        what an interrupted one started (add_vacancies), so a transport error may follow
        some progress; the model then checks that the re-issued call added nothing twice.
        """
        self.count(f"calls.{operation}")
        before = snapshot(self.persistence) if self.caller_retries else None
        for attempt in range(self.caller_retries + 1):
            try:
                value = call()
            except TransientFailure:
                if attempt >= self.caller_retries:
                    raise
                if snapshot(self.persistence) != before:
                    if resumable:
                        self.count(f"{operation}.resumed_after_transport_error")
                        self.count("caller_retries")
                        continue
                    STATS[f"{self.label}.transport_errors_after_effect"] += 1
                    raise TransportErrorAfterEffect(
                        f"{operation} raised TransientFailure after changing the store"
                    ) from None
                self.count("caller_retries")
                continue
            except ValidationError:
                return ValidationError, None
            except EnrollkitError as error:
                return type(error), None
            if isinstance(value, EnrollOutcome):
                return value, value
            return OK, value
        raise AssertionError("unreachable")  # pragma: no cover

    def _compare(self, operation: str, expected: Outcome, actual: Outcome, detail: str) -> None:
        name = getattr(actual, "__name__", None) or getattr(actual, "value", str(actual))
        self.count(f"outcome.{operation}.{name}")
        if actual != expected:
            self._diverged(f"{operation}({detail}): model says {expected}, library says {actual}")

    # -- the operations ---------------------------------------------------------------------

    def enroll(
        self,
        enrollment: Enrollment,
        *,
        tenant: Tenant,
        vacancy: Vacancy | None = None,
        window: DeduplicationWindow | None = None,
        policy: CancelPolicy | None = None,
        zone: tzinfo = timezone.utc,
        lag: timedelta = timedelta(0),
    ) -> Outcome:
        """``zone``: the zone ``now`` is given in; ``lag``: how far the caller's clock is
        behind the model's (services' clocks are not in step)."""
        now = (self.model.now - lag).astimezone(zone)
        lost_before = self.lost_responses()
        expected = self.model.enroll(
            enrollment, tenant=tenant, vacancy=vacancy, window=window, policy=policy, at=now
        )
        actual, _ = self._run(
            "enroll",
            lambda: enroll(
                enrollment,
                tenant=tenant,
                persistence_layer=self.persistence,
                vacancy=vacancy,
                deduplication_window=window,
                cancel_policy=policy,
                now=now,
            ),
        )
        if expected is EnrollOutcome.CREATED:
            self.count("paths.enroll_with_seat" if vacancy else "paths.enroll_without_seat")
            if window is not None:
                self.count("paths.enroll_with_window")
        if (
            expected is EnrollOutcome.CREATED
            and actual is EnrollOutcome.ALREADY_ENROLLED
            and self.lost_responses() > lost_before
        ):
            # Our commit was applied, its response lost; the retry found the enrollment.
            self.count("created_reported_as_already_enrolled_after_lost_response")
            actual = expected
        detail = f"{enrollment.id}, {enrollment.user.id}, {enrollment.course.id}, {tenant.id}"
        self._compare("enroll", expected, actual, detail)
        return actual

    def cancel(
        self,
        enrollment_id: str,
        *,
        tenant_id: str | None,
        zone: tzinfo = timezone.utc,
        lag: timedelta = timedelta(0),
    ) -> Outcome:
        now = (self.model.now - lag).astimezone(zone)
        old_seat = (
            self.model.returns_seat(enrollment_id)
            if enrollment_id in self.model.enrollments
            else None
        )
        record = self.model.enrollments.get(enrollment_id)
        taken_over = record is not None and (
            record.lock_until is not None
            and self.model.locks.get((record.user.id, record.course.id), (record.id,))[0]
            != record.id
        )
        expected = self.model.cancel(enrollment_id, tenant_id=tenant_id, at=now)
        if expected == OK:
            self.count("paths.cancel_with_seat" if old_seat else "paths.cancel_without_seat")
            if taken_over:
                self.count("paths.cancel_lock_taken_over")
        actual, result = self._run(
            "cancel",
            lambda: cancel(
                enrollment_id,
                author=AUTHOR,
                persistence_layer=self.persistence,
                tenant_id=tenant_id,
                now=now,
            ),
        )
        self._compare("cancel", expected, actual, f"{enrollment_id}, tenant_id={tenant_id}")
        if actual == OK:
            returned = result.returned_seat
            if old_seat is None:
                if returned is not None:
                    self._diverged(f"cancel({enrollment_id}) returned a seat it never held")
            else:
                if returned is None or (returned.org_id, returned.order_id) != (
                    old_seat.org_id,
                    old_seat.order_id,
                ):
                    self._diverged(f"cancel({enrollment_id}) returned {returned}, held {old_seat}")
                self.model.seat_returned(enrollment_id, returned)
        return actual

    def add_vacancies(
        self,
        *,
        org_id: str,
        order_id: str,
        course: Course,
        quantity: int,
        zone: tzinfo = timezone.utc,
    ) -> Outcome:
        now = self.model.now.astimezone(zone)
        expected = self.model.add_vacancies(org_id=org_id, order_id=order_id)
        actual, seats = self._run(
            "add_vacancies",
            lambda: add_vacancies(
                org_id=org_id,
                order_id=order_id,
                course=course,
                quantity=quantity,
                persistence_layer=self.persistence,
                now=now,
            ),
            resumable=True,
        )
        self._compare("add_vacancies", expected, actual, f"{org_id}, {order_id}, {quantity}")
        if actual == OK:
            problem = self.model.seats_reported(
                org_id=org_id, order_id=order_id, course=course, quantity=quantity, seats=seats
            )
            if problem:
                self._diverged(problem)
        return actual

    def put_order(self, order_id: str) -> None:
        self.persistence.put_item(
            {"id": order_id, "sk": "0", "create_date": iso(self.model.now)},
            table_name=self.persistence.order_table_name,
        )
        self.model.create_order(order_id)

    def delete_order(self, order_id: str) -> None:
        with self.persistence.transact_writer() as transaction:
            transaction.delete(
                key=KeyPair(pk=order_id, sk="0"), table_name=self.persistence.order_table_name
            )
        self.model.delete_order(order_id)

    def advance(self, delta: timedelta) -> None:
        self.model.advance(delta)

    def sweep(self, lag: timedelta) -> int:
        cutoff = self.model.now - lag
        swept = sweep(self.persistence, cutoff)
        self.model.sweep(cutoff)
        self.count("ttl_items_swept", swept)
        return swept


AUTHOR = Author(id="admin", name="Admin")
