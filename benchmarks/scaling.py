"""Goal 2: per-operation cost of the embedded backend against the number of stored
enrollments (flat within +-20%), and peak memory per stored item (tracemalloc).

The sweeper's cost is per delivered event: each round, ``per_round`` enrollments whose
reminder falls due at that round's fake ``now`` are written (untimed), ``deliver_due`` runs
at that ``now`` (timed), and the delivered enrollments are removed again (untimed), so every
size delivers the same events per round, keeps no delivered records from earlier rounds,
and the other figures see the store they would see without the sweeper. The sweeps run a
few seconds before the moment every stored enrollment's own 3-day reminder falls due: the
index partitions they read hold all of those (not yet due) entries, and those grow with
the size.
"""

from __future__ import annotations

import inspect
import itertools
import random
import time
import tracemalloc
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import enrollkit
from benchmarks.goals import micros, within
from benchmarks.workload import (
    COURSE,
    NOW,
    TENANT,
    cancel_one,
    enroll_one,
    median,
    new_enrollments,
    per_call,
)
from enrollkit import (
    DueEvent,
    Enrollment,
    InMemoryPersistence,
    KeyPair,
    LifecycleEvent,
    User,
    deliver_due,
)
from enrollkit.layout import due as due_index
from enrollkit.layout import enrollment as enrollment_layout
from enrollkit.layout import schedule
from enrollkit.layout.table import PARTITION_KEY, SORT_KEY
from enrollkit.persistence.base import BasePersistence
from enrollkit.timing import NO_ACCESS_REMINDER

DEFAULT_SIZES = (1_000, 10_000, 100_000)
FLAT = within(0.8, 1.2, "within +-20% (ratio 0.80-1.20)")
SWEEP = "sweep (per event)"
SWEPT_EVENT = LifecycleEvent.REMINDER_NO_ACCESS_3_DAYS


@dataclass
class SizePoint:
    enrollments: int
    items: int
    peak_bytes: int
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def bytes_per_item(self) -> float:
        return self.peak_bytes / self.items


def read_operations(store: BasePersistence) -> dict[str, Callable[[str], object]]:
    """The reads to time: enrollkit's get/list reads when it exports them, and always a
    Query of one enrollment's partition (what get_enrollment makes)."""
    reads: dict[str, Callable[[str], object]] = {
        "query (one partition)": lambda enrollment_id: store.query(enrollment_id)
    }
    for name in ("get_enrollment", "list_enrollments"):
        function = getattr(enrollkit, name, None)
        if function is None:
            continue
        call = _adapt(function, store)
        if call is None:
            print(f"  {name}: SKIPPED, a required parameter is not one the benchmark knows")
        else:
            reads[name] = call
    return reads


def _adapt(function: Callable[..., Any], store: BasePersistence) -> Callable[[str], object] | None:
    """Call ``function`` with the arguments its signature names (signatures may still move)."""
    known: dict[str, Any] = {
        "persistence_layer": store,
        "tenant_id": TENANT.id,
        "tenant": TENANT,
        "now": NOW,
    }
    positional_id = False
    keywords: dict[str, Any] = {}
    for parameter in inspect.signature(function).parameters.values():
        if parameter.name == "enrollment_id":
            positional_id = parameter.kind is not parameter.KEYWORD_ONLY
            if not positional_id:
                keywords["enrollment_id"] = None
        elif parameter.name in known:
            keywords[parameter.name] = known[parameter.name]
        elif parameter.default is parameter.empty and parameter.kind not in (
            parameter.VAR_POSITIONAL,
            parameter.VAR_KEYWORD,
        ):
            return None

    def call(enrollment_id: str) -> object:
        arguments = {k: (enrollment_id if v is None else v) for k, v in keywords.items()}
        if positional_id:
            return function(enrollment_id, **arguments)
        return function(**arguments)

    return call


def _ignore(event: DueEvent) -> None:
    """The handler: a no-op (what a real handler does is its caller's cost, not enrollkit's)."""


