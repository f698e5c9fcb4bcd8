"""Orders with an owner (issue 8 defect 1, issue 9's create_order), seat records of the
original layout (defect 6), and key sizes (defect 10), on every backend."""

from __future__ import annotations

from datetime import datetime

import pytest

from enrollkit import (
    BulkOutcome,
    CancelPolicy,
    Enrollment,
    InvalidInput,
    KeyPair,
    OrderNotFound,
    OrderOwnershipConflict,
    SeatStatus,
    Vacancy,
    add_vacancies,
    create_order,
    enroll,
    enroll_many,
    seat_ledger,
)
from enrollkit.persistence.base import BasePersistence
from tests.conftest import OTHER_TENANT, TENANT, make_course, make_user
from tests.support.invariants import snapshot

COURSE = make_course("course-1")
ORDER = "order-1"
# 256 characters of 4 bytes each: a valid id, but 1,024 bytes.
WIDE_ID = "\U0001d11e" * 256


def order_item(persistence: BasePersistence, order_id: str = ORDER) -> dict[str, object] | None:
    return persistence.get_item(
        KeyPair(pk=order_id, sk="0"), table_name=persistence.order_table_name
    )


def add(
    persistence: BasePersistence, now: datetime, org_id: str, quantity: int = 1
) -> list[Vacancy]:
    return add_vacancies(
        org_id=org_id,
        order_id=ORDER,
        course=COURSE,
        quantity=quantity,
        persistence_layer=persistence,
        now=now,
    )


# -- create_order --------------------------------------------------------------------------------


def test_create_order_records_its_owner_and_seats_can_be_added(
    persistence: BasePersistence, now: datetime
) -> None:
    create_order(ORDER, org_id=TENANT.id, persistence_layer=persistence, now=now)

    item = order_item(persistence)
    assert item is not None and item["org_id"] == TENANT.id
    assert len(add(persistence, now, TENANT.id, 2)) == 2


def test_create_order_again_for_its_owner_changes_nothing(
    persistence: BasePersistence, now: datetime
) -> None:
    create_order(ORDER, org_id=TENANT.id, persistence_layer=persistence, now=now)
    before = snapshot(persistence)

    create_order(ORDER, org_id=TENANT.id, persistence_layer=persistence, now=now)

    assert snapshot(persistence) == before


def test_create_order_of_another_organizations_order_is_refused(
    persistence: BasePersistence, now: datetime
) -> None:
    create_order(ORDER, org_id=TENANT.id, persistence_layer=persistence, now=now)
    before = snapshot(persistence)

    with pytest.raises(OrderOwnershipConflict):
        create_order(ORDER, org_id=OTHER_TENANT.id, persistence_layer=persistence, now=now)

    assert snapshot(persistence) == before


def test_create_order_claims_an_order_from_before_owners_and_keeps_its_attributes(
    persistence: BasePersistence, now: datetime
) -> None:
    persistence.put_item(
        {"id": ORDER, "sk": "0", "total": 3, "create_date": "2025-01-01T00:00:00+00:00"},
        table_name=persistence.order_table_name,
    )

    create_order(ORDER, org_id=TENANT.id, persistence_layer=persistence, now=now)

    item = order_item(persistence)
    assert item is not None
    assert (item["org_id"], item["total"], item["create_date"]) == (
        TENANT.id,
        3,
        "2025-01-01T00:00:00+00:00",
    )


def test_create_order_refuses_an_order_id_its_seats_keys_cannot_hold(
    persistence: BasePersistence, now: datetime
) -> None:
    with pytest.raises(InvalidInput, match="sort key"):
        create_order(WIDE_ID, org_id=TENANT.id, persistence_layer=persistence, now=now)
    assert snapshot(persistence) == {persistence.table_name: {}, persistence.order_table_name: {}}


def test_create_order_refuses_bad_ids(persistence: BasePersistence, now: datetime) -> None:
    for order_id, org_id in (("a#b", TENANT.id), (ORDER, ""), (ORDER, 7)):
        with pytest.raises(InvalidInput):
            create_order(order_id, org_id=org_id, persistence_layer=persistence, now=now)  # type: ignore[arg-type]


# -- ownership -------------------------------------------------------------------------------------


def test_add_vacancies_claims_an_order_from_before_owners(
    persistence: BasePersistence, now: datetime
) -> None:
    persistence.put_item({"id": ORDER, "sk": "0"}, table_name=persistence.order_table_name)

    add(persistence, now, TENANT.id)

    item = order_item(persistence)
    assert item is not None and item["org_id"] == TENANT.id
    before = snapshot(persistence)
    with pytest.raises(OrderOwnershipConflict):
        add(persistence, now, OTHER_TENANT.id)
    assert snapshot(persistence) == before


