"""Seats (issue 3): add_vacancies, enroll(vacancy=), cancel() returning the seat,
and the seat ledger -- on both backends."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

import pytest

from enrollkit import (
    Author,
    CancelPolicy,
    Course,
    Enrollment,
    EnrollmentStatus,
    EnrollOutcome,
    InvalidInput,
    KeyPair,
    OrderNotFound,
    SeatStatus,
    Vacancy,
    VacancyUnavailable,
    add_vacancies,
    cancel,
    enroll,
    seat_ledger,
)
from enrollkit.errors import CancelNotAllowed
from enrollkit.persistence.base import BasePersistence
from tests.conftest import OTHER_TENANT, TENANT, make_course, make_enrollment, make_user
from tests.support.seats import (
    CrashingPersistence,
    SimulatedCrash,
    assert_seats_conserved,
    delete_order,
    seat_census,
    seed_order,
    stored_items,
)

ORG = "tenant-1"
ORDER = "order-1"
AUTHOR = Author(id="admin", name="Admin")
COURSE = make_course("course-1")
OTHER_COURSE = make_course("course-2")


def add(
    persistence: BasePersistence, now: datetime, quantity: int = 1, **overrides: object
) -> list[Vacancy]:
    arguments: dict[str, object] = {
        "org_id": ORG,
        "order_id": ORDER,
        "course": COURSE,
        "quantity": quantity,
        "persistence_layer": persistence,
        "now": now,
    }
    arguments.update(overrides)
    return add_vacancies(**arguments)  # type: ignore[arg-type]


def enroll_with(
    persistence: BasePersistence,
    now: datetime,
    seat: Vacancy,
    user_id: str = "user-1",
    course: Course = COURSE,
) -> Enrollment:
    enrollment = Enrollment(user=make_user(user_id), course=course)
    outcome = enroll(
        enrollment,
        tenant=TENANT,
        persistence_layer=persistence,
        vacancy=seat,
        cancel_policy=CancelPolicy(),
        now=now,
    )
    assert outcome is EnrollOutcome.CREATED
    return enrollment


def seat_item(persistence: BasePersistence, seat: Vacancy) -> dict[str, object] | None:
    return persistence.get_item(
        KeyPair(pk=f"vacancies#{seat.org_id}", sk=f"{seat.order_id}#{seat.slot_id}")
    )


def generated(persistence: BasePersistence, seat: Vacancy) -> dict[str, object] | None:
    return persistence.get_item(
        KeyPair(pk=seat.order_id, sk=f"generated_items#{seat.slot_id}"),
        table_name=persistence.order_table_name,
    )


@pytest.fixture
def store(persistence: BasePersistence) -> BasePersistence:
    """A backend with the order ORDER seeded."""
    seed_order(persistence, ORDER)
    return persistence


# -- add_vacancies ----------------------------------------------------------------------


def test_add_vacancies_writes_a_seat_and_an_available_record_per_seat(
    store: BasePersistence, now: datetime
) -> None:
    seats = add(store, now, 3)

    assert len(seats) == 3
    assert len({seat.slot_id for seat in seats}) == 3
    assert all(seat.org_id == ORG and seat.order_id == ORDER for seat in seats)
    for seat in seats:
        item = seat_item(store, seat)
        assert item is not None
        assert item["course"] == {"id": "course-1", "name": "Course course-1", "access_period": 90}
        assert item["create_date"] == now.isoformat()
        record = generated(store, seat)
        assert record is not None
        assert record["status"] == "AVAILABLE"
        assert record["update_date"] == now.isoformat()
    assert_seats_conserved(store, ORDER, 3)


def test_add_vacancies_returns_the_seats_the_ledger_lists(
    store: BasePersistence, now: datetime
) -> None:
    seats = add(store, now, 4)

    ledger = seat_ledger(order_id=ORDER, persistence_layer=store)
    assert sorted(ledger.available(COURSE.id), key=str) == sorted(seats, key=str)


def test_a_repeated_add_vacancies_writes_nothing_and_returns_the_same_seats(
    store: BasePersistence, now: datetime
) -> None:
    first = add(store, now, 5)
    counting = CrashingPersistence(store)

    again = add(counting, now, 5)

    assert again == first
    assert counting.committed == 0
    assert_seats_conserved(store, ORDER, 5)


def test_a_repeated_add_vacancies_does_not_refill_consumed_seats(
    store: BasePersistence, now: datetime
) -> None:
    seats = add(store, now, 2)
    enroll_with(store, now, seats[0])

    again = add(store, now, 2)

    assert again == seats
    census = assert_seats_conserved(store, ORDER, 2)
    assert len(census.available) == 1


def test_add_vacancies_with_a_larger_quantity_adds_the_difference(
    store: BasePersistence, now: datetime
) -> None:
    first = add(store, now, 3)

    second = add(store, now, 5)

    assert second[:3] == first
    assert_seats_conserved(store, ORDER, 5)


def test_add_vacancies_keeps_courses_apart(store: BasePersistence, now: datetime) -> None:
    mine = add(store, now, 2)
    theirs = add(store, now, 3, course=OTHER_COURSE)

    assert not {seat.slot_id for seat in mine} & {seat.slot_id for seat in theirs}
    ledger = seat_ledger(order_id=ORDER, persistence_layer=store)
    assert len(ledger.available(COURSE.id)) == 2
    assert len(ledger.available(OTHER_COURSE.id)) == 3
    assert_seats_conserved(store, ORDER, 5)


@pytest.mark.parametrize("quantity", [1, 49, 50, 98, 101, 148])
def test_add_vacancies_uses_ceil_n_over_49_transactions(
    store: BasePersistence, now: datetime, quantity: int
) -> None:
    counting = CrashingPersistence(store)

    seats = add(counting, now, quantity)

    assert len(seats) == quantity
    assert counting.committed == math.ceil(quantity / 49)
    assert_seats_conserved(store, ORDER, quantity)


@pytest.mark.parametrize("crash_mode", ["before", "after"])
def test_add_vacancies_retried_after_a_crash_writes_only_the_missing_seats(
    store: BasePersistence, now: datetime, crash_mode: str
) -> None:
    crashing = CrashingPersistence(store, crash_after=1, crash_mode=crash_mode)  # type: ignore[arg-type]
    with pytest.raises(SimulatedCrash):
        add(crashing, now, 120)
    written = 49 if crash_mode == "before" else 98
    assert len(seat_census(store, ORDER).available) == written

    counting = CrashingPersistence(store)
    seats = add(counting, now, 120)

    assert len(seats) == 120
    assert counting.committed == math.ceil((120 - written) / 49)
    assert_seats_conserved(store, ORDER, 120)


def test_add_vacancies_needs_the_order(persistence: BasePersistence, now: datetime) -> None:
    with pytest.raises(OrderNotFound):
        add(persistence, now, 3)

    assert stored_items(persistence) == []
    assert stored_items(persistence, persistence.order_table_name) == []


@pytest.mark.parametrize(
    "overrides",
    [
        {"quantity": 0},
        {"quantity": -1},
        {"quantity": True},
        {"quantity": 2.0},
        {"quantity": 10_001},
        {"org_id": "a#b"},
        {"order_id": ""},
        {"now": datetime(2026, 1, 1)},
        {"course": {"id": "course-1", "name": "x", "access_period": 90}},
    ],
    ids=repr,
)
def test_add_vacancies_refuses_bad_input_before_writing(
    store: BasePersistence, now: datetime, overrides: dict[str, object]
) -> None:
    arguments: dict[str, Any] = {
        "org_id": ORG,
        "order_id": ORDER,
        "course": COURSE,
        "quantity": 3,
        "persistence_layer": store,
        "now": now,
        **overrides,
    }
    with pytest.raises(InvalidInput):
        add_vacancies(**arguments)

    assert stored_items(store) == []


# -- enroll(vacancy=) -----------------------------------------------------------------------


def test_enroll_consumes_the_seat_in_its_transaction(store: BasePersistence, now: datetime) -> None:
    seat, other = add(store, now, 2)
    counting = CrashingPersistence(store)

    enrollment = enroll_with(counting, now, seat)

    assert counting.committed == 1
    assert seat_item(store, seat) is None
    record = generated(store, seat)
    assert record is not None
    assert record["status"] == "USED"
    assert record["enrollment_id"] == enrollment.id
    assert record["update_date"] == now.isoformat()
    parent = store.get_item(KeyPair(pk=enrollment.id, sk="parent_vacancy"))
    assert parent is not None
    assert parent["vacancy"] == {"id": f"vacancies#{ORG}", "sk": f"{ORDER}#{seat.slot_id}"}
    assert parent["order_id"] == ORDER
    assert parent["create_date"] == now.isoformat()
    assert seat_item(store, other) is not None
    census = assert_seats_conserved(store, ORDER, 2)
    assert census.holders == {enrollment.id: (ORG, seat.slot_id)}


def test_enroll_refuses_a_used_seat_and_writes_nothing(
    store: BasePersistence, now: datetime
) -> None:
    (seat,) = add(store, now, 1)
    first = enroll_with(store, now, seat, "user-1")
    second = make_enrollment("user-2")

    with pytest.raises(VacancyUnavailable):
        enroll(second, tenant=TENANT, persistence_layer=store, vacancy=seat, now=now)

    assert store.query(second.id) == []
    assert generated(store, seat)["enrollment_id"] == first.id  # type: ignore[index]
    assert_seats_conserved(store, ORDER, 1)


def test_enroll_refuses_a_seat_for_another_course(store: BasePersistence, now: datetime) -> None:
    (seat,) = add(store, now, 1, course=OTHER_COURSE)
    enrollment = make_enrollment("user-1", COURSE.id)

    with pytest.raises(VacancyUnavailable):
        enroll(enrollment, tenant=TENANT, persistence_layer=store, vacancy=seat, now=now)

    assert store.query(enrollment.id) == []
    assert seat_item(store, seat) is not None
    assert generated(store, seat)["status"] == "AVAILABLE"  # type: ignore[index]
    assert_seats_conserved(store, ORDER, 1)


@pytest.mark.parametrize(
    "wrong",
    [
        {"slot_id": "no-such-slot"},
        {"org_id": "other-org"},
        {"order_id": "other-order"},
    ],
    ids=repr,
)
def test_enroll_refuses_a_seat_that_does_not_exist(
    store: BasePersistence, now: datetime, wrong: dict[str, str]
) -> None:
    (seat,) = add(store, now, 1)
    seed_order(store, "other-order")
    missing = seat.model_copy(update=wrong)
    enrollment = make_enrollment()

    with pytest.raises(VacancyUnavailable):
        enroll(enrollment, tenant=TENANT, persistence_layer=store, vacancy=missing, now=now)

    assert store.query(enrollment.id) == []
    assert_seats_conserved(store, ORDER, 1)


def test_enroll_refuses_another_organizations_seat_before_writing(
    store: BasePersistence, now: datetime
) -> None:
    (seat,) = add(store, now, 1)
    enrollment = make_enrollment()
    before = sorted(stored_items(store), key=lambda item: (item["id"], item["sk"]))

    with pytest.raises(VacancyUnavailable, match="organization"):
        enroll(enrollment, tenant=OTHER_TENANT, persistence_layer=store, vacancy=seat, now=now)

    assert sorted(stored_items(store), key=lambda item: (item["id"], item["sk"])) == before
    assert_seats_conserved(store, ORDER, 1)


def test_enroll_refuses_a_seat_whose_order_is_gone(store: BasePersistence, now: datetime) -> None:
    # cancel() could never return such a seat, so enroll() must not take it.
    (seat,) = add(store, now, 1)
    delete_order(store, ORDER)
    enrollment = make_enrollment()

    with pytest.raises(OrderNotFound):
        enroll(enrollment, tenant=TENANT, persistence_layer=store, vacancy=seat, now=now)

    assert store.query(enrollment.id) == []
    assert seat_item(store, seat) is not None


def test_a_retried_enroll_takes_no_second_seat(store: BasePersistence, now: datetime) -> None:
    first_seat, second_seat = add(store, now, 2)
    enrollment = enroll_with(store, now, first_seat)

    outcome = enroll(
        enrollment, tenant=TENANT, persistence_layer=store, vacancy=second_seat, now=now
    )

    assert outcome is EnrollOutcome.ALREADY_ENROLLED
    assert seat_item(store, second_seat) is not None
    assert_seats_conserved(store, ORDER, 2)


# -- cancel() returns the seat ---------------------------------------------------------------


def test_cancel_returns_the_seat_as_a_new_slot(store: BasePersistence, now: datetime) -> None:
    (seat,) = add(store, now, 1)
    enrollment = enroll_with(store, now, seat)

    result = cancel(enrollment.id, author=AUTHOR, persistence_layer=store, now=now)

    returned = result.returned_seat
    assert returned is not None
    assert (returned.org_id, returned.order_id) == (ORG, ORDER)
    assert returned.slot_id != seat.slot_id
    item = seat_item(store, returned)
    assert item is not None
    assert item["course"] == COURSE.model_dump(mode="json")
    assert generated(store, seat)["status"] == "ROLLBACK"  # type: ignore[index]
    new_record = generated(store, returned)
    assert new_record is not None
    assert new_record["status"] == "AVAILABLE"
    assert store.get_item(KeyPair(pk=enrollment.id, sk="parent_vacancy")) is None
    census = assert_seats_conserved(store, ORDER, 1)
    assert census.holders == {}
    assert list(census.available) == [(ORG, returned.slot_id)]


def test_a_second_cancel_returns_no_second_seat(store: BasePersistence, now: datetime) -> None:
    (seat,) = add(store, now, 1)
    enrollment = enroll_with(store, now, seat)
    cancel(enrollment.id, author=AUTHOR, persistence_layer=store, now=now)

    with pytest.raises(CancelNotAllowed):
        cancel(enrollment.id, author=AUTHOR, persistence_layer=store, now=now)

    census = assert_seats_conserved(store, ORDER, 1)
    assert len(census.available) == 1


def test_a_returned_seat_can_be_used_again(store: BasePersistence, now: datetime) -> None:
    (seat,) = add(store, now, 1)
    first = enroll_with(store, now, seat, "user-1")
    returned = cancel(first.id, author=AUTHOR, persistence_layer=store, now=now).returned_seat
    assert returned is not None

    second = enroll_with(store, now, returned, "user-2")

    census = assert_seats_conserved(store, ORDER, 1)
    assert census.holders == {second.id: (ORG, returned.slot_id)}
    assert seat_ledger(order_id=ORDER, persistence_layer=store).holders() == {second.id: returned}


def test_a_returned_seat_keeps_its_course(store: BasePersistence, now: datetime) -> None:
    (seat,) = add(store, now, 1)
    first = enroll_with(store, now, seat, "user-1")
    returned = cancel(first.id, author=AUTHOR, persistence_layer=store, now=now).returned_seat
    assert returned is not None
    other = make_enrollment("user-2", OTHER_COURSE.id)

    with pytest.raises(VacancyUnavailable):
        enroll(other, tenant=TENANT, persistence_layer=store, vacancy=returned, now=now)

    assert_seats_conserved(store, ORDER, 1)


def test_cancel_without_a_seat_returns_none(store: BasePersistence, now: datetime) -> None:
    enrollment = make_enrollment()
    enroll(
        enrollment,
        tenant=TENANT,
        persistence_layer=store,
        cancel_policy=CancelPolicy(),
        now=now,
    )

    result = cancel(enrollment.id, author=AUTHOR, persistence_layer=store, now=now)

    assert result.returned_seat is None


def test_cancel_refuses_when_the_order_is_gone_and_changes_nothing(
    store: BasePersistence, now: datetime
) -> None:
    (seat,) = add(store, now, 1)
    enrollment = enroll_with(store, now, seat)
    before = sorted(stored_items(store), key=lambda item: (item["id"], item["sk"]))
    delete_order(store, ORDER)

    with pytest.raises(OrderNotFound):
        cancel(enrollment.id, author=AUTHOR, persistence_layer=store, now=now)

    after = sorted(stored_items(store), key=lambda item: (item["id"], item["sk"]))
    assert after == before
    root = store.get_item(KeyPair(pk=enrollment.id, sk="0"))
    assert root is not None and root["status"] == EnrollmentStatus.PENDING.value
    assert_seats_conserved(store, ORDER, 1)


# -- the ledger -----------------------------------------------------------------------------


def test_seat_ledger_reports_available_seats_per_course_and_holders(
    store: BasePersistence, now: datetime
) -> None:
    mine = add(store, now, 3)
    theirs = add(store, now, 2, course=OTHER_COURSE)
    held = enroll_with(store, now, mine[0], "user-1")
    canceled = enroll_with(store, now, theirs[0], "user-2", OTHER_COURSE)
    returned = cancel(canceled.id, author=AUTHOR, persistence_layer=store, now=now).returned_seat
    assert returned is not None

    ledger = seat_ledger(order_id=ORDER, persistence_layer=store)

    assert ledger.order_id == ORDER
    assert sorted(ledger.available(COURSE.id), key=str) == sorted(mine[1:], key=str)
    assert sorted(ledger.available(OTHER_COURSE.id), key=str) == sorted(
        [theirs[1], returned], key=str
    )
    assert len(ledger.available()) == 4
    assert ledger.holders() == {held.id: mine[0]}
    counts = ledger.counts()
    assert counts[COURSE.id] == {SeatStatus.AVAILABLE: 2, SeatStatus.USED: 1}
    assert counts[OTHER_COURSE.id] == {SeatStatus.AVAILABLE: 2, SeatStatus.ROLLBACK: 1}
    rollback = [record for record in ledger.seats if record.status is SeatStatus.ROLLBACK]
    assert [(record.vacancy, record.enrollment_id) for record in rollback] == [
        (theirs[0], canceled.id)
    ]


def test_seat_ledger_needs_the_order(persistence: BasePersistence) -> None:
    with pytest.raises(OrderNotFound):
        seat_ledger(order_id="missing", persistence_layer=persistence)


def test_seat_ledger_of_an_order_without_seats_is_empty(store: BasePersistence) -> None:
    ledger = seat_ledger(order_id=ORDER, persistence_layer=store)

    assert ledger.seats == ()
    assert ledger.available() == []
    assert ledger.holders() == {}


# -- issue 8 defect 5: a seat keeps the terms it was bought with ----------------------------


def test_a_seat_is_not_spent_on_the_same_course_id_with_other_terms(
    store: BasePersistence, now: datetime
) -> None:
    thirty_days = make_course("course-1", access_period=30)
    (seat,) = add(store, now, 1, course=thirty_days)
    century = make_course("course-1", access_period=36_500)
    before = stored_items(store), stored_items(store, store.order_table_name)

    with pytest.raises(VacancyUnavailable):
        enroll(
            Enrollment(user=make_user("user-1"), course=century),
            tenant=TENANT,
            persistence_layer=store,
            vacancy=seat,
            now=now,
        )

    assert (stored_items(store), stored_items(store, store.order_table_name)) == before


def test_a_renamed_course_still_spends_its_seat_and_cancel_returns_the_same_terms(
    store: BasePersistence, now: datetime
) -> None:
    bought = make_course("course-1", access_period=30)
    (seat,) = add(store, now, 1, course=bought)
    renamed = bought.model_copy(update={"name": "Course one, renamed"})
    first = enroll_with(store, now, seat, "user-1", course=renamed)

    returned = cancel(first.id, author=AUTHOR, persistence_layer=store, now=now).returned_seat

    assert returned is not None
    item = seat_item(store, returned)
    assert item is not None
    terms = item["course"]
    assert isinstance(terms, dict)
    assert (terms["id"], terms["access_period"]) == (bought.id, bought.access_period)
