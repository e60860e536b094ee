"""A message to every process of the platform, answered once every process has handled it.

Redis pub/sub delivers to whoever listens now; each listener handles the message, then
acknowledges it in a set keyed by the message id, and the sender waits (briefly, bounded by
`wait_s`) until every *registered receiver* acknowledged. So when the sender goes on, every
process has acted: that is what lets a run-time switch or a dropped near-cache entry take
effect "at once" everywhere, not merely soon.

Who must answer is counted from the receivers, never from PUBLISH's return value (on a Redis
Cluster that is the publishing node's subscriber count only). Each listening process keeps an
entry in the channel's registry, a sorted set scored by the Redis server's clock: "alive until".
It refreshes it every `heartbeat_s` while subscribed (subscribed first, then registered, so a
registered receiver hears every later message), removes it on a clean stop or a broken
subscription, and a process that died without a word drops out when its entry expires
(`expire_s`). The sender snapshots the live receivers before it publishes, then waits until each
of them acknowledged or expired. Its answer is how many processes acknowledged.

Every key of a channel is under one hash tag, `{<channel>}`: the registry and the
acknowledgements live in one slot, and each step is one script on that slot, on a single node
and on a cluster alike (`cluster=True` builds redis-py's asyncio `RedisCluster`).

Delivery on a cluster: sharded pub/sub (SPUBLISH/SSUBSCRIBE) where the servers have it (Redis 7
and later, Valkey), classic PUBLISH/SUBSCRIBE on Redis 6.2. A sharded message goes to the
channel's shard only (its master and replicas), where a classic one is forwarded by the cluster
bus to every node; both ends choose the same way, from a node's version (`sharded`). On one
node, classic. If the node a listener subscribed on dies (or a failover moves the channel's
slot), its subscription breaks: the listener unregisters (best effort: the entry expires
otherwise), subscribes again within a second, on the slot's new owner, and catches up with
`on_subscribe`.
"""

import asyncio
import contextlib
import logging
import os
import socket
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from redis.asyncio import Redis, RedisCluster

from orderflow.kit.redis import REDIS_FAILURES, cluster_client
from orderflow.kit.tasks import background, cancel

log = logging.getLogger(__name__)
Handler = Callable[[str], Awaitable[None]]
Client = Redis | RedisCluster

# The server's clock in ms, so that receivers on machines with different clocks agree.
_NOW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
"""
# KEYS: the registry. ARGV: the receiver, its lifetime in ms. Alive until now + lifetime.
HEARTBEAT = (
    _NOW
    + """
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]) * 2)
return now
"""
)
# KEYS: the registry. Drops the expired receivers, answers the live ones.
LIVE = (
    _NOW
    + """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
return redis.call('ZRANGE', KEYS[1], 0, -1)
"""
)
# KEYS: the registry, the message's acknowledgements. ARGV: the receivers expected.
# Answers {how many acknowledged, how many expected ones are alive and have not}.
PENDING = (
    _NOW
    + """
local waiting = 0
for _, receiver in ipairs(ARGV) do
  if redis.call('SISMEMBER', KEYS[2], receiver) == 0 then
    local alive_until = redis.call('ZSCORE', KEYS[1], receiver)
    if alive_until and tonumber(alive_until) > now then waiting = waiting + 1 end
  end
