"""Reading orders: one order, and lists shared by the CRM's views and a client's order list.

An order is read through its write-through entry (`ORDER`), which every write keeps current.

A cached view holds only the ids of one page and the total, under the generations of the
families that can change which ids it lists; the bodies come from the order entries, which
every write keeps current. So a status change rewrites one entry and bumps two status
families, instead of invalidating every page the order appears on.
"""

from datetime import datetime
from functools import partial

from orderflow.kit.errors import InvalidInput, NotFound
from orderflow.kit.http import dumps
from orderflow.kit.pagination import Page
from orderflow.sales.caching import (
    CLIENT_ORDER_LIST,
    COUNTS,
    ORDER,
    ORDER_COUNTS,
    ORDER_LIST,
    ORDER_TTL,
    VIEW_TTL,
    view_families,
)
from orderflow.sales.clients.service import get_client
from orderflow.sales.context import Sales
from orderflow.sales.orders.lifecycle import OrderStatus
from orderflow.sales.orders.repository import OrderRepository
from orderflow.sales.orders.schemas import order_dict


async def get_order(sales: Sales, order_id: int) -> bytes:
    async def load() -> tuple[int, bytes]:
        async with sales.unit() as uow:
            repo = uow.repository(OrderRepository)
            order = await repo.get(order_id)
            if order is None:
                raise NotFound(f"order {order_id} does not exist")
            lines = await repo.lines_of([order_id])
        return order.version, dumps(order_dict(order, lines[order_id]))

    return await sales.cache.read(ORDER, order_id, load, ORDER_TTL)


async def orders_of_client(sales: Sales, client_id: int, page: Page) -> bytes:
    await get_client(sales, client_id)  # 404 for an unknown client (a cached read)
    return await list_orders(sales, client_id=client_id, page=page)


async def list_orders(
    sales: Sales,
    *,
    status: OrderStatus | None = None,
    client_id: int | None = None,
    created_from: datetime | None = None,
    created_to: datetime | None = None,
    page: Page,
) -> bytes:
    if created_from and created_to and created_from > created_to:
        raise InvalidInput("created_from is after created_to", field="created_from")
    state = status.value if status else None

    async def load_index() -> tuple[int, bytes]:
        async with sales.unit() as uow:
            ids, total = await uow.repository(OrderRepository).search_ids(
                status=state,
                client_id=client_id,
                created_from=created_from,
                created_to=created_to,
                limit=page.limit,
                offset=page.offset,
            )
        return 0, dumps({"ids": ids, "total": total})

    since, until = (t.isoformat() if t else "" for t in (created_from, created_to))
    families = view_families(state, client_id)
    if client_id:
        key: tuple[str | int, ...] = (client_id, state or "", since, until, page.limit, page.offset)
        listing = CLIENT_ORDER_LIST
    else:
        key = (state or "", since, until, page.limit, page.offset)
        listing = ORDER_LIST
    view, bodies = await sales.cache.read_listing(
        listing, key, families, load_index, partial(load_orders, sales)
    )
    total = str(view["total"]).encode()
    return b'{"items":[' + b",".join(bodies) + b'],"total":' + total + b"}"


async def load_orders(sales: Sales, ids: list[int]) -> dict[int, tuple[int | None, bytes]]:
    """The orders' JSON by id, in one batch query (the members of an order list)."""
    async with sales.unit() as uow:
        repo = uow.repository(OrderRepository)
        orders = {o.id: o for o in await repo.many(ids)}
        lines = await repo.lines_of(ids)
    return {id_: (orders[id_].version, dumps(order_dict(orders[id_], lines[id_]))) for id_ in ids}


async def counts_by_status(sales: Sales) -> bytes:
    async def load() -> tuple[int, bytes]:
        async with sales.unit() as uow:
            counts = await uow.repository(OrderRepository).count_by_status()
        every = {status.value: counts.get(status.value, 0) for status in OrderStatus}
        return 0, dumps({"counts": every, "total": sum(every.values())})

    return await sales.cache.read_view(ORDER_COUNTS, "all", [COUNTS], load, VIEW_TTL)
