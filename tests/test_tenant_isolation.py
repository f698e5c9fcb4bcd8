"""Tenant isolation: an operation called for one tenant cannot read, change or cancel
another tenant's enrollment, nor spend another organization's seats. On both backends.

Every refusal is checked to change no item of either table, and to carry nothing of the
other tenant's data. What the API still allows across tenants (by the contract) is
listed in docs/reliability.md; where that is a gap, a strict xfail marks it.
"""

from __future__ import annotations

import pytest

from enrollkit import (
    Author,
    BulkOutcome,
    CancelPolicy,
    DeduplicationConflictError,
    DeduplicationWindow,
    Enrollment,
    EnrollmentIdConflict,
    EnrollmentNotFound,
    EnrollOutcome,
    KeyPair,
    OrderOwnershipConflict,
    TransactionCanceled,
    Vacancy,
    VacancyUnavailable,
    add_vacancies,
    cancel,
    enroll,
    enroll_many,
    seat_ledger,
)
from enrollkit.persistence.base import BasePersistence
from tests.conftest import NOW, OTHER_TENANT, TENANT, make_course, make_user
from tests.support.invariants import STATS, Snapshot, snapshot

AUTHOR = Author(id="admin-2", name="Other Org Admin")
COURSE = make_course("course-1", access_period=60)
# The victim's enrollment: tenant-1's, with a seat, a lock and a cancel policy.
VICTIM = Enrollment(
    id="victim",
    user=make_user("ana"),
    course=COURSE,
)
SECRET_NAME = VICTIM.user.name
SECRET_EMAIL = VICTIM.user.email


def leaks(error: BaseException) -> bool:
    """Whether an error carries any of the victim's data (beyond the id the caller gave)."""
    text = f"{error!s} {error!r}"
    if SECRET_NAME in text or SECRET_EMAIL in text:
        return True
    if isinstance(error, TransactionCanceled):
        return any(reason.item is not None for reason in error.reasons)
    return False


@pytest.fixture
def store(persistence: BasePersistence) -> BasePersistence:
    """tenant-1 owns order-1 with 3 seats and the victim enrollment (holding one of them);
    tenant-2 owns order-2 with 2 seats."""
    orders = persistence.order_table_name
    for order in ("order-1", "order-2"):
        persistence.put_item(
            {"id": order, "sk": "0", "create_date": NOW.isoformat()}, table_name=orders
        )
    seats = add_vacancies(
        org_id=TENANT.id,
        order_id="order-1",
        course=COURSE,
        quantity=3,
        persistence_layer=persistence,
        now=NOW,
    )
    add_vacancies(
        org_id=OTHER_TENANT.id,
        order_id="order-2",
        course=COURSE,
        quantity=2,
        persistence_layer=persistence,
        now=NOW,
    )
    enroll(
        VICTIM,
        tenant=TENANT,
        persistence_layer=persistence,
        vacancy=seats[0],
        deduplication_window=DeduplicationWindow(offset_days=10),
        cancel_policy=CancelPolicy(),
        now=NOW,
    )
    return persistence


def unchanged(persistence: BasePersistence, before: Snapshot) -> None:
    assert snapshot(persistence) == before
    STATS["tenant_isolation.refusals_checked"] += 1


def seats_of(persistence: BasePersistence, org_id: str) -> list[str]:
    return [item["sk"] for item in persistence.query(f"vacancies#{org_id}")]


# -- cancel -------------------------------------------------------------------------------------


def test_cancel_for_another_tenant_is_not_found_and_changes_nothing(store: BasePersistence) -> None:
    before = snapshot(store)
    with pytest.raises(EnrollmentNotFound) as other:
        cancel("victim", author=AUTHOR, persistence_layer=store, tenant_id=OTHER_TENANT.id, now=NOW)
    unchanged(store, before)
    assert not leaks(other.value)
    # Indistinguishable from an id that does not exist: no probing of other tenants' ids.
    with pytest.raises(EnrollmentNotFound) as missing:
        cancel(
            "no-such-id", author=AUTHOR, persistence_layer=store, tenant_id=OTHER_TENANT.id, now=NOW
        )
    assert str(other.value) == str(missing.value).replace("no-such-id", "victim")
    assert type(other.value) is type(missing.value)

    # The owner can.
    result = cancel("victim", author=AUTHOR, persistence_layer=store, tenant_id=TENANT.id, now=NOW)
    assert result.returned_seat is not None and result.returned_seat.org_id == TENANT.id


# -- enroll -------------------------------------------------------------------------------------


