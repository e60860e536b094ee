"""One stream reader per MES process, fanning events out to that process's boards.

N boards cost one blocking XREAD, not N. A board subscribes before it replays what it missed,
then skips live events it already had, so nothing falls between replay and live feed.
"""

import asyncio
import logging

from orderflow.kit.errors import Unavailable
from orderflow.kit.redis import REDIS_FAILURES
from orderflow.kit.tasks import background, cancel
from orderflow.production.events.stream import EventStream, StreamEvent
from orderflow.service_cache.broadcast import connect

log = logging.getLogger(__name__)
RESYNC = StreamEvent(id="", data=b'{"type":"resync"}')  # a board must re-read its lists


class Subscription:
    def __init__(self, fanout: "EventFanout") -> None:
        self.fanout = fanout
        self.queue: asyncio.Queue[StreamEvent] = asyncio.Queue(maxsize=10_000)

    def offer(self, event: StreamEvent) -> None:
        try:
            self.queue.put_nowait(event)
        except asyncio.QueueFull:  # a board too slow to keep up starts over
            self.queue = asyncio.Queue(maxsize=10_000)
            self.queue.put_nowait(RESYNC)

    def close(self) -> None:
        self.fanout.subscribers.discard(self)


class EventFanout:
    """`max_subscribers` live feeds at most (`admit`); a feed that reconnects replays at most
    `replay_max` events, and resyncs when it is further behind."""

    def __init__(
        self,
        redis_url: str,
        *,
        block_ms: int = 2_000,
        cluster: bool = False,
        max_subscribers: int = 500,
        replay_max: int = 1000,
    ) -> None:
        # Its own connection: a blocking read must outlast the cache's short socket timeout. On
        # a cluster, the stream's one slot names the node every read goes to.
        self.redis = connect(redis_url, cluster=cluster, socket_timeout=block_ms / 1000 + 2)
        self.stream = EventStream(self.redis)
        self.block_ms = block_ms
        self.max_subscribers = max_subscribers
        self.replay_max = replay_max
        self.subscribers: set[Subscription] = set()
        self.position = "$"
        self.task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.task = background(self._run(), "mes-event-fanout")

    async def stop(self) -> None:
        await cancel(self.task)
        await self.redis.aclose()

    def admit(self) -> None:
        """Refuse a new feed (503, Retry-After) when the process has `max_subscribers`: each
        holds a connection, a queue of up to 10,000 events and a share of every fan-out."""
        if len(self.subscribers) >= self.max_subscribers:
            raise Unavailable("too many live feeds on this process; retry shortly")

    async def missed(self, last_id: str) -> list[StreamEvent] | None:
        """What a feed missed since `last_id`, or None: resync (see `EventStream.after`)."""
        return await self.stream.after(last_id, self.replay_max)

    def subscribe(self) -> Subscription:
        subscription = Subscription(self)
        self.subscribers.add(subscription)
        return subscription

    async def _run(self) -> None:
        healthy = True
        while True:
            try:
                if self.position == "$":
                    self.position = await self.stream.last_id()
                events = await self.stream.read(self.position, self.block_ms)
                if not healthy:
                    await self._after_outage()
            except REDIS_FAILURES as exc:
                if healthy:
                    log.warning("event stream unreachable, retrying: %s", exc)
                healthy = False
                await asyncio.sleep(0.5)
                continue
            healthy = True
            for event in events:
                self.position = event.id
                for subscriber in list(self.subscribers):
                    subscriber.offer(event)

    async def _after_outage(self) -> None:
        """Events may have been lost with Redis: boards must re-read, unless none were."""
        missed = await self.missed(self.position) if self.position != "0-0" else None
        if missed is None:
            for subscriber in list(self.subscribers):
                subscriber.offer(RESYNC)
            self.position = await self.stream.last_id()
