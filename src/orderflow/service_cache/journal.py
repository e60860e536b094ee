"""The cache upkeep journal: an outbox for the cache (docs/caching.md, rule 9).

Every write records what it owes the cache (`Upkeep`) in its own transaction
(`UnitOfWork.keep_cached`), then applies it after the commit, before answering, as before. When
every Redis call of that apply succeeded, the row goes to an in-memory set that a flusher deletes
in batches (every `upkeep_flush_every_s`), so the answer waits for no extra round trip. Once a
row was applied `RECHECK_AFTER_S` ago, the flusher also looks at its entry again
(`Cache.recheck`: a tombstone at the committed version if Redis holds an older one; an older
write's put that landed after Redis evicted this one is so undone).

A row still there after `upkeep_repair_after_s` is one whose writer died after its commit, or
whose cache calls failed: the repair worker of every API process of that database takes such
rows every `upkeep_repair_every_s` (`FOR UPDATE SKIP LOCKED`: processes share the work) and
re-applies them idempotently: a tombstone at the row's version (never a stored body: a newer
write may have committed since), a bump of its families, its MES event announced again (the
stream skips an event it already has). A row whose repair fails stays for the next tick.

A retry that takes a path doing no cache work (an idempotent replay, a 409) repairs the rows of
its entry itself, waiting for any process repairing them now, before it answers (`repair`).

A process whose breaker opened (Redis paused, restarted, unreachable from it) replays every
pending row, whatever its age, in its breaker's probe, before it reads from Redis again
(`replay`, added to `Cache.recovery`): writes acknowledged meanwhile, by any process,
reach Redis before this process trusts it. So an outage costs no epoch bump and no cold cache.
"""

import asyncio
import logging
import os
import random
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from orderflow.cache import Cache, Entity, Key
from orderflow.data.base import UpkeepTable
from orderflow.kit import metrics
from orderflow.kit.settings import Settings
from orderflow.kit.tasks import background, every_until
from orderflow.service_cache.facade import PUT_WITHIN_S, ServiceCache
from orderflow.service_cache.journal_rows import Model, UpkeepRepository, any_due
from orderflow.service_cache.replay import Replay
from orderflow.service_cache.tracing import repairing
from orderflow.service_cache.upkeep import (
    AppliedIds,
    Coalescer,
    Upkeep,
    Written,
    decode_key,
    encode_key,
    union,
)

log = logging.getLogger(__name__)
Republish = Callable[[str, dict[str, Any]], Awaitable[bool]]  # (event type, order) -> announced
# Rows per repair transaction: its row locks are held through the rows' Redis calls, and a
# 409 repairing one of them waits for them; small batches keep that wait short.
BATCH = 20
BATCHES_PER_TICK = 50
LOCK_WAIT_MS = 1000  # a 409 or a replay of one entry waits this long at most for a repair
# A put leaves within PUT_WITHIN_S of its commit (`ServiceCache`), and its writer looks again no
# sooner than this: any older put sent before a newer write's recheck has landed by then.
RECHECK_AFTER_S = 2 * PUT_WITHIN_S
RECHECK_FOR_S = 10.0  # a look that failed (Redis down) is tried again this long, then dropped


def exit_now() -> None:
    """What `ORDERFLOW_CRASH_AFTER_COMMIT` does: die like kill -9, nothing flushed or closed."""
    sys.stderr.write("orderflow: crash after commit (ORDERFLOW_CRASH_AFTER_COMMIT)\n")
    os._exit(137)


def _closed(cache: Cache) -> bool:
    return cache.breaker_state == "closed"


