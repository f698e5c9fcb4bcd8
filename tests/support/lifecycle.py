"""Helpers of the lifecycle tests: handlers that record (and fail on demand), an
enrollment's schedule and deliveries as stored, and DynamoDB's TTL deleting an item (with
the stream record it makes) on any backend."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from enrollkit import (
    CancelPolicy,
    DueEvent,
    Enrollment,
    EnrollOutcome,
    KeyPair,
    LifecycleEvent,
    enroll,
)
from enrollkit.persistence.base import BasePersistence
from enrollkit.persistence.streams import ttl_removal_record
from tests.conftest import TENANT, make_course, make_user

UNLIMITED = CancelPolicy()


@dataclass
class Recorder:
    """Handlers for every event that record each call; ``failing`` events (or a count of
    next calls) raise instead."""

    calls: list[DueEvent] = field(default_factory=list)
    failures: list[DueEvent] = field(default_factory=list)
    fail_next: int = 0
    failing: set[LifecycleEvent] = field(default_factory=set)
    clock: Callable[[], datetime] | None = None
    log: list[tuple[DueEvent, bool, datetime | None]] = field(default_factory=list)
    """Every call in order: the event, whether it succeeded, when (by ``clock``)."""

    def __call__(self, event: DueEvent) -> None:
        at = self.clock() if self.clock is not None else None
        if self.fail_next > 0 or event.event in self.failing:
            self.fail_next = max(0, self.fail_next - 1)
            self.failures.append(event)
            self.log.append((event, False, at))
            raise RuntimeError(f"handler down for {event.event.name}")
        self.calls.append(event)
        self.log.append((event, True, at))

    @property
    def handlers(self) -> dict[LifecycleEvent, Callable[[DueEvent], None]]:
        return {event: self for event in LifecycleEvent}

    def delivered(self) -> list[tuple[str, LifecycleEvent, datetime]]:
        return [(c.enrollment_id, c.event, c.due) for c in self.calls]


def enroll_one(
    store: Any,
    now: datetime,
    enrollment_id: str = "enr-1",
    *,
    access_period: int = 90,
    policy: CancelPolicy | None = UNLIMITED,
    user_id: str = "user-1",
    **options: Any,
) -> Enrollment:
    enrollment = Enrollment(
        id=enrollment_id, user=make_user(user_id), course=make_course("course-1", access_period)
    )
    outcome = enroll(
        enrollment, tenant=TENANT, persistence_layer=store, cancel_policy=policy, now=now, **options
    )
    assert outcome is EnrollOutcome.CREATED
    return enrollment


def by_sk(store: BasePersistence, enrollment_id: str) -> dict[str, dict[str, Any]]:
    return {item["sk"]: item for item in store.query(enrollment_id)}


def status(store: BasePersistence, enrollment_id: str) -> str:
    root = store.get_item(KeyPair(enrollment_id, "0"))
    assert root is not None
    return str(root["status"])


def schedule(store: BasePersistence, enrollment_id: str) -> dict[LifecycleEvent, datetime]:
    """The enrollment's scheduled events and when each is due."""
    return {
        LifecycleEvent(item["sk"]): datetime.fromtimestamp(item["ttl"], tz=timezone.utc)
        for item in store.query(enrollment_id, sk_prefix="schedules#")
    }


def deliveries(store: BasePersistence, enrollment_id: str) -> dict[str, dict[str, Any]]:
    return {item["sk"]: item for item in store.query(enrollment_id, sk_prefix="deliveries#")}


def ttl_delete(store: BasePersistence, key: KeyPair, at: datetime) -> dict[str, Any]:
    """DynamoDB's TTL deleting ``key``: the item goes, and the stream event of the deletion
    (as a Lambda receives it) comes back."""
    item = store.get_item(key)
    assert item is not None, key
    with store.transact_writer() as transaction:
        transaction.delete(key=key)
    return {"Records": [ttl_removal_record(store.table_name, item, at)]}
