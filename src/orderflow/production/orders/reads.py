"""Reading production orders: one order, and the boards' lists (the queue, an operator's)."""

from functools import partial

from orderflow.kit.errors import NotFound
from orderflow.kit.http import dumps
from orderflow.kit.pagination import Page
from orderflow.production.caching import (
    ENTRY_TTL,
    PRODUCTION_LIST,
    PRODUCTION_ORDER,
    view_families,
)
from orderflow.production.context import Production
from orderflow.production.orders.lean_reads import ProductionReads
from orderflow.production.orders.schemas import ProductionStatus, production_order_dict


async def get_production_order(p: Production, order_id: int) -> bytes:
    async def load() -> tuple[int, bytes]:
        row = await ProductionReads(p.sessions).one(order_id)
        if row is None:
            raise NotFound(f"production order {order_id} does not exist")
        return row["version"], dumps(production_order_dict(row))

    return await p.cache.read(PRODUCTION_ORDER, order_id, load, ENTRY_TTL)


async def search(
    p: Production, status: ProductionStatus | None, operator_id: int | None, page: Page
) -> bytes:
    """A board's list: cached ids of the page, bodies from the write-through entries."""
    state = status.value if status else None

    async def load_index() -> tuple[int, bytes]:
        ids, total = await ProductionReads(p.sessions).page_of_ids(
            status=state, operator_id=operator_id, limit=page.limit, offset=page.offset
        )
        return 0, dumps({"ids": ids, "total": total})

    key = (state or "", operator_id or 0, page.limit, page.offset)
    families = view_families(state, operator_id)
    return await p.cache.read_page(
        PRODUCTION_LIST, key, families, load_index, partial(_load_orders, p)
    )


async def _load_orders(p: Production, ids: list[int]) -> dict[int, tuple[int | None, bytes]]:
    rows = {row["id"]: row for row in await ProductionReads(p.sessions).many(ids)}
    return {id_: (rows[id_]["version"], dumps(production_order_dict(rows[id_]))) for id_ in ids}
