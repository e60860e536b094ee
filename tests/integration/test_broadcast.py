"""The platform-wide broadcast (run-time switch, near-cache drops) outlives a bad message."""

import asyncio
import uuid

from orderflow.kit.broadcast import Broadcast


async def test_a_handler_that_fails_does_not_stop_the_listener(redis_url: str) -> None:
    heard: list[str] = []

    async def handle(message: str) -> None:
        if message == "poison":
            raise ValueError("a message this process cannot read")
        heard.append(message)

    channel = f"test:broadcast:{uuid.uuid4().hex}"
    listener = Broadcast(redis_url, channel, handle, wait_s=0.5)
    sender = Broadcast(redis_url, channel, handle, wait_s=0.5)
    listener.start()
    try:
        for _ in range(100):  # until the listener has subscribed
            if await sender.redis.pubsub_numsub(channel) == [(channel.encode(), 1)]:
                break
            await asyncio.sleep(0.01)
        assert await sender.send("poison") == 0  # not handled, so not acknowledged
        assert await sender.send("after") == 1  # the listener is still there
        assert heard == ["after"]
    finally:
        await listener.stop()
        await sender.stop()