@pytest.mark.parametrize("same_user", [True, False], ids=["same-user-and-course", "other-user"])
def test_enroll_with_another_tenants_id_conflicts_and_changes_nothing(
    store: BasePersistence, same_user: bool
) -> None:
    user = VICTIM.user if same_user else make_user("bob")
    before = snapshot(store)
    with pytest.raises(EnrollmentIdConflict) as raised:
        enroll(
            Enrollment(id="victim", user=user, course=COURSE),
            tenant=OTHER_TENANT,
            persistence_layer=store,
            now=NOW,
        )
    unchanged(store, before)
    assert raised.value.failed_item is None
    assert not leaks(raised.value)


def test_a_retry_shaped_enroll_from_another_tenant_takes_no_seat(store: BasePersistence) -> None:
    """Same id, user and course as the victim, another tenant, one of its own seats: the
    id check fails first, so its seat is not spent and nothing else is written."""
    own_seat = seats_of(store, OTHER_TENANT.id)[0]
    order_id, slot_id = own_seat.split("#", 1)
    before = snapshot(store)
    with pytest.raises(EnrollmentIdConflict):
        enroll(
            VICTIM,
            tenant=OTHER_TENANT,
            persistence_layer=store,
            vacancy=Vacancy(org_id=OTHER_TENANT.id, order_id=order_id, slot_id=slot_id),
            now=NOW,
        )
    unchanged(store, before)


def test_enroll_cannot_spend_another_organizations_seat(store: BasePersistence) -> None:
    order_id, slot_id = seats_of(store, TENANT.id)[0].split("#", 1)
    before = snapshot(store)
    for vacancy, refusal in (
        # tenant-1's seat, named as tenant-1's: refused before anything is read or sent.
        (Vacancy(org_id=TENANT.id, order_id=order_id, slot_id=slot_id), VacancyUnavailable),
        # tenant-1's slot and order, named as tenant-2's: tenant-1's order.
        (
            Vacancy(org_id=OTHER_TENANT.id, order_id=order_id, slot_id=slot_id),
            OrderOwnershipConflict,
        ),
    ):
        with pytest.raises(refusal) as raised:
            enroll(
                Enrollment(user=make_user("bob"), course=COURSE),
                tenant=OTHER_TENANT,
                persistence_layer=store,
                vacancy=vacancy,
                now=NOW,
            )
        unchanged(store, before)
        assert all(reason.item is None for reason in raised.value.reasons)


def test_the_lock_is_per_user_and_course_across_tenants(store: BasePersistence) -> None:
    """By the contract the (user, course) lock is global: another tenant cannot enroll the
    same user in the same course while it is held. It learns no enrollment content."""
    before = snapshot(store)
    with pytest.raises(DeduplicationConflictError) as raised:
        enroll(
            Enrollment(user=VICTIM.user, course=COURSE),
            tenant=OTHER_TENANT,
            persistence_layer=store,
            now=NOW,
        )
    unchanged(store, before)
    assert SECRET_NAME not in repr(raised.value.reasons)


def test_a_lock_conflict_does_not_name_another_tenants_enrollment(store: BasePersistence) -> None:
    # The (user, course) lock is shared by all tenants: the conflict is reported, its
    # holder is not.
    with pytest.raises(DeduplicationConflictError) as raised:
        enroll(
            Enrollment(user=VICTIM.user, course=COURSE),
            tenant=OTHER_TENANT,
            persistence_layer=store,
            now=NOW,
        )
    assert "victim" not in repr(raised.value.reasons)
    assert raised.value.failed_item is None
    assert raised.value.reasons[raised.value.failed_index or 0].code == "ConditionalCheckFailed"


def test_a_lock_conflict_names_the_holder_to_its_own_tenant(store: BasePersistence) -> None:
    with pytest.raises(DeduplicationConflictError) as raised:
        enroll(
            Enrollment(user=VICTIM.user, course=COURSE),
            tenant=TENANT,
            persistence_layer=store,
            now=NOW,
        )
    assert raised.value.failed_item is not None
    assert raised.value.failed_item["enrollment_id"] == VICTIM.id


def test_enroll_of_another_tenant_changes_nothing_of_the_victims(store: BasePersistence) -> None:
    """A successful enroll by another tenant (other user) writes only its own items."""
    before = snapshot(store)
    outcome = enroll(
        Enrollment(id="bobs", user=make_user("bob"), course=COURSE),
        tenant=OTHER_TENANT,
        persistence_layer=store,
        now=NOW,
    )
    assert outcome is EnrollOutcome.CREATED
    after = snapshot(store)
    for table, items in before.items():
        for key, item in items.items():
            assert after[table][key] == item
    new = {key for table in after.values() for key in table} - {
        key for table in before.values() for key in table
    }
    assert new and all(pk == "bobs" for pk, _ in new), new


