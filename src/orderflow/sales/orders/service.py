"""Orders: placement (idempotent), reads, the seller's transitions and production events.

Every write commits, then writes the order's new JSON through to its cache entry (or, in
cache-aside mode, leaves a tombstone) and bumps the view families it moved, then answers:
whoever reads after the response sees the write (rule 4).
"""

import hashlib
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from orderflow.data.shopdb import Order, OrderLine
from orderflow.kit.db import transaction
from orderflow.kit.errors import Conflict, InvalidInput, NotFound
from orderflow.kit.http import dumps
from orderflow.kit.pagination import Page
from orderflow.sales.caching import ORDER, ORDER_TTL, created_families, moved_families
from orderflow.sales.catalogue.repository import ItemRepository
from orderflow.sales.clients.repository import ClientRepository
from orderflow.sales.clients.service import get_client
from orderflow.sales.context import Sales
from orderflow.sales.orders.lifecycle import ACTIONS, OrderStatus, statuses_before
from orderflow.sales.orders.repository import OrderRepository
from orderflow.sales.orders.schemas import OrderIn, line_dict, order_dict
from orderflow.sales.orders.views import list_orders


def request_hash(data: OrderIn) -> str:
    return hashlib.sha256(data.model_dump_json().encode()).hexdigest()


async def place_order(sales: Sales, data: OrderIn, key: str | None) -> tuple[bytes, bool]:
    """Create the order, or return the one created before under the same key.

    Returns the order's JSON and whether it was created now. Concurrent repeats of one key
    serialise on the key's unique index: the loser's insert waits, finds the row, returns it.
    """
    digest = request_hash(data)
    async with transaction(sales.sessions) as session:
        repo = OrderRepository(session)
        if key and (earlier := await repo.by_idempotency_key(key)) is not None:
            return await _replay(repo, earlier, digest), False
        prices = await _validate(session, data)
        lines = [(line.item_id, line.quantity, prices[line.item_id]) for line in data.lines]
        total = sum(quantity * price for _, quantity, price in lines)
        values = {"client_id": data.client_id, "total": total, "request_hash": digest}
        order = await repo.insert(**values, idempotency_key=key)
        if order is None:  # a concurrent request with the same key won the insert
            assert key is not None
            earlier = await repo.by_idempotency_key(key)
            assert earlier is not None
            return await _replay(repo, earlier, digest), False
        rows = [
            OrderLine(order_id=order.id, line_no=n, item_id=i, quantity=q, unit_price=p)
            for n, (i, q, p) in enumerate(lines, start=1)
        ]
        await repo.add_lines(rows)
    body = await written(sales, order_dict(order, rows), created_families(order.client_id))
    return body, True


async def _validate(session: AsyncSession, data: OrderIn) -> dict[int, int]:
    if not await ClientRepository(session).exists(data.client_id):
        raise InvalidInput(f"client {data.client_id} does not exist", field="client_id")
    prices = await ItemRepository(session).prices(line.item_id for line in data.lines)
    for n, line in enumerate(data.lines):
        if line.item_id not in prices:
            raise InvalidInput(f"item {line.item_id} does not exist", field=f"lines.{n}.item_id")
    return prices


async def _replay(repo: OrderRepository, order: Order, digest: str) -> bytes:
    if order.request_hash != digest:
        raise InvalidInput(
            "this Idempotency-Key was used with a different body", field="Idempotency-Key"
        )
    lines = await repo.lines_of([order.id])
    return dumps(order_dict(order, lines[order.id]))


async def get_order(sales: Sales, order_id: int) -> bytes:
    async def load() -> tuple[int, bytes]:
        async with transaction(sales.sessions) as session:
            repo = OrderRepository(session)
            order = await repo.get(order_id)
            if order is None:
                raise NotFound(f"order {order_id} does not exist")
            lines = await repo.lines_of([order_id])
        return order.version, dumps(order_dict(order, lines[order_id]))

    return await sales.cache.read(ORDER, order_id, load, ORDER_TTL)


async def orders_of_client(sales: Sales, client_id: int, page: Page) -> bytes:
    await get_client(sales, client_id)  # 404 for an unknown client (a cached read)
    return await list_orders(sales, client_id=client_id, page=page)


async def written(sales: Sales, order: dict[str, Any], families: list[str]) -> bytes:
    """After the commit, before the response: the entry, then the views."""
    body = dumps(order)
    await sales.cache.write(ORDER, order["id"], order["version"], body, ORDER_TTL)
    await sales.cache.bump(families)
    return body


async def transition(sales: Sales, order_id: int, action: str) -> bytes:
    """Apply a seller's or client's action; 409 and no change when the status forbids it.

    Confirming and cancelling write an outbox event in the same transaction, so the MES
    learns of them whatever crashes afterwards.
    """
    allowed_from, target = ACTIONS[action]
    async with transaction(sales.sessions) as session:
        repo = OrderRepository(session)
        order = await repo.set_status(order_id, target, from_any=[s.value for s in allowed_from])
        if order is None:
            current = await repo.get(order_id)
            if current is None:
                raise NotFound(f"order {order_id} does not exist")
            raise Conflict(
                f"cannot {action} order {order_id}: it is {current.status}",
                order_status=current.status,
            )
        lines = (await repo.lines_of([order_id]))[order_id]
        if target in (OrderStatus.CONFIRMED, OrderStatus.CANCELLED):
            payload = {
                "order_id": order_id,
                "client_id": order.client_id,
                "lines": [line_dict(line) for line in lines],
            }
            await repo.add_outbox(f"order_{target.value}", order_id, payload)
    return await written(sales, order_dict(order, lines), moved_families(allowed_from, target))


async def apply_production_event(
    session: AsyncSession, event_id: str, order_id: int, status: OrderStatus
) -> dict[str, Any] | None:
    """Relay side: move an order forward to `status`, once per event id, never backwards.

    Returns the order's current state (None if there is no such order), changed or not: a
    relay that died after an earlier delivery's commit but before its cache write gets to
    write it now.
    """
    repo = OrderRepository(session)
    if await repo.mark_processed(event_id):
        await repo.set_status(order_id, status, from_any=statuses_before(status))
    order = await repo.get(order_id)
    if order is None:
        return None
    lines = await repo.lines_of([order_id])
    return order_dict(order, lines[order_id])


async def production_event_written(sales: Sales, order: dict[str, Any]) -> None:
    """Relay side, after its commit: what `written` does for the other writers."""
    status = OrderStatus(order["status"])
    await written(sales, order, moved_families(statuses_before(status), status))
