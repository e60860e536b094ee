"""The platform-wide broadcast (run-time switch, near-cache drops): a bad message does not deafen
a listener, and a sender waits for every registered receiver, and only for the live ones."""

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from redis.crc import key_slot

from orderflow.kit.embedded_cluster import EmbeddedRedisCluster
from orderflow.kit.redis import REDIS_FAILURES
from orderflow.kit.tasks import cancel
from orderflow.service_cache.broadcast import Broadcast
from tests.conftest import ON_CLUSTER


def new_channel() -> str:
    return f"test:broadcast:{uuid.uuid4().hex}"


async def ignore(_: str) -> None:
    return None


@pytest.fixture
async def sender(redis_url: str) -> AsyncIterator[Broadcast]:
    """A Broadcast that sends and never listens, so it is no receiver."""
    broadcast = Broadcast(redis_url, new_channel(), ignore, wait_s=5, cluster=ON_CLUSTER)
    yield broadcast
    await broadcast.stop()


async def listening(redis_url: str, channel: str, handle=ignore, **kwargs: float) -> Broadcast:  # type: ignore[no-untyped-def]
    listener = Broadcast(redis_url, channel, handle, cluster=ON_CLUSTER, **kwargs)
    listener.start()
    await asyncio.wait_for(listener.registered.wait(), 5)  # subscribed, then registered
    return listener


async def test_a_handler_that_fails_does_not_stop_the_listener(redis_url: str) -> None:
    heard: list[str] = []

    async def handle(message: str) -> None:
        if message == "poison":
            raise ValueError("a message this process cannot read")
        heard.append(message)

    channel = new_channel()
    listener = await listening(redis_url, channel, handle, wait_s=0.5)
    sender = Broadcast(redis_url, channel, handle, wait_s=0.5, cluster=ON_CLUSTER)
    try:
        assert await sender.send("poison") == 0  # not handled, so not acknowledged
        assert await sender.send("after") == 1  # the listener is still there
        assert heard == ["after"]
    finally:
        await listener.stop()
        await sender.stop()


async def test_the_sender_waits_for_every_registered_listener(
    redis_url: str, sender: Broadcast
) -> None:
    heard: list[tuple[int, str]] = []

    def handler(n: int):  # type: ignore[no-untyped-def]
        async def handle(message: str) -> None:
            await asyncio.sleep(0.05 * n)  # slow ones too: the sender waits for them
            heard.append((n, message))

        return handle

    listeners = [await listening(redis_url, sender.channel, handler(n)) for n in range(4)]
    try:
        assert len(await sender.receivers()) == 4
        assert await sender.send("hello") == 4
        assert sorted(heard) == [(n, "hello") for n in range(4)]  # all handled before send ended
        await listeners[0].stop()  # a clean stop unregisters at once
        assert len(await sender.receivers()) == 3
        assert await sender.send("again") == 3
    finally:
        for listener in listeners:
            await listener.stop()


async def test_a_listener_that_died_without_a_word_drops_out_when_its_heartbeat_expires(
    redis_url: str, sender: Broadcast
) -> None:
    alive = await listening(redis_url, sender.channel)
    dead = await listening(redis_url, sender.channel, heartbeat_s=0.1, expire_s=1.0)
    try:
        await cancel(dead.task)  # no unregistering: like a process killed
        await dead.redis.aclose()
        assert dead.receiver in await sender.receivers()  # until its entry expires
        loop = asyncio.get_running_loop()
        started = loop.time()
        assert await sender.send("hello") == 1  # only the live one answered ...
        waited = loop.time() - started
        assert waited < sender.wait_s  # ... and the sender stopped waiting at the expiry
        assert await sender.receivers() == [alive.receiver]
        assert await sender.send("again") == 1
    finally:
        await alive.stop()