# -- seats ---------------------------------------------------------------------------------------


def test_enroll_many_refuses_another_organizations_order(store: BasePersistence) -> None:
    """tenant-2 enrolls from tenant-1's order: refused before anything is written."""
    before = snapshot(store)
    with pytest.raises(OrderOwnershipConflict) as raised:
        enroll_many(
            [make_user("bob"), make_user("carol")],
            course=COURSE,
            tenant=OTHER_TENANT,
            order_id="order-1",
            persistence_layer=store,
            now=NOW,
        )
    unchanged(store, before)
    assert not leaks(raised.value)


def legacy_shared_order(store: BasePersistence, order_id: str = "order-3") -> None:
    """An order written before orders had owners, holding one seat of each organization
    (each add_vacancies() claims it; the order item is then written back without owner)."""
    unowned = {"id": order_id, "sk": "0", "create_date": NOW.isoformat()}
    orders = store.order_table_name
    for org in (TENANT, OTHER_TENANT):
        store.put_item(unowned, table_name=orders)
        add_vacancies(
            org_id=org.id,
            order_id=order_id,
            course=COURSE,
            quantity=1,
            persistence_layer=store,
            now=NOW,
        )
    store.put_item(unowned, table_name=orders)


def test_enroll_many_in_a_shared_order_from_before_owners_spends_only_own_seats(
    store: BasePersistence,
) -> None:
    legacy_shared_order(store)
    tenant_1_seats = seats_of(store, TENANT.id)
    results = enroll_many(
        [make_user("bob"), make_user("carol")],
        course=COURSE,
        tenant=OTHER_TENANT,
        order_id="order-3",
        persistence_layer=store,
        now=NOW,
    )
    assert sorted(r.outcome for r in results) == [BulkOutcome.ENROLLED, BulkOutcome.NO_SEAT]
    assert seats_of(store, TENANT.id) == tenant_1_seats
    assert [s for s in seats_of(store, OTHER_TENANT.id) if s.startswith("order-3#")] == []


def test_seat_ledger_with_org_id_shows_only_that_organizations_seats(
    store: BasePersistence,
) -> None:
    """An order from before owners holding seats of both organizations: each sees only its
    own, and not which enrollment holds the other's."""
    legacy_shared_order(store)
    enroll(
        Enrollment(id="bobs", user=make_user("bob"), course=COURSE),
        tenant=TENANT,
        persistence_layer=store,
        vacancy=seat_ledger(
            order_id="order-3", persistence_layer=store, org_id=TENANT.id
        ).available()[0],
        now=NOW,
    )
    everything = seat_ledger(order_id="order-3", persistence_layer=store)
    own = seat_ledger(order_id="order-3", persistence_layer=store, org_id=OTHER_TENANT.id)
    assert {record.vacancy.org_id for record in everything.seats} == {TENANT.id, OTHER_TENANT.id}
    assert {record.vacancy.org_id for record in own.seats} == {OTHER_TENANT.id}
    assert len(own.available(COURSE.id)) == 1
    assert "bobs" in everything.holders()
    assert own.holders() == {}


def test_seat_ledger_of_another_organizations_order_is_refused(store: BasePersistence) -> None:
    with pytest.raises(OrderOwnershipConflict) as raised:
        seat_ledger(order_id="order-1", persistence_layer=store, org_id=OTHER_TENANT.id)
    assert not leaks(raised.value)
    assert VICTIM.id in seat_ledger(order_id="order-1", persistence_layer=store).holders()


def test_add_vacancies_refuses_another_organizations_order(store: BasePersistence) -> None:
    before = snapshot(store)
    with pytest.raises(OrderOwnershipConflict):
        add_vacancies(
            org_id=OTHER_TENANT.id,
            order_id="order-1",
            course=COURSE,
            quantity=4,
            persistence_layer=store,
            now=NOW,
        )
    unchanged(store, before)


def test_canceling_returns_the_seat_to_its_own_organization(store: BasePersistence) -> None:
    result = cancel("victim", author=AUTHOR, persistence_layer=store, tenant_id=TENANT.id, now=NOW)
    assert result.returned_seat is not None
    assert result.returned_seat.org_id == TENANT.id
    assert store.get_item(KeyPair(pk="victim", sk="0"))["status"] == "CANCELED"  # type: ignore[index]
    assert len(seats_of(store, TENANT.id)) == 3
    assert len(seats_of(store, OTHER_TENANT.id)) == 2
