"""Reads and writes in DynamoDB's units: Queries per read (get_enrollment, one page of
list_enrollments), counted on the backend, and write units per enroll and per cancel
without and with the listing indexes, computed from item sizes as DynamoDB bills on demand.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from benchmarks.workload import ADMIN, COURSE, NOW, TENANT
from enrollkit import (
    CancelPolicy,
    DeduplicationWindow,
    Enrollment,
    InMemoryPersistence,
    User,
    add_vacancies,
    cancel,
    enroll,
)
from enrollkit.persistence.base import BasePersistence
from enrollkit.persistence.indexes import GlobalIndex


def run() -> None:
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
    print("Reads and the write units of the listing indexes")
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
    old_image = index.project(old, table_keys) if old is not None and old_in else None
    new_image = index.project(new, table_keys) if new is not None and new_in else None
    if old_image == new_image:
        return 0
    if old is not None and new is not None and index.keys_of(old) == index.keys_of(new):
        return int(units(max(item_size(old_image or {}), item_size(new_image or {}))))
    return sum(int(units(item_size(image))) for image in (old_image, new_image) if image)


def _order(store: BasePersistence) -> str:
    from enrollkit import create_order

    create_order("order-bench", org_id=TENANT.id, persistence_layer=store, now=NOW)
    return "order-bench"
