"""The lifecycle steps: record_access(), complete(), cancel() within the transitions table,
and the administrator's override. Every test runs on every backend.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from enrollkit import (
    AccessPeriodEnded,
    AdminOverride,
    Author,
    CancelNotAllowed,
    CancelPolicy,
    Certificate,
    EnrollmentNotFound,
    EnrollmentStatus,
    InvalidInput,
    LifecycleEvent,
    SeatStatus,
    TransitionNotAllowed,
    cancel,
    complete,
    deliver_due,
    record_access,
)
from enrollkit.lifecycle import transitions
from enrollkit.lifecycle.transitions import Step
from enrollkit.persistence.base import BasePersistence
from tests.conftest import OTHER_TENANT, TENANT
from tests.support.invariants import snapshot
from tests.support.lifecycle import (
    Recorder,
    by_sk,
    deliveries,
    enroll_one,
    schedule,
    status,
)
from tests.test_cancel import CountingPersistence
from tests.test_enroll import seed_seats

DAY = timedelta(days=1)
ADMIN = Author(id="admin-1", name="Admin One")
NO_ACCESS = LifecycleEvent.REMINDER_NO_ACCESS_3_DAYS
NO_ACTIVITY = LifecycleEvent.NO_ACTIVITY_7_DAYS
ACCESS_REMINDER = LifecycleEvent.ACCESS_PERIOD_REMINDER_30_DAYS
CERT_REMINDER = LifecycleEvent.CERT_EXPIRATION_REMINDER_30_DAYS
ARCHIVED = LifecycleEvent.COURSE_ARCHIVED
EXPIRED = LifecycleEvent.COURSE_EXPIRED


def whole(instant: datetime) -> datetime:
    return instant.replace(microsecond=0)


# -- record_access ------------------------------------------------------------------------------


def test_the_first_access_starts_the_course(persistence: BasePersistence, now: datetime) -> None:
    enroll_one(persistence, now)
    result = record_access("enr-1", persistence_layer=persistence, progress=5, now=now + DAY)

    assert result.first_access and result.status is EnrollmentStatus.IN_PROGRESS
    root = by_sk(persistence, "enr-1")["0"]
    assert root["status"] == "IN_PROGRESS"
    assert root["first_access_date"] == root["last_access_date"] == (now + DAY).isoformat()
    assert root["progress"] == 5
    assert schedule(persistence, "enr-1") == {
        NO_ACTIVITY: whole(now + 8 * DAY),  # 7 days after the access
        ACCESS_REMINDER: whole(now + 60 * DAY),
        EXPIRED: whole(now + 90 * DAY),
    }  # the no-access reminder is gone
    assert result.no_activity_due == whole(now + 8 * DAY)


def test_later_accesses_push_no_activity_only_later(
    persistence: BasePersistence, now: datetime
) -> None:
    enroll_one(persistence, now)
    record_access("enr-1", persistence_layer=persistence, now=now + DAY)
    later = record_access("enr-1", persistence_layer=persistence, progress=40, now=now + 2 * DAY)
    assert not later.first_access
    assert schedule(persistence, "enr-1")[NO_ACTIVITY] == whole(now + 9 * DAY)
    # An access reported late (an older `now`) never moves it earlier.
    record_access(
        "enr-1", persistence_layer=persistence, progress=41, now=now + DAY + timedelta(hours=1)
    )
    assert schedule(persistence, "enr-1")[NO_ACTIVITY] == whole(now + 9 * DAY)
    root = by_sk(persistence, "enr-1")["0"]
    assert root["first_access_date"] == (now + DAY).isoformat()
    assert root["progress"] == 41


def test_a_later_access_is_one_write_and_no_read(
    persistence: BasePersistence, now: datetime
) -> None:
    enroll_one(persistence, now)
    record_access("enr-1", persistence_layer=persistence, now=now + DAY)
    counting = CountingPersistence(persistence)
    record_access("enr-1", persistence_layer=counting, progress=50, now=now + 2 * DAY)  # type: ignore[arg-type]
    assert (counting.queries, counting.gets, counting.transactions) == (0, 0, 1)
    assert schedule(persistence, "enr-1")[NO_ACTIVITY] == whole(now + 9 * DAY)
    assert by_sk(persistence, "enr-1")["0"]["progress"] == 50


def test_record_access_is_idempotent(persistence: BasePersistence, now: datetime) -> None:
    enroll_one(persistence, now)
    record_access("enr-1", persistence_layer=persistence, progress=3, now=now + DAY)
    before = snapshot(persistence)
    again = record_access("enr-1", persistence_layer=persistence, progress=3, now=now + DAY)
    assert not again.first_access
    assert snapshot(persistence) == before


def test_no_activity_is_not_scheduled_past_the_access_period(
    persistence: BasePersistence, now: datetime
) -> None:
    enroll_one(persistence, now, access_period=10)
    record_access("enr-1", persistence_layer=persistence, now=now + DAY)
    assert schedule(persistence, "enr-1")[NO_ACTIVITY] == whole(now + 8 * DAY)
    # 7 days after this access is day 12, after the 10-day period ends: no reminder (and
    # the earlier one no longer holds, as the user was active).
    result = record_access("enr-1", persistence_layer=persistence, now=now + 5 * DAY)
    assert result.no_activity_due is None
    assert NO_ACTIVITY not in schedule(persistence, "enr-1")


def test_an_access_after_a_due_no_activity_event_claims_it_and_schedules_the_next(
    persistence: BasePersistence, now: datetime
) -> None:
    enroll_one(persistence, now)
    record_access("enr-1", persistence_layer=persistence, now=now + DAY)
    # The no-activity event fell due on day 8; the sweeper has not run; the user returns.
    record_access("enr-1", persistence_layer=persistence, now=now + 10 * DAY)
    assert schedule(persistence, "enr-1")[NO_ACTIVITY] == whole(now + 17 * DAY)
    (record,) = deliveries(persistence, "enr-1").values()
    assert record["event"] == NO_ACTIVITY.value and record["status"] == "PENDING"
    # ... and the next sweep delivers it: it happened, on day 8.
    recorder = Recorder()
    report = deliver_due(
        persistence_layer=persistence, handlers=recorder.handlers, now=now + 10 * DAY
    )
    assert recorder.delivered() == [("enr-1", NO_ACTIVITY, whole(now + 8 * DAY))]
    assert report.delivered == 1


def test_record_access_of_another_tenant_is_not_found(
    persistence: BasePersistence, now: datetime
) -> None:
    enroll_one(persistence, now)
    before = snapshot(persistence)
    with pytest.raises(EnrollmentNotFound):
        record_access("enr-1", persistence_layer=persistence, tenant_id=OTHER_TENANT.id, now=now)
    with pytest.raises(EnrollmentNotFound):
        record_access("nobody", persistence_layer=persistence, now=now)
    assert snapshot(persistence) == before
    record_access("enr-1", persistence_layer=persistence, tenant_id=TENANT.id, now=now + DAY)
    assert status(persistence, "enr-1") == "IN_PROGRESS"


def test_no_access_once_the_access_period_ended_even_undelivered(
    persistence: BasePersistence, now: datetime
) -> None:
    enroll_one(persistence, now, access_period=10)
    before = snapshot(persistence)
    with pytest.raises(AccessPeriodEnded):
        record_access("enr-1", persistence_layer=persistence, now=now + 10 * DAY)
    with pytest.raises(AccessPeriodEnded):
        complete("enr-1", persistence_layer=persistence, now=now + 11 * DAY)
    assert snapshot(persistence) == before


@pytest.mark.parametrize("bad", [-1, 101, True, 2.5, "10"])
def test_progress_is_checked(persistence: BasePersistence, now: datetime, bad: Any) -> None:
    enroll_one(persistence, now)
    with pytest.raises(InvalidInput):
        record_access("enr-1", persistence_layer=persistence, progress=bad, now=now)


# -- complete -------------------------------------------------------------------------------------


def test_complete_with_an_expiring_certificate(persistence: BasePersistence, now: datetime) -> None:
    enroll_one(persistence, now)
    record_access("enr-1", persistence_layer=persistence, now=now + DAY)
    expires = now + 365 * DAY
    result = complete(
        "enr-1",
        persistence_layer=persistence,
        certificate=Certificate(expires_at=expires),
        now=now + 20 * DAY,
    )
    assert result.archive_at == expires
    items = by_sk(persistence, "enr-1")
    assert items["0"]["status"] == "COMPLETED"
    assert items["0"]["completed_date"] == (now + 20 * DAY).isoformat()
    assert items["certificate"]["expires_at"] == expires.isoformat()
    assert schedule(persistence, "enr-1") == {
        CERT_REMINDER: whole(expires - 30 * DAY),
        ARCHIVED: whole(expires),
    }


def test_a_certificate_expiring_within_30_days_gets_no_reminder(
    persistence: BasePersistence, now: datetime
) -> None:
    enroll_one(persistence, now)
    complete(
        "enr-1",
        persistence_layer=persistence,
        certificate=Certificate(expires_at=now + 20 * DAY),
        now=now + DAY,
    )
    assert schedule(persistence, "enr-1") == {ARCHIVED: whole(now + 20 * DAY)}


def test_a_certificate_that_never_expires_schedules_nothing(
    persistence: BasePersistence, now: datetime
) -> None:
    enroll_one(persistence, now)
    complete("enr-1", persistence_layer=persistence, certificate=Certificate(), now=now + DAY)
    assert schedule(persistence, "enr-1") == {}
    assert by_sk(persistence, "enr-1")["certificate"]["expires_at"] is None


def test_complete_is_idempotent(persistence: BasePersistence, now: datetime) -> None:
    enroll_one(persistence, now)
    certificate = Certificate(expires_at=now + 100 * DAY)
    complete("enr-1", persistence_layer=persistence, certificate=certificate, now=now + DAY)
    before = snapshot(persistence)
    complete("enr-1", persistence_layer=persistence, certificate=certificate, now=now + 2 * DAY)
    assert snapshot(persistence) == before
    with pytest.raises(TransitionNotAllowed):  # another certificate: not a retry
        complete("enr-1", persistence_layer=persistence, certificate=Certificate(), now=now)


def test_complete_claims_a_due_reminder_instead_of_dropping_it(
    persistence: BasePersistence, now: datetime
) -> None:
    enroll_one(persistence, now)
    # The no-access reminder fell due on day 3; the sweeper has not run yet.
    complete("enr-1", persistence_layer=persistence, now=now + 4 * DAY)
    recorder = Recorder()
    deliver_due(persistence_layer=persistence, handlers=recorder.handlers, now=now + 4 * DAY)
    assert recorder.delivered() == [("enr-1", NO_ACCESS, whole(now + 3 * DAY))]


def test_a_certificate_must_expire_after_the_completion(
    persistence: BasePersistence, now: datetime
) -> None:
    enroll_one(persistence, now)
    before = snapshot(persistence)
    with pytest.raises(InvalidInput, match="certificate"):
        complete(
            "enr-1",
            persistence_layer=persistence,
            certificate=Certificate(expires_at=now),
            now=now,
        )
    assert snapshot(persistence) == before


# -- the transitions table: everything else is refused, writing nothing ------------------------


def reach(store: BasePersistence, now: datetime, wanted: EnrollmentStatus) -> datetime:
    """Bring enr-1 to ``wanted`` through the lifecycle itself; the time it is there."""
    enroll_one(store, now, access_period=40)
    nothing: dict[LifecycleEvent, Any] = {}
    if wanted is EnrollmentStatus.IN_PROGRESS:
        record_access("enr-1", persistence_layer=store, now=now + DAY)
    elif wanted is EnrollmentStatus.COMPLETED:
        complete(
            "enr-1",
            persistence_layer=store,
            certificate=Certificate(expires_at=now + 50 * DAY),
            now=now + DAY,
        )
    elif wanted is EnrollmentStatus.CANCELED:
        cancel("enr-1", author=ADMIN, persistence_layer=store, now=now + DAY)
    elif wanted is EnrollmentStatus.EXPIRED:
        deliver_due(persistence_layer=store, handlers=nothing, now=now + 41 * DAY)
    elif wanted is EnrollmentStatus.ARCHIVED:
        complete(
            "enr-1",
            persistence_layer=store,
            certificate=Certificate(expires_at=now + 5 * DAY),
            now=now + DAY,
        )
        deliver_due(persistence_layer=store, handlers=nothing, now=now + 6 * DAY)
    assert status(store, "enr-1") == wanted.value
    return now + 42 * DAY if wanted is EnrollmentStatus.EXPIRED else now + 2 * DAY


def _record_access(store: BasePersistence, at: datetime) -> object:
    return record_access("enr-1", persistence_layer=store, now=at)


def _complete(store: BasePersistence, at: datetime) -> object:
    return complete("enr-1", persistence_layer=store, now=at)


def _cancel(store: BasePersistence, at: datetime) -> object:
    return cancel("enr-1", author=ADMIN, persistence_layer=store, now=at)


def _admin_cancel(store: BasePersistence, at: datetime) -> object:
    return cancel(
        "enr-1", author=ADMIN, persistence_layer=store, override=AdminOverride(reason="x"), now=at
    )


STEPS = {
    Step.RECORD_ACCESS: [_record_access],
    Step.COMPLETE: [_complete],
    Step.CANCEL: [_cancel, _admin_cancel],
}
REFUSED = [
    (step, call, status_)
    for step, calls in STEPS.items()
    for call in calls
    for status_ in EnrollmentStatus
    if not transitions.allowed(step, status_)
]


@pytest.mark.parametrize(
    ("step", "call", "status_"),
    REFUSED,
    ids=[f"{call.__name__}-{status_.value}" for _, call, status_ in REFUSED],
)
def test_every_step_outside_the_table_is_refused_and_writes_nothing(
    persistence: BasePersistence,
    now: datetime,
    step: Step,
    call: Any,
    status_: EnrollmentStatus,
) -> None:
    at = reach(persistence, now, status_)
    before = snapshot(persistence)
    expected = CancelNotAllowed if step is Step.CANCEL else TransitionNotAllowed
    with pytest.raises(expected):
        call(persistence, at)
    assert snapshot(persistence) == before


@pytest.mark.parametrize("from_status", [EnrollmentStatus.PENDING, EnrollmentStatus.IN_PROGRESS])
@pytest.mark.parametrize("call", [_record_access, _complete, _cancel, _admin_cancel])
def test_every_step_in_the_table_moves_as_the_table_says(
    persistence: BasePersistence, now: datetime, from_status: EnrollmentStatus, call: Any
) -> None:
    at = reach(persistence, now, from_status)
    call(persistence, at)
    step = {
        _record_access: Step.RECORD_ACCESS,
        _complete: Step.COMPLETE,
        _cancel: Step.CANCEL,
        _admin_cancel: Step.CANCEL,
    }[call]
    assert status(persistence, "enr-1") == transitions.TRANSITIONS[step][from_status].value


# -- cancel ---------------------------------------------------------------------------------------


def test_cancel_removes_an_event_scheduled_after_its_read(
    persistence: BasePersistence, now: datetime
) -> None:
    enroll_one(persistence, now)

    class LateWriter(CountingPersistence):
        """Between cancel's read and its write, a lifecycle step schedules an event."""

        def query(self, pk: str, **options: Any) -> list[dict[str, Any]]:
            items = super().query(pk, **options)
            record_access("enr-1", persistence_layer=persistence, now=now + DAY)
            return items

    cancel("enr-1", author=ADMIN, persistence_layer=LateWriter(persistence), now=now + DAY)  # type: ignore[arg-type]
    assert schedule(persistence, "enr-1") == {}  # NO_ACTIVITY_7_DAYS too
    recorder = Recorder()
    deliver_due(persistence_layer=persistence, handlers=recorder.handlers, now=now + 100 * DAY)
    assert recorder.calls == []


