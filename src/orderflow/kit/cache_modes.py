"""The cache switch: per-service mode `on`/`off`, and how orders are cached, at run time.

The modes live in one Redis hash so that every process sees the same switch. A change is
published on a channel that every process listens to; each applies it and acknowledges, and
the change is answered only once every listener has acknowledged (or after two seconds): when
`PUT /admin/cache` returns, every process runs in the new mode. No restart. When Redis cannot
be read, the configured defaults apply.
"""

import asyncio
import contextlib
import logging
from typing import Any, Literal, cast

from redis.asyncio import Redis
from redis.exceptions import RedisError

from orderflow.kit.settings import OrdersMode, Settings

log = logging.getLogger(__name__)
HASH = "orderflow:cache:modes"
CHANNEL = "orderflow:cache:modes:changed"
ACKS = "orderflow:cache:modes:acks:"  # + revision: one entry per process that applied it
ACK_WAIT_S = 2.0
Field = Literal["shop", "crm", "mes", "orders"]


class CacheModes:
    def __init__(self, settings: Settings, redis_url: str | None) -> None:
        self.values: dict[str, str] = {
            "shop": settings.cache_shop,
            "crm": settings.cache_crm,
            "mes": settings.cache_mes,
            "orders": settings.cache_orders,
        }
        self.defaults = dict(self.values)
        # Its own connection: a subscription holds it, and must outlast short socket timeouts.
        self.redis = Redis.from_url(redis_url, socket_timeout=None) if redis_url else None
        self.task: asyncio.Task[None] | None = None

    def reads_cached(self, service: str) -> bool:
        return self.redis is not None and self.values[service] == "on"

    @property
    def orders(self) -> OrdersMode:
        return cast(OrdersMode, self.values["orders"])

    def snapshot(self) -> dict[str, Any]:
        return dict(self.values)

    async def set(self, changes: dict[str, str]) -> int:
        """Store the change, tell every process, wait for them to apply it.

        Returns how many processes acknowledged.
        """
        if self.redis is None:
            raise RuntimeError("the cache switch needs Redis")
        self.values.update(changes)
        async with asyncio.timeout(ACK_WAIT_S + 1):
            mapping: dict[Any, Any] = dict(changes)  # redis-py's Mapping key type is invariant
            await self.redis.hset(HASH, mapping=mapping)
            revision = await self.redis.hincrby(HASH, "revision", 1)
            listeners = await self.redis.publish(CHANNEL, str(revision))
            return await self._acknowledged(revision, listeners)

    async def _acknowledged(self, revision: int, listeners: int) -> int:
        assert self.redis is not None
        deadline = asyncio.get_running_loop().time() + ACK_WAIT_S
        while True:
            acks = int(await self.redis.llen(f"{ACKS}{revision}"))
            if acks >= listeners or asyncio.get_running_loop().time() > deadline:
                return acks
            await asyncio.sleep(0.005)

    async def reload(self) -> None:
        if self.redis is None:
            return
        async with asyncio.timeout(2):
            stored: dict[bytes, bytes] = await self.redis.hgetall(HASH)  # type: ignore[assignment]
        values = {k.decode(): v.decode() for k, v in stored.items() if k != b"revision"}
        self.values = self.defaults | values

    def start(self) -> None:
        if self.redis is not None:
            self.task = asyncio.create_task(self._listen(), name="cache-mode-listener")

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
        if self.redis is not None:
            await self.redis.aclose()

    async def _ack(self, revision: bytes) -> None:
        assert self.redis is not None
        key = f"{ACKS}{revision.decode()}"
        await self.redis.rpush(key, "1")
        await self.redis.expire(key, 60)

    async def _listen(self) -> None:
        """Subscribe, then (re)read the hash: a change between the two is not missed."""
        assert self.redis is not None
        while True:
            try:
                async with self.redis.pubsub() as pubsub:
                    await pubsub.subscribe(CHANNEL)
                    await self.reload()
                    async for message in pubsub.listen():
                        if message["type"] == "message":
                            await self.reload()
                            await self._ack(message["data"])
            except (RedisError, OSError, TimeoutError) as exc:
                log.warning("cache mode listener: %s; retrying", exc)
                await asyncio.sleep(1)