@dataclass
class SweepRounds:
    """The sweeper's side of one size: the fake ``now`` of each sweep (the first one, a
    warm-up that writes the checkpoint, untimed), one second apart, just before
    ``NOW + 3 days``, when every stored enrollment's own reminder falls due."""

    instants: list[datetime]
    per_round: int
    _numbers: itertools.count[int] = field(default_factory=itertools.count)

    @classmethod
    def before_stored_reminders(cls, rounds: int, per_round: int) -> SweepRounds:
        stored_due = NOW + NO_ACCESS_REMINDER
        return cls(
            [stored_due - timedelta(seconds=rounds + 1 - n) for n in range(rounds + 1)],
            per_round,
        )

    def shares_partitions(self) -> bool:
        """Whether the sweeps read the day the stored reminders are in (not when ``NOW``
        is a few seconds after midnight UTC)."""
        return due_index.day_of(self.instants[0]) == due_index.day_of(NOW + NO_ACCESS_REMINDER)

    def seed(self, store: BasePersistence, due: datetime) -> list[str]:
        """``per_round`` enrollments whose reminder falls due at ``due``: the root and the
        schedule item, written directly (enroll() is timed on its own)."""
        enrolled_at = due - NO_ACCESS_REMINDER
        ids = []
        for _ in range(self.per_round):
            n = next(self._numbers)
            enrollment = Enrollment(
                id=f"sweep-{n}",
                user=User(id=f"sweep-user-{n}", name=f"User {n}", email=f"s{n}@example.com"),
                course=COURSE,
            )
            store.put_item(enrollment_layout.root_item(enrollment, TENANT, enrolled_at))
            store.put_item(
                schedule.scheduled_item(
                    enrollment.id,
                    schedule.Recipient.of(enrollment),
                    SWEPT_EVENT,
                    due,
                    enrolled_at,
                )
            )
            ids.append(enrollment.id)
        return ids

    def sweep(self, store: BasePersistence, due: datetime, clock: Callable[[], float]) -> float:
        """Seconds per delivered event (by ``clock``) of one sweep at ``due``, of
        ``per_round`` events seeded for it; the delivered enrollments are removed after."""
        ids = self.seed(store, due)
        start = clock()
        report = deliver_due(persistence_layer=store, handlers={SWEPT_EVENT: _ignore}, now=due)
        spent = clock() - start
        if report.delivered != self.per_round or report.failed or report.skipped:
            raise RuntimeError(
                f"the sweep at {due} delivered {report.delivered} of {self.per_round} events "
                f"({report.failed} failed, {report.skipped} skipped)"
            )
        _forget(store, ids)
        return spent / report.delivered


def _forget(store: BasePersistence, enrollment_ids: Sequence[str]) -> None:
    """Delete every item of these enrollments (their root and their delivery record)."""
    for enrollment_id in enrollment_ids:
        items = store.query(enrollment_id)
        with store.transact_writer() as transaction:
            for item in items:
                transaction.delete(key=KeyPair(pk=item[PARTITION_KEY], sk=item[SORT_KEY]))


@dataclass
class _LoadedStore:
    point: SizePoint
    store: InMemoryPersistence
    batches: list[list[str]]
    reads: dict[str, Callable[[str], object]]
    sweeps: SweepRounds


def _fill_token_memory(store: InMemoryPersistence) -> None:
    """Bring the store's ClientRequestToken memory to its steady state (full, so every
    commit also forgets the oldest), as a store of 10^5 enrollments is: otherwise the
    small stores are timed without that cost and the big ones with it. Untimed: commits
    of a condition check on a missing item, which write nothing."""
    from boto3.dynamodb.conditions import Attr

    from enrollkit import KeyPair
    from enrollkit.persistence.memory import REMEMBERED_TOKENS

    for _ in range(REMEMBERED_TOKENS - store.transactions_committed):
        with store.transact_writer() as transaction:
            transaction.condition(key=KeyPair("bench-absent", "0"), cond=Attr("sk").not_exists())