def test_an_administrator_cancels_without_a_policy(
    persistence: BasePersistence, now: datetime
) -> None:
    (seat,) = seed_seats(persistence, now)
    enroll_one(persistence, now, policy=None, vacancy=seat)
    record_access("enr-1", persistence_layer=persistence, now=now + DAY)
    with pytest.raises(CancelNotAllowed):
        cancel("enr-1", author=ADMIN, persistence_layer=persistence, now=now + DAY)

    override = AdminOverride(reason="duplicate purchase, ticket 4711")
    result = cancel(
        "enr-1", author=ADMIN, persistence_layer=persistence, override=override, now=now + DAY
    )

    items = by_sk(persistence, "enr-1")
    assert items["0"]["status"] == "CANCELED"
    assert items["canceled_date"]["author"] == {"id": "admin-1", "name": "Admin One"}
    assert items["canceled_date"]["admin_override"] == {"reason": "duplicate purchase, ticket 4711"}
    assert schedule(persistence, "enr-1") == {}
    assert result.returned_seat is not None  # the seat goes back to the order
    records = {
        item["sk"]: item["status"]
        for item in persistence.query("order-1", table_name=persistence.order_table_name)
        if item["sk"].startswith("generated_items#")
    }
    assert sorted(records.values()) == [SeatStatus.AVAILABLE.value, SeatStatus.ROLLBACK.value]


