"""Answer only about states that survive a PostgreSQL failover.

With synchronous replication a commit is acknowledged once the synchronous standby has it, and
only that standby is promoted (Patroni's `synchronous_mode`), so what a write acknowledged
survives its primary. But a commit whose wait for the standby is cancelled (a statement timeout,
a client giving up) becomes visible on the primary at once, replicated or not: a retry that then
reads it (an idempotent replay, a 409 naming the state) would acknowledge a state that a failover
throws away. The multi-host suite lost five acknowledged orders exactly so, before this fence
(docs/reliability.md). `replicated` waits until the synchronous standby has flushed the WAL up
to now, which holds every commit this transaction saw.
"""

import asyncio
import time

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

SYNCED = "sync_state IN ('sync', 'quorum') AND flush_lsn >= CAST(CAST(:lsn AS text) AS pg_lsn)"
HERE = text(
    "SELECT CASE WHEN pg_is_in_recovery() THEN NULL ELSE pg_current_wal_lsn()::text END AS lsn, "
    "current_setting('synchronous_standby_names') = '' AS alone"
)
REPLICATED = text(f"SELECT EXISTS (SELECT 1 FROM pg_stat_replication WHERE {SYNCED})")
POLL_S = 0.005
WAIT_S = 5.0  # then the request answers 503: a primary cut off from its standbys


async def replicated(session: AsyncSession, wait_s: float = WAIT_S) -> None:
    """Return once every commit this transaction can see is on a synchronous standby (at once
    without synchronous replication); TimeoutError after `wait_s`. Needs the role to read
    `pg_stat_replication`'s positions (a superuser, or `pg_monitor`)."""
    here = (await session.execute(HERE)).one()
    if here.alone:
        return
    if here.lsn is None:  # a standby now (ConnectionError answers 503, like a lost server)
        raise ConnectionError("the database server became a standby: a failover is under way")
    deadline = time.monotonic() + wait_s
    while not await session.scalar(REPLICATED, {"lsn": here.lsn}):
        if time.monotonic() > deadline:
            raise TimeoutError(f"WAL up to {here.lsn} not on a synchronous standby in {wait_s} s")
        await asyncio.sleep(POLL_S)
