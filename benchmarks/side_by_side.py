"""Goal 1: enroll, cancel and enroll-with-seat on each backend, in one run.

Every backend runs the same workload: per round a fresh pair of tables, ``count``
enrolls (window and cancel policy), ``count`` cancels of them, then ``count`` enrolls
that each take a seat. Figures are the median of the rounds' per-operation means.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from benchmarks.goals import Goal, micros
from benchmarks.workload import (
    cancel_one,
    enroll_one,
    enroll_with_seat,
    median,
    new_enrollments,
    per_call,
    seats,
)
from enrollkit import InMemoryPersistence
from enrollkit.persistence.base import BasePersistence

OPERATIONS = ("enroll", "cancel", "enroll+seat")
GOALS = {
    "moto server": Goal(">= 1000x", minimum=1000),
    "DynamoDB Local": Goal(">= 50x", minimum=50),
}


@dataclass
class Backend:
    """A store factory, and how to drop a store's tables after its round."""

    name: str
    fresh: Callable[[], BasePersistence]
    drop: Callable[[BasePersistence], None] = lambda store: None
    # The embedded backend's cost does not grow with its table, and a round of a few
    # hundred calls averages the garbage collector's pauses in instead of hitting or
    # missing one.
    minimum_count: int = 0


@dataclass
class Figures:
    name: str
    seconds: dict[str, float] = field(default_factory=dict)


def measure_round(backend: Backend, round_number: int, count: int) -> dict[str, float]:
    store = backend.fresh()
    try:
        return _one_round(store, f"order-{round_number}", count)
    finally:
        backend.drop(store)


def _one_round(store: BasePersistence, order_id: str, count: int) -> dict[str, float]:
    enroll_one(store)  # untimed: warms the code path (and the server's table)
    ids: list[str] = []
    figures = {
        "enroll": per_call(lambda e: ids.append(enroll_one(store, e)), new_enrollments(count))  # type: ignore[arg-type]
    }
    figures["cancel"] = per_call(lambda i: cancel_one(store, str(i)), list(ids))
    seated = list(zip(seats(store, order_id, count), new_enrollments(count), strict=True))
    figures["enroll+seat"] = per_call(
        lambda pair: enroll_with_seat(store, *pair),  # type: ignore[misc]
        seated,
    )
    return figures


@contextlib.contextmanager
def dynamodb_backend(name: str, endpoint_url: str) -> Iterator[Backend]:
    from enrollkit import DynamoDBPersistence

    numbers = itertools.count()

    def fresh() -> BasePersistence:
        n = next(numbers)
        store = DynamoDBPersistence(
            f"bench-{n}", f"bench-orders-{n}", endpoint_url=endpoint_url, region_name="us-east-1"
        )
        store.create_tables()
        return store

    def drop(store: BasePersistence) -> None:
        # DynamoDB Local slows down as tables pile up.
        client = store.client  # type: ignore[attr-defined]
        for table in (store.table_name, store.order_table_name):
            client.delete_table(TableName=table)

    yield Backend(name, fresh, drop)


@contextlib.contextmanager
def moto_backend() -> Iterator[Backend]:
    from tests.support import moto_server

    server = moto_server.start()
    try:
        with dynamodb_backend("moto server", server.endpoint_url) as backend:
            yield backend
    finally:
        server.stop()


@contextlib.contextmanager
def dynamodb_local_backend() -> Iterator[Backend | None]:
    from tests.support import dynamodb_local

    reason = dynamodb_local.unavailable()
    if reason is not None:
        print(f"  DynamoDB Local: SKIPPED, {reason}")
        yield None
        return
    server = dynamodb_local.start()
    try:
        with dynamodb_backend("DynamoDB Local", server.endpoint_url) as backend:
            yield backend
    finally:
        server.stop()


def run(count: int, rounds: int, *, moto: bool, local: bool) -> list[Figures]:
    """Measure each backend asked for, and print the figures with the ratios and goals."""
    print(
        f"Side by side: {count} operations of each kind per round on fresh tables (embedded: "
        f"at least 300), median of {rounds} rounds, rounds alternating backends (wall clock)"
    )
    with contextlib.ExitStack() as stack:
        backends = [Backend("embedded", InMemoryPersistence, minimum_count=300)]
        if moto:
            backends.append(stack.enter_context(moto_backend()))
        if local:
            backend = stack.enter_context(dynamodb_local_backend())
            if backend is not None:
                backends.append(backend)
        # Rounds alternate between the backends: load drift shifts them all alike.
        samples: list[dict[str, list[float]]] = [{op: [] for op in OPERATIONS} for _ in backends]
        for round_number in range(rounds):
            for backend, sample in zip(backends, samples, strict=True):
                calls = max(count, backend.minimum_count)
                for name, seconds in measure_round(backend, round_number, calls).items():
                    sample[name].append(seconds)
    results = [
        Figures(backend.name, {name: median(values) for name, values in sample.items()})
        for backend, sample in zip(backends, samples, strict=True)
    ]
    embedded = results[0]
    for figures in results:
        row = "  ".join(f"{op} {micros(figures.seconds[op])}" for op in OPERATIONS)
        print(f"  {figures.name:15s} {row}")
    for figures in results[1:]:
        goal = GOALS[figures.name]
        for op in OPERATIONS:
            ratio = figures.seconds[op] / embedded.seconds[op]
            print(
                f"  {op:12s} embedded is {ratio:8.0f}x faster than {figures.name:15s}"
                f"  {goal.verdict(ratio)}"
            )
    return results
