"""What the cache must do about an order write: the one after-commit step of every order writer.

The client placing, the seller or client moving it, the relay applying production's progress:
each journals this on its unit of work (in the write's transaction), so after the commit and
before the answer the order's new JSON is written through to its entry (or, in cache-aside mode,
a tombstone replaces it) and the view families it moved are bumped: whoever reads after the
response sees the write (rule 4). If the writer dies first, or Redis fails it, the journal row
is repaired (rule 9, `service_cache/journal.py`).
"""

from typing import Any

from orderflow.kit.http import dumps
from orderflow.kit.unit_of_work import UnitOfWork
from orderflow.sales.caching import ORDER, ORDER_TTL
from orderflow.sales.context import Sales
from orderflow.service_cache.upkeep import Upkeep


async def keep_order_cached(
    uow: UnitOfWork, sales: Sales, order: dict[str, Any], families: list[str]
) -> bytes:
    """Journal the order's cache upkeep on `uow`; returns the order's JSON to answer with."""
    body = dumps(order)
    order_id, version = order["id"], order["version"]
    seen_epoch = sales.cache.epoch  # before the commit: a put after an epoch move tombstones

    async def apply() -> bool:
        written = await sales.cache.put(
            ORDER, order_id, version, body, ORDER_TTL, seen_epoch=seen_epoch
        )
        return await sales.cache.bump(families) and written

    await uow.keep_cached(Upkeep(ORDER, order_id, version, tuple(families)), apply)
    return body


async def repair_order(uow: UnitOfWork, order_id: int) -> None:
    """A path that answers about the order without writing it (a replay, a 409) re-applies its
    pending upkeep once `uow` ends: the state it answers about is then what every reader sees,
    even if the write that made it died between its commit and its cache writes."""
    await uow.repair_pending(ORDER, order_id)