def test_enroll_refuses_a_seat_of_an_order_another_organization_owns(
    persistence: BasePersistence, now: datetime
) -> None:
    """A seat of tenant-2 left in an order that tenant-1 has since been given."""
    persistence.put_item({"id": ORDER, "sk": "0"}, table_name=persistence.order_table_name)
    (seat,) = add(persistence, now, OTHER_TENANT.id)
    persistence.put_item({"id": ORDER, "sk": "0"}, table_name=persistence.order_table_name)
    create_order(ORDER, org_id=TENANT.id, persistence_layer=persistence, now=now)
    before = snapshot(persistence)

    with pytest.raises(OrderOwnershipConflict) as raised:
        enroll(
            Enrollment(user=make_user("bob"), course=COURSE),
            tenant=OTHER_TENANT,
            persistence_layer=persistence,
            vacancy=seat,
            now=now,
        )

    assert snapshot(persistence) == before
    assert all(reason.item is None for reason in raised.value.reasons)


def test_enroll_many_never_answers_with_another_tenants_enrollment(
    persistence: BasePersistence, now: datetime
) -> None:
    """An order from before owners with seats of both organizations, the same user listed
    by each tenant: each gets an enrollment of its own."""
    orders = persistence.order_table_name
    for tenant in (TENANT, OTHER_TENANT):
        persistence.put_item({"id": ORDER, "sk": "0"}, table_name=orders)
        add(persistence, now, tenant.id)
    persistence.put_item({"id": ORDER, "sk": "0"}, table_name=orders)
    ana = make_user("ana")

    first = enroll_many(
        [ana], course=COURSE, tenant=TENANT, order_id=ORDER, persistence_layer=persistence, now=now
    )
    second = enroll_many(
        [ana],
        course=COURSE,
        tenant=OTHER_TENANT,
        order_id=ORDER,
        persistence_layer=persistence,
        now=now,
    )

    assert [r.outcome for r in first] == [BulkOutcome.ENROLLED]
    assert [r.outcome for r in second] == [BulkOutcome.ENROLLED]
    assert first[0].enrollment_id != second[0].enrollment_id
    root = persistence.get_item(KeyPair(pk=str(second[0].enrollment_id), sk="0"))
    assert root is not None and root["metadata__tenant_id"] == OTHER_TENANT.id


def test_enroll_many_refuses_an_order_of_another_organization(
    persistence: BasePersistence, now: datetime
) -> None:
    create_order(ORDER, org_id=TENANT.id, persistence_layer=persistence, now=now)
    add(persistence, now, TENANT.id, 2)
    before = snapshot(persistence)
    with pytest.raises(OrderOwnershipConflict):
        enroll_many(
            [make_user("bob")],
            course=COURSE,
            tenant=OTHER_TENANT,
            order_id=ORDER,
            persistence_layer=persistence,
            now=now,
        )
    assert snapshot(persistence) == before


def test_seat_ledger_lists_only_the_owners_seats(
    persistence: BasePersistence, now: datetime
) -> None:
    persistence.put_item({"id": ORDER, "sk": "0"}, table_name=persistence.order_table_name)
    add(persistence, now, OTHER_TENANT.id)
    persistence.put_item({"id": ORDER, "sk": "0"}, table_name=persistence.order_table_name)
    create_order(ORDER, org_id=TENANT.id, persistence_layer=persistence, now=now)
    add(persistence, now, TENANT.id, 2)

    ledger = seat_ledger(order_id=ORDER, persistence_layer=persistence)

    assert {record.vacancy.org_id for record in ledger.seats} == {TENANT.id}
    assert len(ledger.available(COURSE.id)) == 2
    with pytest.raises(OrderOwnershipConflict):
        seat_ledger(order_id=ORDER, persistence_layer=persistence, org_id=OTHER_TENANT.id)


# -- records of the original layout (defect 6) --------------------------------------------------


def legacy_records(persistence: BasePersistence, now: datetime, *, owner: str | None) -> Vacancy:
    """An order whose seat records are in the original layout (no org_id, no course_id):
    one AVAILABLE (its seat item present), one USED, one ROLLBACK. Returns the free seat."""
    orders = persistence.order_table_name
    order: dict[str, object] = {"id": ORDER, "sk": "0"}
    if owner is not None:
        order["org_id"] = owner
    persistence.put_item(order, table_name=orders)
    free = Vacancy(org_id=TENANT.id, order_id=ORDER, slot_id="free")
    persistence.put_item(
        {
            "id": f"vacancies#{TENANT.id}",
            "sk": f"{ORDER}#free",
            "course": COURSE.model_dump(mode="json"),
            "create_date": now.isoformat(),
        }
    )
    for slot, status in (("free", "AVAILABLE"), ("used", "USED"), ("back", "ROLLBACK")):
        persistence.put_item(
            {"id": ORDER, "sk": f"generated_items#{slot}", "status": status, "update_date": "x"},
            table_name=orders,
        )
    return free