end
return {redis.call('SCARD', KEYS[2]), waiting}
"""
)
# KEYS: the message's acknowledgements. ARGV: the receiver.
ACK = """
redis.call('SADD', KEYS[1], ARGV[1])
redis.call('EXPIRE', KEYS[1], 60)
"""


def connect(url: str, *, cluster: bool, socket_timeout: float | None) -> Client:
    """A dedicated client (a subscription or a blocking read holds a connection, and must
    outlast the cache's short socket timeouts): one node, or a cluster reached through `url`."""
    if cluster:
        return cluster_client(url, socket_timeout=socket_timeout, socket_connect_timeout=1)
    return Redis.from_url(url, socket_timeout=socket_timeout, socket_connect_timeout=1)


class Broadcast:
    def __init__(
        self,
        redis_url: str,
        channel: str,
        handle: Handler,
        *,
        on_subscribe: Callable[[], Awaitable[None]] | None = None,
        wait_s: float = 2.0,
        cluster: bool = False,
        heartbeat_s: float = 1.0,
        expire_s: float = 3.0,
    ) -> None:
        self.redis = connect(redis_url, cluster=cluster, socket_timeout=None)
        self.channel = channel
        self.handle = handle
        self.on_subscribe = on_subscribe
        self.wait_s = wait_s
        self.heartbeat_s = heartbeat_s
        self.expire_ms = int(expire_s * 1000)
        self.receiver = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.registry = f"{{{channel}}}:receivers"
        self.registered = asyncio.Event()  # set while this process counts as a receiver
        self.task: asyncio.Task[None] | None = None
        self._heartbeat = self.redis.register_script(HEARTBEAT)
        self._live = self.redis.register_script(LIVE)
        self._pending = self.redis.register_script(PENDING)
        self._ack = self.redis.register_script(ACK)
        self._sharded: bool | None = None  # learnt from the servers on first use

    async def send(self, message: str) -> int:
        """Deliver `message` to every listening process; returns how many handled it in time."""
        message_id = uuid.uuid4().hex
        async with asyncio.timeout(self.wait_s + 1):
            expected = [r.decode() for r in await self._live(keys=[self.registry])]
            publish = self.redis.spublish if await self.sharded() else self.redis.publish
            await publish(self.channel, f"{message_id} {message}")
            return await self._acknowledged(message_id, expected)

    async def receivers(self) -> list[str]:
        """The receivers alive now (expired ones are dropped on the way)."""
        return [r.decode() for r in await self._live(keys=[self.registry])]

    async def sharded(self) -> bool:
        """Whether this channel uses sharded pub/sub: on a cluster of Redis 7+ or Valkey (one
        node asked: a cluster runs one version, except while it is being upgraded)."""
        if self._sharded is None:
            if isinstance(self.redis, RedisCluster):
                await self.redis.initialize()
                info = await self.redis.info("server", target_nodes=RedisCluster.RANDOM)
                self._sharded = int(str(info["redis_version"]).split(".")[0]) >= 7
            else:
                self._sharded = False
        return self._sharded

    async def _acknowledged(self, message_id: str, expected: list[str]) -> int:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.wait_s
        keys = [self.registry, self._acks(message_id)]
        while True:
            acks, waiting = await self._pending(keys=keys, args=expected)
            if not waiting or loop.time() > deadline:
                return int(acks)
            await asyncio.sleep(0.002)

    def _acks(self, message_id: str) -> str:
        return f"{{{self.channel}}}:acks:{message_id}"

    def start(self) -> None:
        self.task = background(self._listen(), f"broadcast:{self.channel}")

    async def stop(self) -> None:
        await cancel(self.task)
        if self.task is not None:
            await self._unregister()
        await self.redis.aclose()

    async def _listen(self) -> None:
        while True:
            try:
                if isinstance(self.redis, RedisCluster):  # its pubsub needs the slots known
                    await self.redis.initialize()
                sharded = await self.sharded()
                async with self.redis.pubsub() as pubsub:
                    await (pubsub.ssubscribe if sharded else pubsub.subscribe)(self.channel)
                    if self.on_subscribe is not None:  # catch up on what passed unheard
                        await self.on_subscribe()
                    beating = asyncio.create_task(self._beat(), name=f"heartbeat:{self.channel}")
                    try:
                        await self._receive_all(pubsub, sharded)
                    finally:
                        await cancel(beating)
            except Exception as exc:  # noqa: BLE001  Redis's or not, the listener must go on
                log.warning("broadcast %s: %r; resubscribing", self.channel, exc)
                await self._unregister()
                await asyncio.sleep(1)

    async def _receive_all(self, pubsub: Any, sharded: bool) -> None:
        if not sharded:
            async for message in pubsub.listen():
                if message["type"] == "message":
                    await self._receive(message["data"].decode())
        while sharded:
            message = await pubsub.get_sharded_message(ignore_subscribe_messages=True, timeout=1)
            if message is not None and message["type"] == "smessage":
                await self._receive(message["data"].decode())

    async def _beat(self) -> None:
        """Registered while subscribed, refreshed well within `expire_s`."""
        while True:
            try:
                async with asyncio.timeout(max(self.heartbeat_s, 0.5)):
                    await self._heartbeat(
                        keys=[self.registry], args=[self.receiver, self.expire_ms]
                    )
                self.registered.set()
            except REDIS_FAILURES as exc:
                log.warning("broadcast %s: heartbeat failed: %r", self.channel, exc)
            await asyncio.sleep(self.heartbeat_s)

    async def _unregister(self) -> None:
        self.registered.clear()
        with contextlib.suppress(*REDIS_FAILURES):
            async with asyncio.timeout(0.5):
                await self.redis.zrem(self.registry, self.receiver)

    async def _receive(self, data: str) -> None:
        message_id, _, message = data.partition(" ")
        try:
            await self.handle(message)
        except Exception:  # one bad message must not deafen the process for good
            log.exception("broadcast %s: could not handle %r; not acknowledged", self.channel, data)
            return
        await self._ack(keys=[self._acks(message_id)], args=[self.receiver])
