"""A client places an order: validated, priced, idempotent under its Idempotency-Key."""

import hashlib
from contextlib import ExitStack

from orderflow.data.shopdb import Order, OrderLine
from orderflow.kit import tracing
from orderflow.kit.errors import InvalidInput
from orderflow.kit.http import dumps
from orderflow.kit.unit_of_work import UnitOfWork
from orderflow.sales.caching import client_slot, created_families
from orderflow.sales.catalogue.repository import ItemRepository
from orderflow.sales.clients.repository import ClientRepository
from orderflow.sales.context import Sales
from orderflow.sales.orders.repository import OrderRepository
from orderflow.sales.orders.schemas import OrderIn, order_dict
from orderflow.sales.orders.upkeep import keep_order_cached, repair_order


def request_hash(data: OrderIn) -> str:
    return hashlib.sha256(data.model_dump_json().encode()).hexdigest()


async def place_order(sales: Sales, data: OrderIn, key: str | None) -> tuple[bytes, bool]:
    """Create the order, or return the one created before under the same key.

    Returns the order's JSON and whether it was created now. Concurrent repeats of one key
    serialise on the key's unique index: the loser's insert waits, finds the row, returns it.
    A replay first re-applies the order's pending cache upkeep: the first attempt's process
    may have died between its commit and its cache writes (a retry is how a client finds out).
    """
    digest = request_hash(data)
    with ExitStack() as journey:  # the order's trace, from its insert to the write-through
        return await _place(sales, data, key, digest, journey)


async def _place(
    sales: Sales, data: OrderIn, key: str | None, digest: str, journey: ExitStack
) -> tuple[bytes, bool]:
    async with sales.unit() as uow:
        orders = uow.repository(OrderRepository)
        if key and (earlier := await orders.by_idempotency_key(key)) is not None:
            return await _replay(uow, orders, earlier, digest), False
        prices = await _validate(uow, data)
        lines = [(line.item_id, line.quantity, prices[line.item_id]) for line in data.lines]
        total = sum(quantity * price for _, quantity, price in lines)
        values = {"client_id": data.client_id, "total": total, "request_hash": digest}
        order = await orders.insert(client_slot(data.client_id), **values, idempotency_key=key)
        if order is None:  # a concurrent request with the same key won the insert
            assert key is not None
            earlier = await orders.by_idempotency_key(key)
            assert earlier is not None
            return await _replay(uow, orders, earlier, digest), False
        journey.enter_context(tracing.journey(order.id, "order placed"))
        rows = [
            OrderLine(order_id=order.id, line_no=n, item_id=i, quantity=q, unit_price=p)
            for n, (i, q, p) in enumerate(lines, start=1)
        ]
        await orders.add_lines(rows)
        families = created_families(order.client_id, order.created_at)
        return await keep_order_cached(uow, sales, order_dict(order, rows), families), True


async def _validate(uow: UnitOfWork, data: OrderIn) -> dict[int, int]:
    if not await uow.repository(ClientRepository).exists(data.client_id):
        raise InvalidInput(f"client {data.client_id} does not exist", field="client_id")
    prices = await uow.repository(ItemRepository).prices(line.item_id for line in data.lines)
    for n, line in enumerate(data.lines):
        if line.item_id not in prices:
            raise InvalidInput(f"item {line.item_id} does not exist", field=f"lines.{n}.item_id")
    return prices


async def _replay(uow: UnitOfWork, orders: OrderRepository, order: Order, digest: str) -> bytes:
    if order.request_hash != digest:
        raise InvalidInput(
            "this Idempotency-Key was used with a different body", field="Idempotency-Key"
        )
    await repair_order(uow, order.id)
    lines = await orders.lines_of([order.id])
    return dumps(order_dict(order, lines[order.id]))
