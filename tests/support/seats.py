"""Shared helpers for the seat tests: seeding orders, reading every stored item,
counting an order's seats from the stored items (not from enrollkit's own ledger),
a persistence wrapper that counts transactions and can simulate a crash, and a
barrier-started race runner.

The conservation invariant (DESIGN.md, cancel): for every order, the available
seats plus the non-canceled enrollments holding one of its seats equal the seats
added. :func:`assert_seats_conserved` checks it, and checks that the order's
``generated_items#`` records tell the same story as the seat and enrollment items.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

from enrollkit import DynamoDBPersistence, InMemoryPersistence, KeyPair, SeatStatus, Vacancy
from enrollkit.persistence.base import BasePersistence
from enrollkit.persistence.indexes import IndexPage
from enrollkit.persistence.marshal import deserialize_item
from enrollkit.transaction.operations import Operation

T = TypeVar("T")

VACANCIES_PREFIX = "vacancies#"
GENERATED_ITEMS_PREFIX = "generated_items#"


# -- seeding -------------------------------------------------------------------------


def seed_order(persistence: BasePersistence, order_id: str) -> None:
    """Create the order item ``<order id>``/``0``: seats move only while it exists."""
    persistence.put_item({"id": order_id, "sk": "0"}, table_name=persistence.order_table_name)


def delete_order(persistence: BasePersistence, order_id: str) -> None:
    """Delete the order item (its ``generated_items#`` records stay)."""
    with persistence.transact_writer() as transaction:
        transaction.delete(
            key=KeyPair(pk=order_id, sk="0"),
            table_name=persistence.order_table_name,
        )


# -- reading everything --------------------------------------------------------------


def stored_items(
    persistence: BasePersistence, table_name: str | None = None
) -> list[dict[str, Any]]:
    """Every item of a table (the enrollments table by default), strongly consistent."""
    while isinstance(persistence, CrashingPersistence):
        persistence = persistence.inner
    name = table_name or persistence.table_name
    if isinstance(persistence, InMemoryPersistence):
        return persistence.scan(table_name=name)
    if isinstance(persistence, DynamoDBPersistence):
        pages = persistence.client.get_paginator("scan").paginate(
            TableName=name, ConsistentRead=True
        )
        return [deserialize_item(item) for page in pages for item in page.get("Items", [])]
    raise TypeError(f"cannot scan {type(persistence).__name__}")


@dataclass(frozen=True)
class SeatCensus:
    """An order's seats, counted from the stored items.

    ``available``: (org id, slot id) -> course id, for every seat item
    ``vacancies#<org>``/``<order>#<slot>``.
    ``holders``: enrollment id -> (org id, slot id) of the seat it holds, for every
    non-canceled enrollment whose ``parent_vacancy`` names the order.
    ``generated``: slot id -> its ``generated_items#`` record in the orders table.
    """

    order_id: str
    available: Mapping[tuple[str, str], str]
    holders: Mapping[str, tuple[str, str]]
    generated: Mapping[str, Mapping[str, Any]] = field(repr=False)

    @property
    def total(self) -> int:
        return len(self.available) + len(self.holders)

    def available_for(self, course_id: str) -> list[Vacancy]:
        """The available seats of ``course_id``, as Vacancy values."""
        return [
            Vacancy(org_id=org_id, order_id=self.order_id, slot_id=slot_id)
            for (org_id, slot_id), seat_course in sorted(self.available.items())
            if seat_course == course_id
        ]

    def generated_with(self, status: SeatStatus) -> dict[str, Mapping[str, Any]]:
        return {
            slot: record for slot, record in self.generated.items() if record["status"] == status
        }


def seat_census(persistence: BasePersistence, order_id: str) -> SeatCensus:
    """Count ``order_id``'s seats from every stored item (two scans)."""
    items = stored_items(persistence)
    available: dict[tuple[str, str], str] = {}
    parents: dict[str, Mapping[str, Any]] = {}
    roots: dict[str, Mapping[str, Any]] = {}
    for item in items:
        pk, sk = str(item["id"]), str(item["sk"])
        if pk.startswith(VACANCIES_PREFIX) and sk.startswith(f"{order_id}#"):
            seat = (pk.removeprefix(VACANCIES_PREFIX), sk.removeprefix(f"{order_id}#"))
            available[seat] = str(item["course"]["id"])
        elif sk == "parent_vacancy" and item.get("order_id") == order_id:
            parents[pk] = item
        elif sk == "0":
            roots[pk] = item
    holders: dict[str, tuple[str, str]] = {}
    for enrollment_id, parent in parents.items():
        root = roots.get(enrollment_id)
        if root is None or root.get("status") == "CANCELED":
            continue
        seat_pk, seat_sk = str(parent["vacancy"]["id"]), str(parent["vacancy"]["sk"])
        holders[enrollment_id] = (
            seat_pk.removeprefix(VACANCIES_PREFIX),
            seat_sk.removeprefix(f"{order_id}#"),
        )
    generated = {
        str(item["sk"]).removeprefix(GENERATED_ITEMS_PREFIX): item
        for item in stored_items(persistence, persistence.order_table_name)
        if item["id"] == order_id and str(item["sk"]).startswith(GENERATED_ITEMS_PREFIX)
    }
    return SeatCensus(order_id, available, holders, generated)


def assert_seats_conserved(
    persistence: BasePersistence, order_id: str, seats_added: int
) -> SeatCensus:
    """Assert the conservation invariant for ``order_id`` and return the census.

    available seat items + non-canceled enrollments holding one of the order's seats
    == ``seats_added``; and the order's ``generated_items#`` records agree: one
    AVAILABLE record per seat item, one USED record per holder naming its enrollment,
    every other record ROLLBACK.
    """
    census = seat_census(persistence, order_id)
    assert census.total == seats_added, (
        f"order {order_id!r}: {len(census.available)} available + {len(census.holders)} held "
        f"= {census.total}, but {seats_added} seats were added"
    )
    available_records = census.generated_with(SeatStatus.AVAILABLE)
    used_records = census.generated_with(SeatStatus.USED)
    assert set(available_records) == {slot for _, slot in census.available}, (
        "AVAILABLE generated_items and seat items disagree"
    )
    assert {
        slot: (record["org_id"], record["course_id"]) for slot, record in available_records.items()
    } == {slot: (org, course) for (org, slot), course in census.available.items()}, (
        "an AVAILABLE generated_item names another org or course than its seat item"
    )
    assert len(used_records) == len(census.holders)
    assert {record.get("enrollment_id"): slot for slot, record in used_records.items()} == {
        enrollment_id: slot for enrollment_id, (_, slot) in census.holders.items()
    }, "USED generated_items and the enrollments holding a seat disagree"
    others = set(census.generated) - set(available_records) - set(used_records)
    assert all(census.generated[slot]["status"] == SeatStatus.ROLLBACK for slot in others)
    return census


# -- a persistence wrapper -------------------------------------------------------------


class SimulatedCrash(Exception):
    """The process 'died' here (raised by CrashingPersistence)."""


class CrashingPersistence(BasePersistence):
    """Delegates to ``inner``; counts the transactions it commits.

    ``crash_after=K``: once K transactions went through, the process "dies": every later
    transaction raises :class:`SimulatedCrash` without being applied; with
    ``crash_mode="after"`` the first of them is applied before it raises, as when the
    response of a committed write is lost.
    ``on_transaction`` runs before each transaction reaches the store (for barriers).
    """

    def __init__(
        self,
        inner: BasePersistence,
        *,
        crash_after: int | None = None,
        crash_mode: Literal["before", "after"] = "before",
        on_transaction: Callable[[Sequence[Operation]], None] | None = None,
    ) -> None:
        super().__init__(inner.table_name, inner.order_table_name, retry_policy=inner.retry_policy)
        self.inner = inner
        self.crash_after = crash_after
        self.crash_mode = crash_mode
        self.on_transaction = on_transaction
        self.committed = 0
        self.attempted = 0
        self.crashed = False
        self._count_lock = threading.Lock()

    def execute_transaction(
        self, operations: Sequence[Operation], *, client_request_token: str
    ) -> None:
        if self.on_transaction is not None:
            self.on_transaction(operations)
        with self._count_lock:
            self.attempted += 1
            crashing = self.crash_after is not None and self.committed >= self.crash_after
            # "after": the first crashing transaction is applied (its response is lost);
            # the process is dead from then on, so nothing later is applied.
            apply = not crashing or (self.crash_mode == "after" and not self.crashed)
            self.crashed = self.crashed or crashing
        if not apply:
            raise SimulatedCrash("crashed before this transaction was sent")
        self.inner.execute_transaction(operations, client_request_token=client_request_token)
        with self._count_lock:
            self.committed += 1
        if crashing:
            raise SimulatedCrash("crashed after this transaction was applied")

    def get_item(self, key: Any, *, table_name: str | None = None) -> dict[str, Any] | None:
        return self.inner.get_item(key, table_name=table_name)

    def query(
        self, pk: str, *, sk_prefix: str = "", table_name: str | None = None
    ) -> list[dict[str, Any]]:
        return self.inner.query(pk, sk_prefix=sk_prefix, table_name=table_name)

    def put_item(self, item: Mapping[str, Any], *, table_name: str | None = None) -> None:
        self.inner.put_item(item, table_name=table_name)

    def query_index(self, index_name: str, partition_value: str, **query: Any) -> IndexPage:
        return self.inner.query_index(index_name, partition_value, **query)

    def scan_page(self, **scan: Any) -> IndexPage:
        return self.inner.scan_page(**scan)


# -- races -------------------------------------------------------------------------------
