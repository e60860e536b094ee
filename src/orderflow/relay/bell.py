"""The relay's wake-up: PostgreSQL rings when an outbox row is committed, so the relay waits
instead of polling.

Each outbox has a statement trigger that NOTIFYs `outbox` (migrations shopdb_0007 and
mesdb_0007); PostgreSQL sends it at commit, once per transaction however many rows it wrote.
An idle relay used to poll both outboxes every 50 ms (0.07 of a core, most of the idle
platform's CPU); now it sleeps until rung. A notification can be missed only while a
listening connection is down: then the relay polls as before (`quiet_s`), and when listening
starts again the bell rings once for whatever was written meanwhile. A long poll (`IDLE_S`)
stays as the last safety net, for a notification lost in a way the connection did not show.
"""

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from orderflow.kit.listen import Listener
from orderflow.kit.tasks import background, cancel

CHANNEL = "outbox"
NAME = "orderflow relay bell"  # the listeners' application_name in pg_stat_activity
IDLE_S = 10.0  # the longest wait while every database listens


class Bell:
    """Rung by any of the databases' outboxes; `live` while every one of them is listened to."""

    def __init__(self, dsns: list[str], longest_s: float = IDLE_S) -> None:
        self.longest_s = longest_s
        self._rung = asyncio.Event()
        self.listeners = [Listener(dsn, CHANNEL, NAME, self._ring, on_up=self.ring) for dsn in dsns]

    @property
    def live(self) -> bool:
        return all(listener.live for listener in self.listeners)

    def ring(self) -> None:
        self._rung.set()

    def _ring(self, _payload: str) -> None:
        self._rung.set()

    def clear(self) -> None:
        """Before a delivery pass: a row committed during the pass rings for the next one."""
        self._rung.clear()

    async def wait(self, quiet_s: float) -> None:
        """Until rung; `quiet_s` at most while a database is not listened to, else
        `longest_s`."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._rung.wait(), self.longest_s if self.live else quiet_s)


@asynccontextmanager
async def listening(dsns: list[str], longest_s: float = IDLE_S) -> AsyncIterator[Bell]:
    bell = Bell(dsns, longest_s)
    tasks = [
        background(listener.run(), f"relay-bell-{i}") for i, listener in enumerate(bell.listeners)
    ]
    try:
        yield bell
    finally:
        for task in tasks:
            await cancel(task)