class UpkeepJournal:
    """One database's journal, as one process uses it (through its domain's context)."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        model: Model,
        cache: ServiceCache,
        entities: Iterable[Entity],
        settings: Settings,
        *,
        database: str,
        republish: Republish | None = None,
    ) -> None:
        self.sessions = sessions
        self.model = model
        self.cache = cache
        self.entities = {entity.name: entity for entity in entities}
        self.republish = republish
        self.database = database
        self.repair_after_s = settings.upkeep_repair_after_s
        self.repair_every_s = settings.upkeep_repair_every_s
        self.flush_every_s = settings.upkeep_flush_every_s
        self.crash_after_commit = settings.crash_after_commit
        self.crash: Callable[[], None] = exit_now
        self.applied_ids = AppliedIds()  # to delete
        self.rechecks = AppliedIds()  # deleted, to look at again (`RECHECK_AFTER_S`)
        self._flusher = False  # applied ids are kept only while a flusher deletes them
        self._repairs = Coalescer(self._repair_now)
        # What a breaker's probe re-applies before Redis is read again (`replay.py`).
        self.replay = Replay(sessions, model, self._apply, database)

    async def record(self, session: AsyncSession, upkeep: Upkeep) -> int:
        """Journal `upkeep` in the transaction of `session`; returns the row's id."""
        return await UpkeepRepository(session, self.model).record(upkeep)

    def crash_point(self) -> None:
        """Right after a commit with upkeep, before it runs: tests may kill the process here."""
        if self.crash_after_commit > 0 and random.random() < self.crash_after_commit:
            self.crash()

    def applied(self, row_id: int, written: Written) -> None:
        """The upkeep of `row_id` (which wrote `written`) fully applied: delete its row with the
        next batch, and look at its entry again a moment later (`flush`)."""
        if self._flusher:
            self.applied_ids.add(row_id, written)

    async def flush(self, recheck_after_s: float = RECHECK_AFTER_S) -> None:
        """Delete the rows of applied upkeep, in one statement; then look again at the entries
        of those applied `recheck_after_s` ago, in one round trip (a failed look is retried
        for `RECHECK_FOR_S`)."""
        if rows := self.applied_ids.take():
            try:
                async with self.sessions() as session, session.begin():
                    repository = UpkeepRepository(session, self.model, background=True)
                    await repository.delete([row_id for row_id, _, _ in rows])
            except Exception as exc:  # noqa: BLE001  a database outage: keep them for the next try
                log.warning(
                    "could not delete %d applied upkeep rows, will retry: %s", len(rows), exc
                )
                self.applied_ids.give_back(rows)
                rows = []
            self.rechecks.give_back(rows)
        if due := self.rechecks.take(recheck_after_s):
            checked = await self.cache.recheck([written for _, written, _ in due])
            recent = time.monotonic() - RECHECK_FOR_S
            self.rechecks.give_back(
                row for row, ok in zip(due, checked, strict=True) if not ok and row[2] > recent
            )

    async def pending(self, session: AsyncSession, entity: Entity, key: Key) -> bool:
        """Whether the entry has upkeep rows left, in the transaction of `session` (one cheap
        statement; usually False: a row lives about 0.2 s when its upkeep applies)."""
        return await UpkeepRepository(session, self.model).pending(entity.name, encode_key(key))

    async def repair(self, entity: Entity, key: Key) -> int:
        """Re-apply the pending upkeep of one entry now (a replay or a 409 is about to answer:
        the state it shows must be cached right). Waits for a process repairing those rows
        meanwhile, up to `LOCK_WAIT_MS`; after that, it answers and leaves them to that process.
        Callers in this process at the same time share repairs (`Coalescer`)."""
        return await self._repairs((entity.name, encode_key(key)))

    async def _repair_now(self, entry: tuple[str, str]) -> int:
        try:
            async with self.sessions() as session, session.begin():
                repository = UpkeepRepository(session, self.model)
                rows = await repository.lock_entry(*entry, wait_ms=LOCK_WAIT_MS)
                done = await self._apply(rows)
                await repository.delete(done)
        except DBAPIError as exc:
            if not UpkeepRepository.lock_timed_out(exc):
                raise
            log.warning("upkeep of %s %s is being repaired elsewhere: not waited", *entry)
            return 0
        metrics.UPKEEP_REPAIRED.labels(self.database, "retry").inc(len(done))
        return len(done)

    async def tick(self) -> int:
        """One round of the worker: repair the rows left for `repair_after_s`; how many."""
        if not await self._cache_usable() or not await any_due(self.sessions, self.repair_after_s):
            return 0
        repaired = await self._repair_due(self.repair_after_s, BATCHES_PER_TICK)
        metrics.UPKEEP_REPAIRED.labels(self.database, "worker").inc(repaired)
        return repaired

    async def _repair_due(self, older_than_s: float, batches: int) -> int:
        """Repair the rows left for `older_than_s`, in batches, oldest first; how many."""
        repaired = 0
        for _ in range(batches):
            async with self.sessions() as session, session.begin():
                repository = UpkeepRepository(session, self.model, background=True)
                rows = await repository.lock_due(older_than_s, BATCH)
                done = await self._apply(rows)
                await repository.delete(done)
            repaired += len(done)
            if len(rows) < BATCH or len(done) < len(rows):
                break
        return repaired

    async def _cache_usable(self) -> bool:
        """While the breaker is not closed, let its probe through (an idle process recovers by
        itself: the probe replays the journal); repair once some shard's breaker is closed."""
        cache = self.cache.cache
        if cache is None or not cache.enabled or _closed(cache):
            return True
        await cache.health()
        return cache.partly_usable

    async def _apply(self, rows: Sequence[UpkeepTable]) -> list[int]:
        """Re-apply `rows` idempotently; the ids of those that fully applied (rows this process
        applied itself and has not deleted yet are done already)."""
        done = [row.id for row in rows if row.id in self.applied_ids]
        rows = [row for row in rows if row.id not in self.applied_ids]
        if not rows:
            return done
        ok: dict[int, bool] = {}  # BATCH at a time, concurrently: a replay may have hundreds
        for part in (rows[i : i + BATCH] for i in range(0, len(rows), BATCH)):
            applied = await asyncio.gather(*map(self._tombstone, part))
            ok.update((row.id, a) for row, a in zip(part, applied, strict=True))
        if not await self.cache.bump(union(row.families for row in rows)):
            cache = self.cache.cache
            if cache is None or not cache.cluster:
                return done
            # A cluster: one shard failing must not hold back the rows of the others.
            for row in rows:
                ok[row.id] = ok[row.id] and await self.cache.bump(list(row.families))
        for row in rows:
            if ok[row.id] and row.event:
                ok[row.id] = await self._announce(row)
        return done + [row_id for row_id, applied in ok.items() if applied]

    async def _tombstone(self, row: UpkeepTable) -> bool:
        entity = self.entities.get(row.entity)
        if entity is None:  # nothing here can apply it: drop it rather than retry forever
            log.error("cache upkeep row %d names unknown entity %r: dropped", row.id, row.entity)
            return True
        with repairing(row.entity, row.traceparent) as span:
            done = await self.cache.invalidate(entity, decode_key(row.key), row.version)
            if span is not None:
                span.set_attribute("cache.outcome", "applied" if done else "failed")
        return done

    async def _announce(self, row: UpkeepTable) -> bool:
        if self.republish is None or row.event is None or row.body is None:
            return True
        return await self.republish(row.event, row.body)

    @asynccontextmanager
    async def running(self, *, repair: bool = True) -> AsyncIterator[None]:
        """The flusher (and with `repair`, the worker) until the block ends. Stopping lets a
        round in progress finish (no transaction is cancelled midway), then deletes once more."""
        stop = asyncio.Event()
        loops: list[tuple[Callable[[], Awaitable[None]], float]] = [
            (self.flush, self.flush_every_s)
        ]
        if repair:
            loops.append((self._tick_logged, self.repair_every_s))
        tasks = [
            background(every_until(every, work, stop), f"upkeep:{self.database}")
            for work, every in loops
        ]
        self._flusher = True
        if repair and self.cache.cache is not None:
            self.cache.cache.recovery.add(self.replay)
        try:
            yield
        finally:
            if repair and self.cache.cache is not None:
                self.cache.cache.recovery.remove(self.replay)
            stop.set()
            await asyncio.gather(*tasks, return_exceptions=True)
            await self.flush(recheck_after_s=0.0)
            self._flusher = False

    async def _tick_logged(self) -> None:
        try:
            await self.tick()
        except Exception as exc:  # noqa: BLE001  a database outage must not end the worker
            log.warning("cache upkeep repair failed, will retry: %s", exc)
