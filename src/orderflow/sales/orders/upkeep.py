"""What the cache must do about an order write: the one after-commit step of every order writer.

The client placing, the seller or client moving it, the relay applying production's progress:
each registers this on its unit of work, so after the commit and before the answer the order's
new JSON is written through to its entry (or, in cache-aside mode, a tombstone replaces it) and
the view families it moved are bumped: whoever reads after the response sees the write (rule 4).
"""

from typing import Any

from orderflow.kit.http import dumps
from orderflow.kit.unit_of_work import UnitOfWork
from orderflow.sales.caching import ORDER, ORDER_TTL
from orderflow.sales.context import Sales


def keep_order_cached(
    uow: UnitOfWork, sales: Sales, order: dict[str, Any], families: list[str]
) -> bytes:
    """Register the order's cache upkeep on `uow`; returns the order's JSON to answer with."""
    body = dumps(order)

    async def upkeep() -> None:
        await sales.cache.write(ORDER, order["id"], order["version"], body, ORDER_TTL)
        await sales.cache.bump(families)

    uow.after_commit(upkeep)
    return body
