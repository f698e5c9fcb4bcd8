"""Goal 2: per-operation cost of the embedded backend against the number of stored
enrollments (flat within +-20%), and peak memory per stored item (tracemalloc)."""

from __future__ import annotations

import inspect
import random
import time
import tracemalloc
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import enrollkit
from benchmarks.goals import micros, within
from benchmarks.workload import (
    NOW,
    TENANT,
    cancel_one,
    enroll_one,
    median,
    new_enrollments,
    per_call,
)
from enrollkit import InMemoryPersistence
from enrollkit.persistence.base import BasePersistence

DEFAULT_SIZES = (1_000, 10_000, 100_000)
FLAT = within(0.8, 1.2, "within +-20% (ratio 0.80-1.20)")


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


@dataclass
class _LoadedStore:
    point: SizePoint
    store: InMemoryPersistence
    batches: list[list[str]]
    reads: dict[str, Callable[[str], object]]


def _load(enrollments: int, per_round: int, rounds: int) -> _LoadedStore:
    enroll_one(InMemoryPersistence())  # first: imports (boto3 loads on the first enroll)
    store = InMemoryPersistence()
    tracemalloc.start()
    base, _ = tracemalloc.get_traced_memory()
    ids = [enroll_one(store) for _ in range(enrollments)]
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    items = len(store.scan()) + len(store.scan(table_name=store.order_table_name))
    chosen = random.Random(enrollments).sample(ids, min(len(ids), per_round * rounds))
    return _LoadedStore(
        SizePoint(enrollments, items, peak - base),
        store,
        [chosen[n::rounds] for n in range(rounds)],
        read_operations(store),
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
    samples: list[dict[str, list[float]]] = [
        {name: [] for name in ("enroll", "cancel", *each.reads)} for each in loaded
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
