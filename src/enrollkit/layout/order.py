"""The order item ``<order id>``/``0`` in the orders table: seats move only while it
exists, and ``org_id`` names the one organization that owns it.

An order written before owners were recorded has no ``org_id``: it is *unowned* until
``create_order()`` or ``add_vacancies()`` records its owner.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from enrollkit.layout.table import CREATE_DATE, UPDATE_DATE, attr, item_exists, kept_conditions, key
from enrollkit.models import KeyPair
from enrollkit.timing import iso

if TYPE_CHECKING:
    from boto3.dynamodb.conditions import ConditionBase

ORDER_SK = "0"
OWNER = "org_id"


def order_key(order_id: str) -> KeyPair:
    return key(order_id, ORDER_SK)


def is_order(sk: str) -> bool:
    return sk == ORDER_SK


def order_item(order_id: str, org_id: str, now: datetime) -> dict[str, Any]:
    return {**order_key(order_id).as_key(), OWNER: org_id, CREATE_DATE: iso(now)}


def owner_changes(org_id: str, now: datetime) -> dict[str, Any]:
    """What recording the owner of an order from before owners sets."""
    return {OWNER: org_id, UPDATE_DATE: iso(now)}


def owner_of(order: Mapping[str, Any]) -> str | None:
    """The owning organization, or ``None`` for an order from before owners."""
    value = order.get(OWNER)
    return value if isinstance(value, str) else None


def order_exists() -> ConditionBase:
    return item_exists()


@kept_conditions(maxsize=256)
def order_usable_by(org_id: str) -> ConditionBase:
    """The order exists and is ``org_id``'s, or has no owner yet. (Cached per organization:
    a boto3 condition is immutable, so one serves every seat it takes.)"""
    return item_exists() & (attr(OWNER).not_exists() | attr(OWNER).eq(org_id))


def owner_is_unset() -> ConditionBase:
    return attr(OWNER).not_exists()
