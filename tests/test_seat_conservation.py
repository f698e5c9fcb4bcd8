"""Seat conservation: for every order, available seats plus non-canceled enrollments
holding one of its seats equal the seats added -- after any sequence of add / enroll /
cancel (hypothesis), and under races (threads released by a barrier). Both backends."""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from enrollkit import (
    Author,
    CanceledEnrollmentId,
    CancelNotAllowed,
    CancelPolicy,
    CancelResult,
    Enrollment,
    EnrollOutcome,
    InMemoryPersistence,
    Tenant,
    Vacancy,
    VacancyUnavailable,
    add_vacancies,
    cancel,
    enroll,
    seat_ledger,
)
from enrollkit.persistence.base import BasePersistence
from tests.conftest import TENANT, make_course, make_user
from tests.support.concurrency import race, race_width
from tests.support.seats import assert_seats_conserved, seed_order

AUTHOR = Author(id="admin", name="Admin")
COURSES = {course.id: course for course in (make_course("course-a"), make_course("course-b"))}


def new_order(persistence: BasePersistence) -> str:
    order_id = f"order-{uuid.uuid4().hex[:12]}"
    seed_order(persistence, order_id)
    return order_id


def enroll_on(
    persistence: BasePersistence, now: datetime, seat: Vacancy, user_id: str, course_id: str
) -> Enrollment:
    """enroll() a new enrollment of ``user_id`` on ``seat``; raises what enroll() raises."""
    enrollment = Enrollment(user=make_user(user_id), course=COURSES[course_id])
    outcome = enroll(
        enrollment,
        tenant=Tenant(id=seat.org_id, name="Seat owner"),  # seats are the tenant's own
        persistence_layer=persistence,
        vacancy=seat,
        cancel_policy=CancelPolicy(),
        now=now,
    )
    assert outcome is EnrollOutcome.CREATED
    return enrollment


# -- property: any sequence of add / enroll / cancel ---------------------------------------------


class SeatModel:
    """What the order should hold, kept independently of enrollkit."""

    def __init__(self) -> None:
        self.added: dict[str, int] = {}  # course id -> seats added (add_vacancies is "hold n")
        self.course_of: dict[Vacancy, str] = {}  # every seat ever seen -> its course
        self.available: set[Vacancy] = set()
        self.held: dict[str, Vacancy] = {}  # enrollment id -> seat
        self.enrollments: dict[str, Enrollment] = {}
        self.canceled: set[str] = set()

    @property
    def seats_added(self) -> int:
        return sum(self.added.values())