async def test_the_sender_does_not_wait_forever_for_a_live_listener_that_hangs(
    redis_url: str,
) -> None:
    channel = new_channel()

    async def hang(_: str) -> None:
        await asyncio.Event().wait()

    stuck = await listening(redis_url, channel, hang)
    quick = await listening(redis_url, channel)
    sender = Broadcast(redis_url, channel, ignore, wait_s=0.3, cluster=ON_CLUSTER)
    try:
        async with asyncio.timeout(2):
            assert await sender.send("hello") == 1  # the quick one; given up on the stuck one
    finally:
        for broadcast in (stuck, quick, sender):
            await broadcast.stop()


async def test_every_key_of_a_channel_is_in_one_slot(sender: Broadcast) -> None:
    keys = [sender.registry, sender._acks("some-message")]
    assert len({key_slot(key.encode()) for key in keys}) == 1


async def subscribers(sender: Broadcast, channel: str) -> tuple[int, int]:
    """(classic subscribers on every node, sharded subscribers on the channel's shard)."""
    redis: Any = sender.redis
    if not ON_CLUSTER:
        return int((await redis.pubsub_numsub(channel))[0][1]), 0
    classic = 0
    for node in redis.get_nodes():
        classic += int((await redis.pubsub_numsub(channel, target_nodes=node))[0][1])
    if not await sender.sharded():  # Redis 6.2 has no sharded pub/sub to ask about
        return classic, 0
    owner = redis.get_node_from_key(channel)
    sharded = await redis.pubsub_shardnumsub(channel, target_nodes=owner)
    return classic, int(sharded[0][1])


async def test_on_a_cluster_of_redis_7_or_valkey_the_broadcast_is_sharded(
    redis_url: str, sender: Broadcast
) -> None:
    """Sharded pub/sub where the servers have it (a message goes to its shard only), classic
    on Redis 6.2 and on one node; the same messages and acknowledgements either way."""
    where = {"target_nodes": "random"} if ON_CLUSTER else {}
    version = (await sender.redis.info("server", **where))["redis_version"]
    expected = ON_CLUSTER and int(str(version).split(".")[0]) >= 7
    assert await sender.sharded() is expected
    heard: list[str] = []

    async def handle(message: str) -> None:
        heard.append(message)

    listeners = [await listening(redis_url, sender.channel, handle) for _ in range(2)]
    try:
        assert await subscribers(sender, sender.channel) == ((0, 2) if expected else (2, 0))
        assert await sender.send("drop item 7") == 2
        assert heard == ["drop item 7", "drop item 7"]
    finally:
        for listener in listeners:
            await listener.stop()


@pytest.mark.skipif(not ON_CLUSTER, reason="a cluster's master killed")
async def test_a_listener_hears_again_after_its_shard_failed_over(
    redis_url: str, redis_cluster: EmbeddedRedisCluster | None
) -> None:
    """The master owning the channel's slot (where a sharded listener subscribed, and where the
    registry lives) is killed: its replica takes over, the listener subscribes there again."""
    if redis_cluster is None:
        pytest.skip("kills a node: needs the embedded cluster")
    heard: list[str] = []

    async def handle(message: str) -> None:
        heard.append(message)

    sender = Broadcast(redis_url, new_channel(), ignore, wait_s=0.3, cluster=True)
    listener = await listening(redis_url, sender.channel, handle)
    redis: Any = sender.redis
    await redis.initialize()
    victim = int(redis.get_node_from_key(sender.channel).port)
    replica = redis_cluster.replica_of(victim)
    killed = time.monotonic()
    redis_cluster.kill(victim)
    try:
        while True:
            with contextlib.suppress(*REDIS_FAILURES, TimeoutError):
                if await sender.send("after the failover") == 1:
                    break
            assert time.monotonic() - killed < 30, "the listener did not hear again"
            await asyncio.sleep(0.2)
        print(f"\nheard again {time.monotonic() - killed:.1f} s after the kill")
        assert "after the failover" in heard
    finally:
        await listener.stop()
        await sender.stop()
        await asyncio.to_thread(redis_cluster.rejoin, victim, replica)
