"""The refresh job of the quiet window: re-warm the most wanted items as it opens.

Items expire at random instants inside the quiet window (`QuietWindowTTL`); the popular ones
are loaded again right at its start, with TTLs that point at the next night's window, so the
busy hours begin with a warm catalogue. One Shop process per window does it (a Redis lock).
"""

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime

from fastapi import FastAPI

from orderflow.kit.resources import Resources
from orderflow.kit.tasks import background, cancel
from orderflow.sales.caching import item_ttl
from orderflow.sales.catalogue.service import popular_item_ids, warm_items
from orderflow.sales.context import get_sales_of

log = logging.getLogger(__name__)
LOCK = "shop:warm:{date}"


async def warm_popular(app: FastAPI, resources: Resources, window: datetime) -> int:
    """Warm the popular items for the window starting at `window`, unless another process
    already does. Returns how many items this process warmed."""
    redis = resources.redis
    if redis is None:
        return 0
    lock = LOCK.format(date=window.date().isoformat())
    if not await redis.set(lock, "1", nx=True, ex=6 * 3600):
        return 0
    try:
        sales = get_sales_of(app)
        ids = await popular_item_ids(sales, resources.settings.warm_popular_items)
        warmed = await warm_items(sales, ids)
    except BaseException:
        await redis.delete(lock)  # let another process (or the next try) do it
        raise
    log.info("warmed %d popular items for the quiet window of %s", warmed, window.date())
    return warmed


async def _every_window(app: FastAPI, resources: Resources) -> None:
    policy = item_ttl(resources.settings)
    while True:
        window = policy.next_window_start()
        await asyncio.sleep(max(0.0, window.timestamp() - datetime.now().timestamp()))
        try:
            await warm_popular(app, resources, window)
        except Exception:
            log.exception("could not warm the catalogue")


@asynccontextmanager
async def warmer(app: FastAPI, resources: Resources) -> AsyncIterator[None]:
    task = background(_every_window(app, resources), "quiet-window-warmer")
    try:
        yield
    finally:
        await cancel(task)