def _load(enrollments: int, per_round: int, rounds: int) -> _LoadedStore:
    enroll_one(InMemoryPersistence())  # first: imports (boto3 loads on the first enroll)
    store = InMemoryPersistence()
    tracemalloc.start()
    base, _ = tracemalloc.get_traced_memory()
    ids = [enroll_one(store) for _ in range(enrollments)]
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    items = len(store.scan()) + len(store.scan(table_name=store.order_table_name))
    _fill_token_memory(store)
    chosen = random.Random(enrollments).sample(ids, min(len(ids), per_round * rounds))
    sweeps = SweepRounds.before_stored_reminders(rounds, per_round)
    sweeps.sweep(store, sweeps.instants[0], time.process_time)  # untimed: no checkpoint yet
    return _LoadedStore(
        SizePoint(enrollments, items, peak - base),
        store,
        [chosen[n::rounds] for n in range(rounds)],
        read_operations(store),
        sweeps,
    )


def run(sizes: Sequence[int], per_round: int = 200, rounds: int = 5) -> list[SizePoint]:
    """Every size's store is loaded first, then the rounds alternate between the sizes, so
    a change in the machine's load shifts every size alike. Costs are CPU time."""
    print(
        f"Scaling (embedded): stores of {', '.join(f'{s:,}' for s in sizes)} enrollments "
        f"side by side; {rounds} rounds of {per_round} calls each, alternating sizes, "
        "median CPU time; peak memory by tracemalloc while populating"
    )
    loaded = [_load(size, per_round, rounds) for size in sizes]
    sweeps = loaded[0].sweeps
    print(
        f"  {SWEEP}: each round's sweep delivers {per_round} reminders due at its fake now "
        "(no-op handler); "
        + (
            "its index partitions also hold every stored enrollment's reminder, due seconds later"
            if sweeps.shares_partitions()
            else "NOTE: NOW is seconds after midnight UTC, the sweeps read the day before "
            "the stored reminders"
        )
    )
    samples: list[dict[str, list[float]]] = [
        {name: [] for name in ("enroll", "cancel", *each.reads, SWEEP)} for each in loaded
    ]
    clock = time.process_time
    for round_number in range(rounds):
        for each, sample in zip(loaded, samples, strict=True):
            store, batch = each.store, each.batches[round_number]
            sample["enroll"].append(
                per_call(
                    lambda e: enroll_one(store, e),  # type: ignore[arg-type]  # noqa: B023
                    new_enrollments(per_round),
                    clock,
                )
            )
            for name, read in each.reads.items():
                sample[name].append(per_call(read, batch, clock))  # type: ignore[arg-type]
            sample["cancel"].append(
                per_call(lambda i: cancel_one(store, str(i)), batch, clock)  # noqa: B023
            )
            sample[SWEEP].append(
                each.sweeps.sweep(store, each.sweeps.instants[round_number + 1], clock)
            )
    points = []
    for each, sample in zip(loaded, samples, strict=True):
        point = each.point
        point.seconds = {name: median(values) for name, values in sample.items()}
        points.append(point)
        row = "  ".join(f"{name} {micros(s)}" for name, s in point.seconds.items())
        print(
            f"  {point.enrollments:>9,} enrollments ({point.items:>9,} items, "
            f"{point.bytes_per_item:6.0f} B/item peak)  {row}"
        )
    first = points[0]
    for name in first.seconds:
        ratios = [point.seconds[name] / first.seconds[name] for point in points[1:]]
        shown = ", ".join(
            f"{point.enrollments:,}: {ratio:4.2f}"
            for point, ratio in zip(points[1:], ratios, strict=True)
        )
        worst = max(ratios, key=lambda ratio: abs(ratio - 1), default=1.0)
        print(f"  {name:22s} cost / cost at {first.enrollments:,}: {shown}  {FLAT.verdict(worst)}")
    return points
