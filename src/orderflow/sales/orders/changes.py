"""Orders placed or changed, as PostgreSQL announces them (NOTIFY `order_changes`, migration
shopdb_0005), fanned out in this process to whoever follows one client's orders.

One LISTEN connection per process, whichever process made the change (the Shop, the CRM, the
relay). A notification is sent at commit, before the writer's after-commit cache write, so a
follower reading through the cache must wait for the notified version (`Change.version`).
While the connection is down nobody can follow: `live` is False, and followers are ended (told
`None`) so that their pages fall back to polling until it is back.
"""

import asyncio
import contextlib
import logging
from collections import defaultdict
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass

from orderflow.kit.listen import Listener
from orderflow.kit.tasks import background, cancel

log = logging.getLogger(__name__)
CHANNEL = "order_changes"
NAME = "orderflow order changes"  # the listener's application_name in pg_stat_activity


@dataclass(frozen=True)
class Change:
    client_id: int
    order_id: int
    version: int


Followers = dict[int, set[asyncio.Queue[Change | None]]]


class OrderChanges:
    """The process's LISTEN connection and the queues of the pages following a client."""

    def __init__(self, dsn: str) -> None:
        self._followers: Followers = defaultdict(set)
        self.listener = Listener(dsn, CHANNEL, NAME, self._on_notify, on_down=self._end_all)

    @property
    def live(self) -> bool:
        return self.listener.live

    @contextmanager
    def follow(self, client_id: int) -> Iterator[asyncio.Queue[Change | None]]:
        queue: asyncio.Queue[Change | None] = asyncio.Queue(maxsize=1000)
        self._followers[client_id].add(queue)
        try:
            yield queue
        finally:
            self._followers[client_id].discard(queue)
            if not self._followers[client_id]:
                del self._followers[client_id]

    def _on_notify(self, payload: str) -> None:
        try:
            client_id, order_id, version = (int(part) for part in payload.split(":"))
        except ValueError:
            log.warning("not an order change: %r", payload)
            return
        for queue in self._followers.get(client_id, ()):
            with contextlib.suppress(asyncio.QueueFull):  # a stuck page: it resyncs anyway
                queue.put_nowait(Change(client_id, order_id, version))

    def _end_all(self) -> None:
        for queues in self._followers.values():
            for queue in queues:
                with contextlib.suppress(asyncio.QueueFull):
                    queue.put_nowait(None)


@asynccontextmanager
async def listening(dsn: str) -> AsyncIterator[OrderChanges]:
    changes = OrderChanges(dsn)
    task = background(changes.listener.run(), "order-changes")
    try:
        yield changes
    finally:
        await cancel(task)