def test_an_administrator_cancels_after_the_window(
    persistence: BasePersistence, now: datetime
) -> None:
    enroll_one(persistence, now, policy=CancelPolicy(days=2))
    with pytest.raises(CancelNotAllowed):
        cancel("enr-1", author=ADMIN, persistence_layer=persistence, now=now + 3 * DAY)
    cancel(
        "enr-1",
        author=ADMIN,
        persistence_layer=persistence,
        override=AdminOverride(reason="refund approved"),
        now=now + 3 * DAY,
    )
    items = by_sk(persistence, "enr-1")
    assert items["0"]["status"] == "CANCELED"
    assert "cancel_policy" not in items


def test_a_policy_cancel_records_no_override(persistence: BasePersistence, now: datetime) -> None:
    enroll_one(persistence, now)
    cancel("enr-1", author=ADMIN, persistence_layer=persistence, now=now)
    assert "admin_override" not in by_sk(persistence, "enr-1")["canceled_date"]


def test_an_override_must_say_why(persistence: BasePersistence, now: datetime) -> None:
    enroll_one(persistence, now)
    with pytest.raises(InvalidInput):
        AdminOverride.from_untrusted({"reason": "  "})
    with pytest.raises(InvalidInput):
        cancel(
            "enr-1",
            author=ADMIN,
            persistence_layer=persistence,
            override="because",  # type: ignore[arg-type]
            now=now,
        )


def test_the_transitions_table_is_the_design_table() -> None:
    S = EnrollmentStatus
    assert {step: dict(moves) for step, moves in transitions.TRANSITIONS.items()} == {
        Step.ENROLL: {None: S.PENDING},
        Step.RECORD_ACCESS: {S.PENDING: S.IN_PROGRESS, S.IN_PROGRESS: S.IN_PROGRESS},
        Step.COMPLETE: {S.PENDING: S.COMPLETED, S.IN_PROGRESS: S.COMPLETED},
        Step.COURSE_EXPIRED: {S.PENDING: S.EXPIRED, S.IN_PROGRESS: S.EXPIRED},
        Step.COURSE_ARCHIVED: {S.COMPLETED: S.ARCHIVED},
        Step.CANCEL: {S.PENDING: S.CANCELED, S.IN_PROGRESS: S.CANCELED},
    }
