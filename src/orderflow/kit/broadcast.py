"""A message to every process of the platform, answered once every process has handled it.

Redis pub/sub delivers to whoever listens now; each listener handles the message, then
acknowledges it in a list keyed by the message id, and the sender waits (briefly, bounded)
until as many acknowledgements as PUBLISH reported receivers. So when the sender goes on,
every process has acted: that is what lets a run-time switch or a dropped near-cache entry
take effect "at once" everywhere, not merely soon.
"""

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable

from redis.asyncio import Redis

from orderflow.kit.tasks import cancel

log = logging.getLogger(__name__)
Handler = Callable[[str], Awaitable[None]]


class Broadcast:
    def __init__(
        self,
        redis_url: str,
        channel: str,
        handle: Handler,
        *,
        on_subscribe: Callable[[], Awaitable[None]] | None = None,
        wait_s: float = 2.0,
    ) -> None:
        # Its own connection: a subscription holds one, and must outlast short socket timeouts.
        self.redis = Redis.from_url(redis_url, socket_timeout=None, socket_connect_timeout=1)
        self.channel = channel
        self.handle = handle
        self.on_subscribe = on_subscribe
        self.wait_s = wait_s
        self.task: asyncio.Task[None] | None = None

    async def send(self, message: str) -> int:
        """Deliver `message` to every listening process; returns how many handled it in time."""
        message_id = uuid.uuid4().hex
        async with asyncio.timeout(self.wait_s + 1):
            listeners = int(await self.redis.publish(self.channel, f"{message_id} {message}"))
            return await self._acknowledged(message_id, listeners)

    async def _acknowledged(self, message_id: str, listeners: int) -> int:
        deadline = asyncio.get_running_loop().time() + self.wait_s
        while True:
            acks = int(await self.redis.llen(self._acks(message_id)))
            if acks >= listeners or asyncio.get_running_loop().time() > deadline:
                return acks
            await asyncio.sleep(0.002)

    def _acks(self, message_id: str) -> str:
        return f"{self.channel}:acks:{message_id}"

    def start(self) -> None:
        self.task = asyncio.create_task(self._listen(), name=f"broadcast:{self.channel}")

    async def stop(self) -> None:
        await cancel(self.task)
        await self.redis.aclose()

    async def _listen(self) -> None:
        while True:
            try:
                async with self.redis.pubsub() as pubsub:
                    await pubsub.subscribe(self.channel)
                    if self.on_subscribe is not None:  # catch up on what passed unheard
                        await self.on_subscribe()
                    async for message in pubsub.listen():
                        if message["type"] == "message":
                            await self._receive(message["data"].decode())
            except Exception as exc:  # noqa: BLE001  Redis's or not, the listener must go on
                log.warning("broadcast %s: %r; resubscribing", self.channel, exc)
                await asyncio.sleep(1)

    async def _receive(self, data: str) -> None:
        message_id, _, message = data.partition(" ")
        try:
            await self.handle(message)
        except Exception:  # one bad message must not deafen the process for good
            log.exception("broadcast %s: could not handle %r; not acknowledged", self.channel, data)
            return
        key = self._acks(message_id)
        await self.redis.rpush(key, "1")
        await self.redis.expire(key, 60)
