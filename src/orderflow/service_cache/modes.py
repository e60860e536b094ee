"""The cache switch: per-service mode `on`/`off`, and how orders are cached, at run time.

The modes live in one Redis hash so that every process sees the same switch; a change is
broadcast to every process and answered once all have applied it (`kit.broadcast`): when
`PUT /admin/cache` returns, every process runs in the new mode. No restart. When Redis cannot
be read, the configured defaults apply.
"""

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, cast

from orderflow.kit.redis import REDIS_FAILURES
from orderflow.kit.settings import OrdersMode, Settings
from orderflow.service_cache.broadcast import Broadcast

HASH = "orderflow:cache:modes"
CHANNEL = "orderflow:cache:modes:changed"


class CacheModes:
    def __init__(self, settings: Settings, redis_url: str | None) -> None:
        self.values: dict[str, str] = {
            "shop": settings.cache_shop,
            "crm": settings.cache_crm,
            "mes": settings.cache_mes,
            "orders": settings.cache_orders,
        }
        self.defaults = dict(self.values)
        self.broadcast = (
            Broadcast(
                redis_url,
                CHANNEL,
                self._changed,
                on_subscribe=self.reload,
                cluster=settings.redis_cluster,
            )
            if redis_url
            else None
        )

    @property
    def available(self) -> bool:
        return self.broadcast is not None

    def reads_cached(self, service: str) -> bool:
        return self.broadcast is not None and self.values[service] == "on"

    @property
    def orders(self) -> OrdersMode:
        return cast(OrdersMode, self.values["orders"])

    def snapshot(self) -> dict[str, Any]:
        return dict(self.values)

    async def set(self, changes: dict[str, str]) -> int:
        """Store the change, and return once every process applied it: how many did, counted
        from the processes registered as listening (every worker of every API, the relay)."""
        if self.broadcast is None:
            raise RuntimeError("the cache switch needs Redis")
        mapping: dict[Any, Any] = dict(changes)  # redis-py's Mapping key type is invariant
        async with asyncio.timeout(2):
            await self.broadcast.redis.hset(HASH, mapping=mapping)
        self.values.update(changes)  # only once stored: a failed switch changes nothing here
        try:
            return await self.broadcast.send("reload")
        except REDIS_FAILURES:
            return 0  # stored: every listener reloads the modes when it resubscribes

    async def reload(self) -> None:
        if self.broadcast is None:
            return
        async with asyncio.timeout(2):
            stored = cast(dict[bytes, bytes], await self.broadcast.redis.hgetall(HASH))
        self.values = self.defaults | {k.decode(): v.decode() for k, v in stored.items()}

    async def _changed(self, _: str) -> None:
        await self.reload()

    def start(self) -> None:
        if self.broadcast is not None:
            self.broadcast.start()

    async def stop(self) -> None:
        if self.broadcast is not None:
            await self.broadcast.stop()


@asynccontextmanager
async def cache_modes(settings: Settings) -> AsyncIterator[CacheModes]:
    """The platform's switch, read from Redis and followed until the block ends."""
    modes = CacheModes(settings, settings.redis_url or None)
    with contextlib.suppress(*REDIS_FAILURES):
        await modes.reload()  # Redis down at start: the configured modes until it is back
    modes.start()
    try:
        yield modes
    finally:
        await modes.stop()
