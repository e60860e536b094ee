"""The platform-wide broadcast (run-time switch, near-cache drops): a bad message does not deafen
a listener, and a sender waits for every registered receiver, and only for the live ones."""

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
from redis.crc import key_slot

from orderflow.kit.broadcast import Broadcast
from orderflow.kit.tasks import cancel
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