def test_seats_are_conserved_by_any_sequence_of_operations(
    persistence: BasePersistence, now: datetime
) -> None:
    embedded = isinstance(persistence, InMemoryPersistence)

    @settings(
        max_examples=100 if embedded else 10,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(data=st.data())
    def check(data: st.DataObject) -> None:
        # A fresh store per example on the embedded backend; a fresh order on moto.
        store = InMemoryPersistence() if embedded else persistence
        org_id = f"org-{uuid.uuid4().hex[:8]}"
        order_id = new_order(store)
        model = SeatModel()
        steps = data.draw(
            st.lists(st.sampled_from(["add", "enroll", "cancel", "retry"]), max_size=12),
            label="steps",
        )
        for step in steps:
            if step == "add":
                run_add(data, store, now, org_id, order_id, model)
            elif step == "enroll":
                run_enroll(data, store, now, org_id, order_id, model)
            elif step == "cancel" and model.enrollments:
                run_cancel(data, store, now, model)
            elif step == "retry" and model.enrollments:
                run_retry(data, store, now, org_id, order_id, model)
            census = assert_seats_conserved(store, order_id, model.seats_added)
            assert {
                Vacancy(org_id=org, order_id=order_id, slot_id=slot)
                for org, slot in census.available
            } == model.available
            assert {eid: slot for eid, (_, slot) in census.holders.items()} == {
                eid: seat.slot_id for eid, seat in model.held.items()
            }

    check()


def run_add(
    data: st.DataObject,
    store: BasePersistence,
    now: datetime,
    org_id: str,
    order_id: str,
    model: SeatModel,
) -> None:
    course_id = data.draw(st.sampled_from(sorted(COURSES)), label="add course")
    quantity = data.draw(st.integers(1, 5), label="quantity")
    seats = add_vacancies(
        org_id=org_id,
        order_id=order_id,
        course=COURSES[course_id],
        quantity=quantity,
        persistence_layer=store,
        now=now,
    )
    assert len(seats) == quantity
    new = [seat for seat in seats if seat not in model.course_of]
    assert len(new) == max(0, quantity - model.added.get(course_id, 0))
    model.added[course_id] = max(model.added.get(course_id, 0), quantity)
    for seat in new:
        model.course_of[seat] = course_id
        model.available.add(seat)


def run_enroll(
    data: st.DataObject,
    store: BasePersistence,
    now: datetime,
    org_id: str,
    order_id: str,
    model: SeatModel,
) -> None:
    bogus = Vacancy(org_id=org_id, order_id=order_id, slot_id="no-such-slot")
    seat = data.draw(st.sampled_from([bogus, *model.course_of]), label="seat")
    course_id = data.draw(st.sampled_from(sorted(COURSES)), label="enroll course")
    user_id = f"user-{len(model.enrollments) + 1}"
    fits = seat in model.available and model.course_of.get(seat) == course_id
    if not fits:
        with pytest.raises(VacancyUnavailable):
            enroll_on(store, now, seat, user_id, course_id)
        return
    enrollment = enroll_on(store, now, seat, user_id, course_id)
    model.available.remove(seat)
    model.held[enrollment.id] = seat
    model.enrollments[enrollment.id] = enrollment


def run_cancel(
    data: st.DataObject, store: BasePersistence, now: datetime, model: SeatModel
) -> None:
    enrollment_id = data.draw(st.sampled_from(sorted(model.enrollments)), label="cancel")
    if enrollment_id in model.canceled:
        with pytest.raises(CancelNotAllowed):
            cancel(enrollment_id, author=AUTHOR, persistence_layer=store, now=now)
        return
    returned = cancel(enrollment_id, author=AUTHOR, persistence_layer=store, now=now).returned_seat
    assert returned is not None
    assert returned not in model.course_of
    old = model.held.pop(enrollment_id)
    model.course_of[returned] = model.course_of[old]
    model.available.add(returned)
    model.canceled.add(enrollment_id)


def run_retry(
    data: st.DataObject,
    store: BasePersistence,
    now: datetime,
    org_id: str,
    order_id: str,
    model: SeatModel,
) -> None:
    """enroll() an existing enrollment again, even on another seat: no seat moves (a
    canceled one's id is spent: refused)."""
    enrollment_id = data.draw(st.sampled_from(sorted(model.enrollments)), label="retry")
    bogus = Vacancy(org_id=org_id, order_id=order_id, slot_id="no-such-slot")
    seat = data.draw(st.sampled_from([bogus, *model.course_of]), label="retry seat")

    def retry() -> EnrollOutcome:
        return enroll(
            model.enrollments[enrollment_id],
            tenant=Tenant(id=org_id, name="Seat owner"),
            persistence_layer=store,
            vacancy=seat,
            cancel_policy=CancelPolicy(),
            now=now,
        )

    if enrollment_id in model.canceled:
        with pytest.raises(CanceledEnrollmentId):
            retry()
    else:
        assert retry() is EnrollOutcome.ALREADY_ENROLLED


# -- races ------------------------------------------------------------------------------------


def test_racing_enrolls_on_fewer_seats_have_exactly_one_winner_per_seat(
    persistence: BasePersistence, now: datetime
) -> None:
    width = race_width(persistence)
    order_id = new_order(persistence)
    seats = add_vacancies(
        org_id="tenant-1",
        order_id=order_id,
        course=COURSES["course-a"],
        quantity=width // 4,
        persistence_layer=persistence,
        now=now,
    )

    enrollments = [
        Enrollment(user=make_user(f"user-{i}"), course=COURSES["course-a"]) for i in range(width)
    ]

    results = race(
        width,
        lambda i: enroll(
            enrollments[i],
            tenant=TENANT,
            persistence_layer=persistence,
            vacancy=seats[i % len(seats)],
            now=now,
        ),
    )

    winners = {
        enrollments[i].id for i, result in enumerate(results) if result is EnrollOutcome.CREATED
    }
    losers = [result for result in results if result is not EnrollOutcome.CREATED]
    assert len(winners) == len(seats)
    assert all(isinstance(loser, VacancyUnavailable) for loser in losers), losers
    census = assert_seats_conserved(persistence, order_id, len(seats))
    assert census.available == {}
    assert set(census.holders) == winners
    assert sorted(slot for _, slot in census.holders.values()) == sorted(
        seat.slot_id for seat in seats
    )
    for enrollment in enrollments:
        written = persistence.query(enrollment.id)
        assert bool(written) == (enrollment.id in winners)


def test_racing_cancels_of_one_enrollment_return_its_seat_once(
    persistence: BasePersistence, now: datetime
) -> None:
    width = race_width(persistence)
    order_id = new_order(persistence)
    (seat,) = add_vacancies(
        org_id="tenant-1",
        order_id=order_id,
        course=COURSES["course-a"],
        quantity=1,
        persistence_layer=persistence,
        now=now,
    )
    enrollment = enroll_on(persistence, now, seat, "user-1", "course-a")

    results = race(
        width,
        lambda _: cancel(enrollment.id, author=AUTHOR, persistence_layer=persistence, now=now),
    )

    done = [result for result in results if isinstance(result, CancelResult)]
    refused = [result for result in results if not isinstance(result, CancelResult)]
    assert len(done) == 1
    assert all(isinstance(error, CancelNotAllowed) for error in refused), refused
    returned = done[0].returned_seat
    assert returned is not None
    census = assert_seats_conserved(persistence, order_id, 1)
    assert list(census.available) == [("tenant-1", returned.slot_id)]
    assert census.holders == {}


def test_racing_add_vacancies_add_the_seats_once(
    persistence: BasePersistence, now: datetime
) -> None:
    width = race_width(persistence)
    order_id = new_order(persistence)
    quantity = 60  # two transactions each: the racers collide batch by batch

    results = race(
        width,
        lambda _: add_vacancies(
            org_id="tenant-1",
            order_id=order_id,
            course=COURSES["course-a"],
            quantity=quantity,
            persistence_layer=persistence,
            now=now,
        ),
    )

    assert all(isinstance(result, list) for result in results), results
    assert all(result == results[0] for result in results)
    assert len(results[0]) == quantity  # type: ignore[arg-type]
    assert_seats_conserved(persistence, order_id, quantity)


def test_racing_enrolls_and_cancels_conserve_seats(
    persistence: BasePersistence, now: datetime
) -> None:
    width = race_width(persistence)
    order_id = new_order(persistence)
    seats = add_vacancies(
        org_id="tenant-1",
        order_id=order_id,
        course=COURSES["course-a"],
        quantity=width // 4,
        persistence_layer=persistence,
        now=now,
    )
    holders = [
        enroll_on(persistence, now, seat, f"holder-{i}", "course-a") for i, seat in enumerate(seats)
    ]

    def act(index: int) -> str:
        if index % 2 == 0:  # cancel one of the holders (each is raced by several threads)
            holder = holders[(index // 2) % len(holders)]
            try:
                cancel(holder.id, author=AUTHOR, persistence_layer=persistence, now=now)
            except CancelNotAllowed:
                return "cancel refused"
            return "canceled"
        for _ in range(10):  # enroll a newcomer on whatever seat is free right now
            free = seat_ledger(order_id=order_id, persistence_layer=persistence).available()
            if not free:
                continue
            try:
                enroll_on(
                    persistence, now, free[index % len(free)], f"newcomer-{index}", "course-a"
                )
            except VacancyUnavailable:
                continue
            return "enrolled"
        return "gave up"

    results = race(width, act)

    assert not [result for result in results if isinstance(result, BaseException)], results
    tally = Counter(results)
    assert tally["canceled"] == len(holders)
    census = assert_seats_conserved(persistence, order_id, len(seats))
    assert len(census.holders) == tally["enrolled"]
    assert all(holder.id not in census.holders for holder in holders)
