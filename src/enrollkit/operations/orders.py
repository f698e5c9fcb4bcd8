"""create_order(): an order with its one owning organization; and how an order that is
not the caller's is refused, for every operation that moves its seats."""

from __future__ import annotations

from datetime import datetime

from enrollkit.errors import (
    OrderNotFound,
    OrderOwnershipConflict,
    TransactionCanceled,
    TransientFailure,
)
from enrollkit.layout import order, seat
from enrollkit.layout.table import item_absent, item_exists
from enrollkit.operations._validation import require_identifier
from enrollkit.persistence.base import PersistenceLayer
from enrollkit.timing import require_aware

# A put and a claim can each lose one race (to a concurrent create_order or add_vacancies);
# after that the order's owner is settled.
_ATTEMPTS = 3


class OrderRefused(TransactionCanceled):
    """The order condition of a transaction failed: the order is missing, or another
    organization's. :func:`order_refusal` says which."""


def order_refusal(refused: TransactionCanceled, order_id: str) -> TransactionCanceled:
    """``OrderNotFound`` when the order item did not exist, else ``OrderOwnershipConflict``
    (without the item: it is another organization's)."""
    if refused.failed_item is None:
        return OrderNotFound(f"order {order_id!r} does not exist")
    return OrderOwnershipConflict(f"order {order_id!r} belongs to another organization")


def require_usable(owner: str | None, order_id: str, org_id: str) -> None:
    """Refuse, before writing, an order that another organization owns."""
    if owner is not None and owner != org_id:
        raise OrderOwnershipConflict(f"order {order_id!r} belongs to another organization")


def claim_order(
    persistence_layer: PersistenceLayer, order_id: str, org_id: str, now: datetime
) -> None:
    """Record ``org_id`` as the owner of an order (one from before owners, or already
    ``org_id``'s): else ``OrderNotFound`` / ``OrderOwnershipConflict``."""
    try:
        with persistence_layer.transact_writer() as transaction:
            transaction.update(
                key=order.order_key(order_id),
                set=order.owner_changes(org_id, now),
                cond=order.order_usable_by(org_id),
                exc_cls=OrderRefused,
                table_name=persistence_layer.order_table_name,
            )
    except OrderRefused as refused:
        raise order_refusal(refused, order_id) from None


def create_order(
    order_id: str,
    *,
    org_id: str,
    persistence_layer: PersistenceLayer,
    now: datetime | None = None,
) -> None:
    """Create the order ``order_id`` owned by organization ``org_id``: the order item
    ``<order id>``/``0`` in the orders table, which seats need to move.

    Idempotent: creating an order that ``org_id`` already owns changes nothing. An order
    written before owners were recorded (no ``org_id``) is claimed for ``org_id``, its
    other attributes kept.

    Raises:
        OrderOwnershipConflict: The order exists and belongs to another organization.
        InvalidInput: A bad id, a naive ``now``, an order id too long for its seats' keys.
    """
    now = require_aware(now)
    require_identifier("order_id", order_id)
    require_identifier("org_id", org_id)
    # Its seats' keys must fit too, or no seat could ever be added to it.
    seat.require_seat_keys_fit(org_id, order_id)
    orders = persistence_layer.order_table_name
    key = order.order_key(order_id)
    for _ in range(_ATTEMPTS):
        existing = persistence_layer.get_item(key, table_name=orders)
        if existing is not None:
            owner = order.owner_of(existing)
            require_usable(owner, order_id, org_id)
            if owner == org_id:
                return
        try:
            with persistence_layer.transact_writer() as transaction:
                if existing is None:
                    transaction.put(
                        item=order.order_item(order_id, org_id, now),
                        cond=item_absent(),
                        exc_cls=OrderRefused,
                        table_name=orders,
                    )
                else:  # an order from before owners: record the owner, keep the rest
                    transaction.update(
                        key=key,
                        set=order.owner_changes(org_id, now),
                        cond=item_exists() & order.owner_is_unset(),
                        exc_cls=OrderRefused,
                        table_name=orders,
                    )
        except OrderRefused:
            continue  # another writer settled the order first: read it again
        return
    raise TransientFailure(f"order {order_id!r} kept changing while it was created; retry")
