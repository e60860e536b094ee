"""Lists of orders, shared by the CRM's views and a client's order list.

A cached view holds only the ids of one page and the total, under the generations of the
families that can change which ids it lists; the bodies come from the order entries, which
every write keeps current. So a status change rewrites one entry and bumps two status
families, instead of invalidating every page the order appears on.
"""

from datetime import datetime

import orjson

from orderflow.kit.db import transaction
from orderflow.kit.errors import InvalidInput
from orderflow.kit.http import dumps
from orderflow.kit.pagination import Page
from orderflow.shop.caching import (
    CLIENT_ORDER_VIEW,
    COUNTS,
    ORDER,
    ORDER_COUNTS,
    ORDER_TTL,
    ORDER_VIEW,
    VIEW_TTL,
    view_families,
)
from orderflow.shop.context import Shop
from orderflow.shop.orders.lifecycle import OrderStatus
from orderflow.shop.orders.repository import OrderRepository
from orderflow.shop.orders.schemas import order_dict


async def list_orders(
    shop: Shop,
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
        async with transaction(shop.sessions) as session:
            ids, total = await OrderRepository(session).search_ids(
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
        raw = await shop.cache.read_view(CLIENT_ORDER_VIEW, key, families, load_index, VIEW_TTL)
    else:
        key = (state or "", since, until, page.limit, page.offset)
        raw = await shop.cache.read_view(ORDER_VIEW, key, families, load_index, VIEW_TTL)
    index = orjson.loads(raw)
    bodies = await order_bodies(shop, index["ids"])
    return b'{"items":[' + b",".join(bodies) + b'],"total":' + str(index["total"]).encode() + b"}"


async def order_bodies(shop: Shop, ids: list[int]) -> list[bytes]:
    """The orders' JSON, from their cache entries where present, else in one batch query."""

    async def load(missing: list[int]) -> dict[int, tuple[int | None, bytes]]:
        wanted = [ids[i] for i in missing]
        async with transaction(shop.sessions) as session:
            repo = OrderRepository(session)
            orders = {o.id: o for o in await repo.many(wanted)}
            lines = await repo.lines_of(wanted)
        return {
            i: (orders[ids[i]].version, dumps(order_dict(orders[ids[i]], lines[ids[i]])))
            for i in missing
        }

    if not ids:
        return []
    return await shop.cache.read_many(ORDER, ids, load, ORDER_TTL)


async def counts_by_status(shop: Shop) -> bytes:
    async def load() -> tuple[int, bytes]:
        async with transaction(shop.sessions) as session:
            counts = await OrderRepository(session).count_by_status()
        every = {status.value: counts.get(status.value, 0) for status in OrderStatus}
        return 0, dumps({"counts": every, "total": sum(every.values())})

    return await shop.cache.read_view(ORDER_COUNTS, "all", [COUNTS], load, VIEW_TTL)
