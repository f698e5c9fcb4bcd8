"""Keys of the items enrollkit writes (kept for compatibility: the layout now lives in
:mod:`enrollkit.layout`, one module per stored aggregate; these names re-export it)."""

from __future__ import annotations

from enrollkit.layout import seat as _seat
from enrollkit.layout.enrollment import (
    CANCEL_POLICY_SK,
    CANCELED_DATE_SK,
    TENANT_SK,
)
from enrollkit.layout.enrollment import ROOT_SK as ENROLLMENT_SK
from enrollkit.layout.enrollment import root_key as enrollment_key
from enrollkit.layout.lock import (
    DEDUPLICATION_WINDOW_SK,
    LOCK_METADATA_SK,
    lock_hash,
    lock_item_key,
    lock_key,
)
from enrollkit.layout.order import ORDER_SK, order_key
from enrollkit.layout.schedule import PREFIX as SCHEDULES_PREFIX
from enrollkit.layout.schedule import schedule_key
from enrollkit.layout.seat import GENERATED_ITEMS_PREFIX, PARENT_VACANCY_SK, VACANCIES_PREFIX
from enrollkit.layout.seat import record_key as generated_item_key
from enrollkit.layout.table import PARTITION_KEY, SORT_KEY, TTL_ATTRIBUTE
from enrollkit.layout.table import key as enrollment_item_key
from enrollkit.models import KeyPair, Vacancy


def seat_key(org_id: str, order_id: str, slot_id: str) -> KeyPair:
    """The seat item ``vacancies#<org id>``/``<order id>#<slot id>``."""
    return _seat.seat_key(Vacancy(org_id=org_id, order_id=order_id, slot_id=slot_id))


__all__ = [
    "CANCELED_DATE_SK",
    "CANCEL_POLICY_SK",
    "DEDUPLICATION_WINDOW_SK",
    "ENROLLMENT_SK",
    "GENERATED_ITEMS_PREFIX",
    "LOCK_METADATA_SK",
    "ORDER_SK",
    "PARENT_VACANCY_SK",
    "PARTITION_KEY",
    "SCHEDULES_PREFIX",
    "SORT_KEY",
    "TENANT_SK",
    "TTL_ATTRIBUTE",
    "VACANCIES_PREFIX",
    "enrollment_item_key",
    "enrollment_key",
    "generated_item_key",
    "lock_hash",
    "lock_item_key",
    "lock_key",
    "order_key",
    "schedule_key",
    "seat_key",
]
