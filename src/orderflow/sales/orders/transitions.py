"""The seller's and the client's actions on an order, and production's progress (via the relay).

Every change is one conditional UPDATE: a status the lifecycle forbids matches no row, and the
caller gets 409 with the current status. Confirming and cancelling write an outbox event in the
same transaction, so the MES learns of them whatever crashes afterwards.
"""

from orderflow.kit import tracing
from orderflow.kit.errors import Conflict, NotFound
from orderflow.kit.unit_of_work import UnitOfWork
from orderflow.sales.caching import moved_families
from orderflow.sales.catalogue.repository import ItemRepository
from orderflow.sales.context import Sales
from orderflow.sales.orders.lifecycle import (
    ACTIONS,
    PRODUCTION_EVENTS,
    OrderStatus,
    statuses_before,
)
from orderflow.sales.orders.repository import OrderRepository
from orderflow.sales.orders.schemas import line_dict, order_dict
from orderflow.sales.orders.upkeep import keep_order_cached, repair_order

HANDED_TO_PRODUCTION = (OrderStatus.CONFIRMED, OrderStatus.CANCELLED)


async def transition(sales: Sales, order_id: int, action: str) -> bytes:
    """Apply `action` (confirm, ship, deliver, cancel); 409 and no change when it is forbidden.

    A 409 first re-applies the order's pending cache upkeep: it is often a retry whose first
    attempt committed but died before its cache writes, and the state it names must be the one
    every reader sees.
    """
    with tracing.journey(order_id, f"order {action}"):
        return await _transition(sales, order_id, action)


async def _transition(sales: Sales, order_id: int, action: str) -> bytes:
    allowed_from, target = ACTIONS[action]
    async with sales.unit() as uow:
        orders = uow.repository(OrderRepository)
        order = await orders.set_status(order_id, target, from_any=[s.value for s in allowed_from])
        if order is None:
            current = await orders.get(order_id)
            if current is None:
                raise NotFound(f"order {order_id} does not exist")
            await repair_order(uow, order_id)
            raise Conflict(
                f"cannot {action} order {order_id}: it is {current.status}",
                order_status=current.status,
            )
        lines = (await orders.lines_of([order_id]))[order_id]
        if target in HANDED_TO_PRODUCTION:  # production learns each line's item name with it
            names = await uow.repository(ItemRepository).names([ln.item_id for ln in lines])
            payload = {
                "order_id": order_id,
                "client_id": order.client_id,
                "lines": [line_dict(line) | {"name": names.get(line.item_id)} for line in lines],
            }
            await orders.add_outbox(f"order_{target.value}", order_id, payload)
        families = moved_families(allowed_from, target)
        return await keep_order_cached(uow, sales, order_dict(order, lines), families)


async def apply_production_event(
    uow: UnitOfWork, sales: Sales, event_id: str, event_type: str, order_id: int
) -> bool:
    """The relay delivers production's progress (`in_production`, `ready`): move the order
    forward to it, once per event id, never backwards, as a step of `uow` (the relay applies a
    batch in one transaction). False for an unknown event type.

    The order's current state is written through whether or not it changed now: a relay that
    died after an earlier delivery's commit but before its cache write gets to write it now.
    """
    status = PRODUCTION_EVENTS.get(event_type)
    if status is None:
        return False
    orders = uow.repository(OrderRepository)
    if await orders.mark_processed(event_id):
        await orders.set_status(order_id, status, from_any=statuses_before(status))
    order = await orders.get(order_id)
    if order is not None:
        lines = (await orders.lines_of([order_id]))[order_id]
        now = OrderStatus(order.status)
        families = moved_families(statuses_before(now), now)
        await keep_order_cached(uow, sales, order_dict(order, lines), families)
    return True
