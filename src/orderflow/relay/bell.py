"""The relay's wake-up: PostgreSQL rings when an outbox row is committed, so the relay waits
instead of polling.

Each outbox has a statement trigger that NOTIFYs `outbox` (migrations shopdb_0007 and
mesdb_0007); PostgreSQL sends it at commit, once per transaction however many rows it wrote.
An idle relay used to poll both outboxes every 50 ms (0.07 of a core, most of the idle
platform's CPU); now it sleeps until rung. A notification can be missed only while a
listening connection is down: then the relay polls as before (`quiet_s`), and when listening
starts again the bell rings once for whatever was written meanwhile. A long poll (`IDLE_S`)
stays as the last safety net, for a notification lost in a way the connection did not show.

The bell remembers which database rang: the relay then looks only at that database's outbox,
not at both (under load nearly every commit rings, and an empty pass over the other outbox cost
a transaction of its own).
"""

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial

from orderflow.kit.listen import Listener
from orderflow.kit.tasks import background, cancel

CHANNEL = "outbox"
NAME = "orderflow relay bell"  # the listeners' application_name in pg_stat_activity
IDLE_S = 10.0  # the longest wait while every database listens


class Bell:
    """Rung by the databases' outboxes (the i-th of `dsns` rings `i`); `live` while every one
    of them is listened to. It starts rung by all: what was written before it listened is
    delivered first."""

    def __init__(self, dsns: list[str], longest_s: float = IDLE_S) -> None:
        self.longest_s = longest_s
        self._rung = asyncio.Event()
        self._sources = set(range(len(dsns)))
        self.listeners = [
            Listener(dsn, CHANNEL, NAME, partial(self._heard, i), on_up=partial(self.ring, i))
            for i, dsn in enumerate(dsns)
        ]
        self._rung.set()

    @property
    def live(self) -> bool:
        return all(listener.live for listener in self.listeners)

    def ring(self, *sources: int) -> None:
        """Ring for these sources (none: all of them)."""
        self._sources.update(sources or range(len(self.listeners)))
        self._rung.set()

    def _heard(self, source: int, _payload: str) -> None:
        self.ring(source)

    def take(self) -> set[int]:
        """Before a delivery pass: the sources that rang since the last one (a row committed
        during the pass rings for the next one)."""
        sources, self._sources = self._sources, set()
        self._rung.clear()
        return sources

    async def wait(self, quiet_s: float, at_most: float | None = None) -> None:
        """Until rung; `quiet_s` at most while a database is not listened to, else
        `longest_s` (or `at_most`, if shorter), after which it rings for every source."""
        timeout = self.longest_s if self.live else quiet_s
        try:
            await asyncio.wait_for(self._rung.wait(), min(timeout, at_most or timeout))
        except TimeoutError:
            self.ring()


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
