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
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from typing import Any

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
from enrollkit.persistence.indexes import GlobalIndex

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


# -- the reads: Queries per read, and the write units the listing indexes cost -----------------


def read_and_write_costs() -> None:
    """Queries per read (counted on the backend), and write units per enroll and per cancel
    without and with the listing indexes, computed from item sizes as DynamoDB bills on
    demand: per item written, 1 WCU per started KB of the larger of its old and new image,
    doubled in a transaction; plus per index holding the item, 1 WCU per started KB of its
    projection (2 when its index key changes: a delete and a put)."""
    import math
    from collections.abc import Sequence

    from enrollkit import get_enrollment, list_enrollments
    from enrollkit.persistence.indexes import TableIndexes
    from enrollkit.transaction.limits import item_size
    from enrollkit.transaction.operations import ConditionCheck, Operation

    def units(size: int) -> int:
        return max(1, math.ceil(size / 1024))

    class Metered(InMemoryPersistence):
        def __init__(self, **options: Any) -> None:
            super().__init__(**options)
            self.queries = 0
            self.write_units = 0

        def query(self, pk: str, **options: Any) -> list[dict[str, Any]]:
            self.queries += 1
            return super().query(pk, **options)

        def query_index(self, *args: Any, **options: Any) -> Any:
            self.queries += 1
            return super().query_index(*args, **options)

        def execute_transaction(
            self, operations: Sequence[Operation], *, client_request_token: str
        ) -> None:
            written = [op for op in operations if not isinstance(op, ConditionCheck)]
            before = [self.get_item(op.key, table_name=op.table_name) for op in written]
            super().execute_transaction(operations, client_request_token=client_request_token)
            after = [self.get_item(op.key, table_name=op.table_name) for op in written]
            for op, old, new in zip(written, before, after, strict=True):
                self.write_units += 2 * units(max(item_size(old or {}), item_size(new or {})))
                for index in self.indexes_of(op.table_name):
                    self.write_units += _index_units(index, old, new, units)

    def scenario(indexes: TableIndexes | None) -> tuple[Metered, int, int]:
        store = Metered(indexes=indexes)
        create = _order(store)
        seat = add_vacancies(
            org_id=TENANT.id,
            order_id=create,
            course=COURSE,
            quantity=1,
            persistence_layer=store,
            now=NOW,
        )[0]
        enrollment = Enrollment(
            user=User(id="ana", name="Ana Souza", email="ana@example.com"), course=COURSE
        )
        store.write_units = 0
        enroll(
            enrollment,
            tenant=TENANT,
            persistence_layer=store,
            vacancy=seat,
            deduplication_window=DeduplicationWindow(offset_days=10),
            cancel_policy=CancelPolicy(days=7),
            now=NOW,
        )
        enrolled = store.write_units
        store.write_units = 0
        cancel(enrollment.id, author=ADMIN, persistence_layer=store, now=NOW)
        return store, enrolled, store.write_units

    _, enroll_before, cancel_before = scenario(TableIndexes())
    after, enroll_after, cancel_after = scenario(None)
    for n in range(120):
        enroll(
            Enrollment(user=User(id=f"u{n}", name="U", email="u@example.com"), course=COURSE),
            tenant=TENANT,
            persistence_layer=after,
            now=NOW,
        )
    after.queries = 0
    enrollment_id = (
        list_enrollments(persistence_layer=after, tenant_id=TENANT.id, limit=1).items[0].id
    )
    after.queries = 0
    get_enrollment(enrollment_id, persistence_layer=after, now=NOW)
    get_queries = after.queries
    after.queries = 0
    pages, cursor = 0, None
    while True:
        page = list_enrollments(
            persistence_layer=after, tenant_id=TENANT.id, limit=50, cursor=cursor
        )
        pages += 1
        cursor = page.cursor
        if cursor is None:
            break
    print("\nreads and the write units of the listing indexes")
    print(f"  get_enrollment:   {get_queries} Query per read")
    print(f"  list_enrollments: {after.queries / pages:g} Query per page ({pages} pages of 121)")
    print(
        f"  write units per enroll (seat, window, policy): {enroll_before} without the "
        f"indexes, {enroll_after} with them"
    )
    print(
        f"  write units per cancel (a status change): {cancel_before} without, {cancel_after} with"
    )


def _index_units(
    index: GlobalIndex,
    old: Mapping[str, Any] | None,
    new: Mapping[str, Any] | None,
    units: Callable[[int], int],
) -> int:
    """Index write units of one item write: a put or delete in the index, both when its index
    key changed, an update when only projected attributes changed, nothing otherwise."""
    from enrollkit.transaction.limits import item_size

    table_keys = ("id", "sk")
    old_in = old is not None and index.keys_of(old) is not None
    new_in = new is not None and index.keys_of(new) is not None
    old_image = index.project(old, table_keys) if old_in else None
    new_image = index.project(new, table_keys) if new_in else None
    if old_image == new_image:
        return 0
    if old_in and new_in and index.keys_of(old) == index.keys_of(new):
        return int(units(max(item_size(old_image or {}), item_size(new_image or {}))))
    return sum(int(units(item_size(image))) for image in (old_image, new_image) if image)


def _order(store: BasePersistence) -> str:
    from enrollkit import create_order

    create_order("order-bench", org_id=TENANT.id, persistence_layer=store, now=NOW)
    return "order-bench"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--moto", action="store_true", help="also measure against moto")
    parser.add_argument("--count", type=int, default=300)
    args = parser.parse_args()
    import_cost()
    throughput(InMemoryPersistence, "embedded backend", args.count)
    scaling()
    read_and_write_costs()
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