def test_seat_ledger_reads_records_of_the_original_layout(
    persistence: BasePersistence, now: datetime
) -> None:
    free = legacy_records(persistence, now, owner=TENANT.id)

    ledger = seat_ledger(order_id=ORDER, persistence_layer=persistence, org_id=TENANT.id)

    assert ledger.available(COURSE.id) == [free]
    assert {(r.vacancy.slot_id, r.status, r.course_id) for r in ledger.seats} == {
        ("free", SeatStatus.AVAILABLE, COURSE.id),
        ("used", SeatStatus.USED, None),
        ("back", SeatStatus.ROLLBACK, None),
    }


def test_seat_ledger_of_an_order_without_owner_sets_unattributed_records_apart(
    persistence: BasePersistence, now: datetime
) -> None:
    legacy_records(persistence, now, owner=None)

    ledger = seat_ledger(order_id=ORDER, persistence_layer=persistence)

    assert ledger.seats == ()
    assert sorted(ledger.unattributed) == ["back", "free", "used"]


def test_enroll_many_spends_a_seat_of_the_original_layout(
    persistence: BasePersistence, now: datetime
) -> None:
    free = legacy_records(persistence, now, owner=TENANT.id)

    results = enroll_many(
        [make_user("ana"), make_user("bob")],
        course=COURSE,
        tenant=TENANT,
        order_id=ORDER,
        persistence_layer=persistence,
        now=now,
    )

    assert [r.outcome for r in results] == [BulkOutcome.ENROLLED, BulkOutcome.NO_SEAT]
    parent = persistence.get_item(KeyPair(pk=str(results[0].enrollment_id), sk="parent_vacancy"))
    assert parent is not None and parent["vacancy"]["sk"] == f"{ORDER}#{free.slot_id}"


# -- key sizes (defect 10) ------------------------------------------------------------------


def test_add_vacancies_refuses_an_order_id_too_wide_for_seat_keys(
    persistence: BasePersistence, now: datetime
) -> None:
    persistence.put_item({"id": WIDE_ID, "sk": "0"}, table_name=persistence.order_table_name)
    before = snapshot(persistence)
    with pytest.raises(InvalidInput, match="1024 bytes"):
        add_vacancies(
            org_id=TENANT.id,
            order_id=WIDE_ID,
            course=COURSE,
            quantity=1,
            persistence_layer=persistence,
            now=now,
        )
    assert snapshot(persistence) == before


def test_enroll_refuses_a_seat_whose_keys_are_too_wide_before_writing(
    persistence: BasePersistence, now: datetime
) -> None:
    create_order(ORDER, org_id=TENANT.id, persistence_layer=persistence, now=now)
    before = snapshot(persistence)
    with pytest.raises(InvalidInput, match="bytes"):
        enroll(
            Enrollment(user=make_user("ana"), course=COURSE),
            tenant=TENANT,
            persistence_layer=persistence,
            vacancy=Vacancy(org_id=TENANT.id, order_id=ORDER, slot_id=WIDE_ID),
            cancel_policy=CancelPolicy(),
            now=now,
        )
    assert snapshot(persistence) == before


def test_a_missing_order_is_still_order_not_found(
    persistence: BasePersistence, now: datetime
) -> None:
    with pytest.raises(OrderNotFound):
        add(persistence, now, TENANT.id)
    with pytest.raises(OrderNotFound):
        seat_ledger(order_id=ORDER, persistence_layer=persistence)


def test_add_vacancies_claims_an_order_without_owner_even_when_its_seats_exist(
    persistence: BasePersistence, now: datetime
) -> None:
    """The seats were added before the order item was written again without owner (as by
    a service's own tool): a repeated add_vacancies writes no seat, but still claims it."""
    persistence.put_item({"id": ORDER, "sk": "0"}, table_name=persistence.order_table_name)
    add(persistence, now, TENANT.id, 2)
    persistence.put_item({"id": ORDER, "sk": "0"}, table_name=persistence.order_table_name)

    add(persistence, now, TENANT.id, 2)

    item = order_item(persistence)
    assert item is not None and item["org_id"] == TENANT.id
    with pytest.raises(OrderOwnershipConflict):
        add(persistence, now, OTHER_TENANT.id)
