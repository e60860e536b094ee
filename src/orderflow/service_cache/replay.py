"""What a breaker's probe re-applies from the upkeep journal before Redis is read again
(docs/caching.md, "The replay").

A probe replays every pending row, whatever its age, or reuses a replay begun since its
shard's outage began in this process, even one a failed probe left running: under load a
fresh replay per probe never fit the probe's budget. A reused replay read the journal when it
began, so it lacks the rows committed since. The writes of other processes are their own to
apply (or the workers'); but a write of *this* process that Redis refused or failed after that
moment (the breaker open between two probes) committed a row that replay never read, and
closing the breaker without it would serve the entry from before a write this process
acknowledged (`tests/integration/test_cache_outage.py`, "a write refused after a probe that
failed"). So the process remembers its own missed rows, and a probe that reuses a replay
applies, by id, those missed since it began: a handful, where a full replay reads every
process's rows.
"""

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from orderflow.cache.guard import outage_since
from orderflow.data.base import UpkeepTable
from orderflow.kit import metrics
from orderflow.service_cache.journal_rows import Model, UpkeepRepository
from orderflow.service_cache.upkeep import Coalescer

log = logging.getLogger(__name__)
REPLAY_ROWS = 10_000  # a probe replays at most this many rows; the workers do the rest
REPLAY_BUDGET_S = 1.0  # the longest a probe (and the request carrying it) waits for a replay

Apply = Callable[[Sequence[UpkeepTable]], Awaitable[list[int]]]  # the ids fully applied


class Replay:
    """The probe's step of one database's journal, in one process: `await replay()`."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        model: Model,
        apply: Apply,
        database: str,
    ) -> None:
        self._sessions, self._model, self._apply, self._database = sessions, model, apply, database
        self._runs: Coalescer[None] = Coalescer(self._replay_all)
        self._missed: dict[int, float] = {}  # row id -> when its write missed Redis here

    def missed(self, row_id: int) -> None:
        """A write of this process committed `row_id` but could not apply it to Redis."""
        self._missed[row_id] = time.monotonic()

    async def __call__(self) -> int:
        """Re-apply every pending row, or reuse a replay begun since the outage began and
        apply this process's rows missed since it began; how many rows. After
        `REPLAY_BUDGET_S` the probe fails while the replay goes on."""
        async with asyncio.timeout(REPLAY_BUDGET_S):
            since = outage_since()
            reused = None if since is None else self._runs.begun_since(None, since)
            if reused is None:
                return await self._runs(None)
            began, run = reused
            replayed = await asyncio.shield(run)
            missed = [row for row, at in self._missed.items() if at >= began]
            return replayed + (await self._replay(missed) if missed else 0)

    async def _replay_all(self, _: None) -> int:
        return await self._replay(None)

    async def _replay(self, ids: list[int] | None) -> int:
        """Apply the pending rows (those of `ids` only, if given), unlocked: a row repaired
        elsewhere now is applied here too (idempotent), not waited for."""
        async with self._sessions() as session:
            repository = UpkeepRepository(session, self._model, background=True)
            rows = await repository.pending_rows(REPLAY_ROWS, ids)
        done = await self._apply(rows)
        # Applied, or gone from the journal (repaired elsewhere): nothing left to replay.
        for row_id in {*done, *(set(ids or ()) - {row.id for row in rows})}:
            self._missed.pop(row_id, None)
        metrics.UPKEEP_REPAIRED.labels(self._database, "replay").inc(len(done))
        log.log(logging.INFO if done else logging.DEBUG, "cache upkeep: %d replayed", len(done))
        return len(done)
