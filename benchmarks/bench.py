"""Benchmarks: print figures and ratios (never pass/fail; this machine is shared and noisy).

    python -m benchmarks.bench            # embedded backend and import cost (from the repo root)
    python -m benchmarks.bench --moto     # also DynamoDB through a local moto server

Figures are medians of several rounds, so one noisy round does not decide them.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import datetime, timezone

from enrollkit import (
    Author,
    CancelPolicy,
    Course,
    DeduplicationWindow,
    Enrollment,
    InMemoryPersistence,
    Tenant,
    User,
    add_vacancies,
    cancel,
    enroll,
)
from enrollkit.persistence.base import BasePersistence

NOW = datetime(2026, 1, 5, 9, 0, tzinfo=timezone.utc)
TENANT = Tenant(id="acme", name="Acme Training")
COURSE = Course(id="nr-10", name="NR-10 Electrical Safety", access_period=90)
ADMIN = Author(id="admin", name="Admin")


def median_seconds(run: Callable[[], None], rounds: int = 5) -> float:
    samples = []
    for _ in range(rounds):
        start = time.perf_counter()
        run()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def import_cost() -> None:
    def cost(statement: str) -> float:
        code = f"import time; t = time.perf_counter(); {statement}; print(time.perf_counter() - t)"
        runs = [
            float(subprocess.check_output([sys.executable, "-c", code], text=True))
            for _ in range(5)
        ]
        return statistics.median(runs)

    light = cost("import enrollkit")
    boto3 = cost("import boto3")
    full = cost("import enrollkit; enrollkit.enroll; enrollkit.DynamoDBPersistence")
    print("import cost (median of 5, fresh interpreter)")
    print(f"  import enrollkit            {light * 1000:8.1f} ms")
    print(f"  import boto3                {boto3 * 1000:8.1f} ms")
    print(f"  enrollkit + operations + DynamoDB backend {full * 1000:8.1f} ms")
    print(f"  ratio import enrollkit / import boto3: {light / boto3:.2f}")


def populate(store: BasePersistence, count: int, prefix: str) -> list[str]:
    ids = []
    for n in range(count):
        enrollment = Enrollment(
            user=User(id=f"{prefix}{n}", name=f"User {n}", email=f"u{n}@example.com"),
            course=COURSE,
        )
        enroll(
            enrollment,
            tenant=TENANT,
            persistence_layer=store,
            deduplication_window=DeduplicationWindow(offset_days=10),
            cancel_policy=CancelPolicy(days=7),
            now=NOW,
        )
        ids.append(enrollment.id)
    return ids


def throughput(store_factory: Callable[[], BasePersistence], label: str, count: int) -> None:
    timings: dict[str, list[float]] = {"enroll": [], "cancel": [], "enroll+seat": []}
    for _ in range(3):
        store = store_factory()
        start = time.perf_counter()
        ids = populate(store, count, "u")
        timings["enroll"].append((time.perf_counter() - start) / count)
        start = time.perf_counter()
        for enrollment_id in ids:
            cancel(enrollment_id, author=ADMIN, persistence_layer=store, now=NOW)
        timings["cancel"].append((time.perf_counter() - start) / count)
        store.put_item({"id": "order-1", "sk": "0"}, table_name=store.order_table_name)
        seats = add_vacancies(
            org_id="acme",
            order_id="order-1",
            course=COURSE,
            quantity=count,
            persistence_layer=store,
            now=NOW,
        )
        start = time.perf_counter()
        for n, seat in enumerate(seats):
            user = User(id=f"s{n}", name=f"Seat user {n}", email=f"s{n}@example.com")
            enroll(
                Enrollment(user=user, course=COURSE),
                tenant=TENANT,
                persistence_layer=store,
                vacancy=seat,
                now=NOW,
            )
        timings["enroll+seat"].append((time.perf_counter() - start) / count)
    print(f"{label}: {count} operations per round, median of 3 rounds")
    for name, samples in timings.items():
        per_op = statistics.median(samples)
        print(f"  {name:12s} {per_op * 1e6:9.0f} us/op  {1 / per_op:8.0f} ops/s")


def scaling() -> None:
    """cancel() reads one partition: its cost must not grow with the table."""

    def cancel_cost(table_size: int) -> float:
        store = InMemoryPersistence()
        populate(store, table_size, "bulk")
        probe = populate(store, 200, "probe")

        def run() -> None:
            for enrollment_id in probe:
                cancel(enrollment_id, author=ADMIN, persistence_layer=store, now=NOW)

        return median_seconds(run, rounds=1) / len(probe)

    small, large = cancel_cost(100), cancel_cost(5_000)
    print("embedded cancel() against table size")
    print(f"  100 enrollments     {small * 1e6:8.0f} us/cancel")
    print(f"  5,000 enrollments   {large * 1e6:8.0f} us/cancel")
    print(f"  ratio 5,000 / 100: {large / small:.2f} (1.0 = independent of table size)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--moto", action="store_true", help="also measure against moto")
    parser.add_argument("--count", type=int, default=300)
    args = parser.parse_args()
    import_cost()
    throughput(InMemoryPersistence, "embedded backend", args.count)
    scaling()
    if args.moto:
        from tests.support import moto_server

        from enrollkit import DynamoDBPersistence

        server = moto_server.start()
        counter = iter(range(1_000_000))
        try:

            def fresh() -> BasePersistence:
                n = next(counter)
                store = DynamoDBPersistence(
                    f"bench-{n}", f"bench-orders-{n}", endpoint_url=server.endpoint_url
                )
                store.create_tables()
                return store

            throughput(fresh, "DynamoDB (moto server, one request at a time)", args.count // 5)
        finally:
            server.stop()


if __name__ == "__main__":
    main()
