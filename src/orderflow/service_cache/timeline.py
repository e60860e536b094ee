"""Forget the cache when its database went back in time: a failover to a standby.

A commit whose wait for the synchronous standby is cancelled becomes visible on the primary at
once (`kit/replication.py`): a read in that moment can fill the cache with it, and when that
primary is then lost, the cache goes on serving a state that the system of record never had.
The multi-host suite found five such entries at rest after a series of failovers (an order
served `confirmed` at v2 while PostgreSQL had it `created` at v1). Every promotion starts a new
PostgreSQL timeline, so every process of a database watches its primary's timeline, and when it
differs from the one recorded in Redis for the namespace, every entry of the namespace becomes
unreachable (`Epochs.follow`): the cache is cold once per failover, and never wrong after one.

Until the watch's next tick (`EVERY_S`) after a promotion, entries filled from the old primary
can still be served; a near cache keeps its copies up to its TTL. What the platform answers
about its own writes is fenced apart from this (`replicated`).
"""

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from redis.exceptions import RedisClusterException, RedisError
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from orderflow.cache import Cache
from orderflow.kit.db import BACKGROUND
from orderflow.kit.tasks import background, cancel, every_until

log = logging.getLogger(__name__)
EVERY_S = 0.5
# The primary's timeline, as the first eight hex digits of its current WAL file's name; NULL on
# a standby (its timeline is not yet the one it will serve writes on).
TIMELINE = text(
    "SELECT CASE WHEN pg_is_in_recovery() THEN NULL "
    "ELSE substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8) END"
)


async def timeline(sessions: async_sessionmaker[AsyncSession]) -> int | None:
    """The timeline of the server the sessions reach, if it is a primary."""
    async with sessions() as session:
        found = await session.scalar(TIMELINE, execution_options=BACKGROUND)
    return None if found is None else int(found, 16)


class TimelineWatch:
    """Follows one database's timeline for the cache of its namespace."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], cache: Cache | None) -> None:
        self.sessions = sessions
        self.cache = cache  # None: no Redis configured

    async def tick(self) -> bool:
        """Read the timeline, and forget the cache if it moved; whether it forgot."""
        if self.cache is None:
            return False
        try:
            now = await timeline(self.sessions)
            return now is not None and await self.cache.recovery.follow_source(f"timeline {now}")
        except (DBAPIError, RedisError, RedisClusterException, OSError, TimeoutError) as exc:
            log.debug("timeline watch: %r (tried again in %s s)", exc, EVERY_S)
            return False

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        if self.cache is None:
            yield
            return
        await self.tick()
        stop = asyncio.Event()
        task = background(every_until(EVERY_S, self._tick, stop), "timeline watch")
        try:
            yield
        finally:
            stop.set()
            await cancel(task)

    async def _tick(self) -> None:
        await self.tick()
