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
from typing import Any

import asyncpg

from orderflow.kit.db import asyncpg_dsn
from orderflow.kit.tasks import cancel

log = logging.getLogger(__name__)
CHANNEL = "order_changes"
NAME = "orderflow order changes"  # the listener's application_name in pg_stat_activity
RETRY_S = (0.5, 1.0, 2.0, 5.0)
FAILURES = (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError)


@dataclass(frozen=True)
class Change:
    client_id: int
    order_id: int
    version: int


Followers = dict[int, set[asyncio.Queue[Change | None]]]


class OrderChanges:
    """The process's LISTEN connection and the queues of the pages following a client."""

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn
        self.live = False
        self._followers: Followers = defaultdict(set)
        self._lost = asyncio.Event()

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

    def _on_notify(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        try:
            client_id, order_id, version = (int(part) for part in payload.split(":"))
        except ValueError:
            log.warning("not an order change: %r", payload)
            return
        for queue in self._followers.get(client_id, ()):
            with contextlib.suppress(asyncio.QueueFull):  # a stuck page: it resyncs anyway
                queue.put_nowait(Change(client_id, order_id, version))

    def _end_all(self) -> None:
        self.live = False
        for queues in self._followers.values():
            for queue in queues:
                with contextlib.suppress(asyncio.QueueFull):
                    queue.put_nowait(None)

    async def run(self) -> None:
        """Listen, and listen again after every loss, until cancelled."""
        attempt = 0
        while True:
            try:
                conn = await asyncpg.connect(
                    asyncpg_dsn(self.dsn), timeout=5, server_settings={"application_name": NAME}
                )
            except FAILURES as exc:
                log.warning("order changes: cannot listen (%s)", exc)
                await asyncio.sleep(RETRY_S[min(attempt, len(RETRY_S) - 1)])
                attempt += 1
                continue
            attempt = 0
            try:
                await self._listen(conn)
            except FAILURES as exc:
                log.warning("order changes: listening stopped (%s)", exc)
            finally:
                self._end_all()
                with contextlib.suppress(Exception):
                    await conn.close(timeout=1)

    async def _listen(self, conn: asyncpg.Connection) -> None:
        self._lost.clear()
        conn.add_termination_listener(lambda _conn: self._lost.set())
        await conn.add_listener(CHANNEL, self._on_notify)
        self.live = True
        while not self._lost.is_set():  # a dead peer is seen by the probe, not by waiting
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._lost.wait(), 5)
            if not self._lost.is_set():
                try:
                    await conn.execute("SELECT 1", timeout=2)
                except FAILURES:
                    self._lost.set()


@asynccontextmanager
async def listening(dsn: str) -> AsyncIterator[OrderChanges]:
    changes = OrderChanges(dsn)
    task = asyncio.create_task(changes.run(), name="order-changes")
    try:
        yield changes
    finally:
        await cancel(task)
