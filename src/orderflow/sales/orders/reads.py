"""Reading orders: one order, and lists shared by the CRM's views and a client's order list.

An order is read through its write-through entry (`ORDER`), which every write keeps current.
What a miss loads is one statement each (`OrderReads`): an order with its lines, a page of ids
with its total, the orders a page lists.

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
from orderflow.sales.orders.repository import OrderReads
from orderflow.sales.orders.schemas import order_row_dict

EMPTY_PAGE = b'{"items":[]'  # no order on the page (none at all, or an offset past them)


async def get_order(sales: Sales, order_id: int) -> bytes:
    async def load() -> tuple[int, bytes]:
        row = await OrderReads(sales.sessions).one(order_id)
        if row is None:
            raise NotFound(f"order {order_id} does not exist")
        return row["version"], dumps(order_row_dict(row))

    return await sales.cache.read(ORDER, order_id, load, ORDER_TTL)


async def orders_of_client(sales: Sales, client_id: int, page: Page) -> bytes:
    """A client's orders; 404 for an unknown client. An order names an existing client (a
    foreign key; clients are never deleted), so only a client without orders is looked up."""
    body = await read_page(sales, client_id=client_id, page=page)
    if body.startswith(EMPTY_PAGE):
        await get_client(sales, client_id)  # 404 for an unknown client (a cached read)
    return body


async def list_orders(
    sales: Sales,
    *,
    status: OrderStatus | None = None,
    client_id: int | None = None,
    created_from: datetime | None = None,
    created_to: datetime | None = None,
    page: Page,
) -> bytes:
    return await read_page(
        sales,
        status=status,
        client_id=client_id,
        created_from=created_from,
        created_to=created_to,
        page=page,
    )


async def read_page(
    sales: Sales,
    *,
    status: OrderStatus | None = None,
    client_id: int | None = None,
    created_from: datetime | None = None,
    created_to: datetime | None = None,
    page: Page,
) -> bytes:
    """`{"items": [...], "total": n}`: the orders of the page, as stored (no re-encoding). A
    cached view holds the page's ids and total (dumped ids first, as `page_of` requires)."""
    if created_from and created_to and created_from > created_to:
        raise InvalidInput("created_from is after created_to", field="created_from")
    state = status.value if status else None

    async def load_index() -> tuple[int, bytes]:
        ids, total = await OrderReads(sales.sessions).page_of_ids(
            status=state,
            client_id=client_id,
            created_from=created_from,
            created_to=created_to,
            limit=page.limit,
            offset=page.offset,
        )
        return 0, dumps({"ids": ids, "total": total})

    since, until = (t.isoformat() if t else "" for t in (created_from, created_to))
    families = view_families(state, client_id, created_from, created_to)
    if client_id:
        key: tuple[str | int, ...] = (client_id, state or "", since, until, page.limit, page.offset)
        listing = CLIENT_ORDER_LIST
    else:
        key = (state or "", since, until, page.limit, page.offset)
        listing = ORDER_LIST
    return await sales.cache.read_page(
        listing, key, families, load_index, partial(load_orders, sales)
    )


async def load_orders(sales: Sales, ids: list[int]) -> dict[int, tuple[int | None, bytes]]:
    """The orders' JSON by id, in one statement (the members of an order list)."""
    rows = {row["id"]: row for row in await OrderReads(sales.sessions).many(ids)}
    return {id_: (rows[id_]["version"], dumps(order_row_dict(rows[id_]))) for id_ in ids}


async def counts_by_status(
    sales: Sales,
    *,
    client_id: int | None = None,
    created_from: datetime | None = None,
    created_to: datetime | None = None,
) -> bytes:
    """Orders per status: of all (a cached view), or of those a client or days narrow to
    (counted each time: a seller's filter, read when a page with that filter is)."""
    narrowed = (client_id, created_from, created_to)

    async def load() -> tuple[int, bytes]:
        counts = await OrderReads(sales.sessions).count_by_status(
            client_id=client_id, created_from=created_from, created_to=created_to
        )
        every = {status.value: counts.get(status.value, 0) for status in OrderStatus}
        return 0, dumps({"counts": every, "total": sum(every.values())})

    if any(narrowed):
        return (await load())[1]
    return await sales.cache.read_view(ORDER_COUNTS, "all", [COUNTS], load, VIEW_TTL)
