"""What a cache does before it trusts Redis: at start, and in every breaker probe.

Rule 5: healed partitions serve nothing old, and a blip empties nothing. So after an outage:
1. the server is checked (`Epochs.check_server`): only if it lost data (a restart, a promoted
   replica) do the shard's epochs move, once for every process;
2. the recovery callbacks run (`Recovery.add`): the service replays the writes Redis missed
   meanwhile (its upkeep journal), with the shard's breaker passed by their own calls
   (`guard._RECOVERING`);
and only then is the shard read again. A pause or a timeout moves no epoch: the cache is as
warm afterwards as before.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Awaitable, Callable

from redis.exceptions import RedisClusterException, RedisError

from orderflow.cache.epoch import Epochs
from orderflow.cache.errors import CacheError, CacheRecoveryError, translate
from orderflow.cache.guard import PROBE_TIMEOUT_S, Guard
from orderflow.cache.layout import UNKNOWN
from orderflow.cache.metrics import for_entity

log = logging.getLogger(__name__)
Callback = Callable[[], Awaitable[object]]


class Recovery:
    """The server checks and recovery callbacks of one `Cache`."""

    def __init__(self, epochs: Epochs, timeout_s: float) -> None:
        self._epochs = epochs
        self._layout = epochs.layout
        self._timeout_s = timeout_s
        self._callbacks: list[Callback] = []
        self.unkept: set[str] = set()  # shards whose writes were skipped: a new epoch is due
        self._checking: asyncio.Task[None] | None = None

    def add(self, callback: Callback) -> None:
        """Run `callback()` in every breaker probe, after the server check and before the
        shard is used again: it re-applies the writes Redis missed (the service's upkeep
        journal). Its own cache calls pass the breaker. If it raises, the probe fails."""
        self._callbacks.append(callback)

    def remove(self, callback: Callback) -> None:
        """Stop running `callback` in probes (its service is stopping)."""
        if callback in self._callbacks:
            self._callbacks.remove(callback)

    async def check(self, shard: str) -> None:
        """Check the server serving `shard` now (`Epochs.check_shard`). Raises redis errors."""
        await self._epochs.check_shard(shard)

    async def start(self, guard: Guard, namespace: str) -> None:
        """One node: `check` it now (if Redis does not answer, the first script reply corrects
        the epoch guessed, and the first probe checks the server). A cluster: its topology now,
        every shard checked in the background (reads learn a slot's epoch on its first use
        anyway, and a put pinned to a slot learnt after its writer's commit could not prove
        that no bump came in between: see docs/scaling.md)."""
        if not self._layout.cluster:
            check = functools.partial(self.check, self._layout.shards()[0])
            with contextlib.suppress(CacheError):
                await guard.run(for_entity("epoch"), "epoch", check)
            return
        try:
            async with asyncio.timeout(10):
                await self._layout.start()
        except (RedisError, RedisClusterException, OSError) as exc:
            # Not `ready`: the guard refuses every call and learns it; then every shard is
            # probed (checked, the journal replayed) before use, which this check would do.
            log.warning("cache %s: no topology learnt at start: %r", namespace, exc)
            return
        self._checking = asyncio.create_task(self._check_all(), name=f"epochs:{namespace}")

    def learnt(self) -> None:
        """The cluster's topology was learnt late: writes skipped while it was unknown are
        owed a new epoch in every shard, now that the shards have names."""
        if UNKNOWN in self.unkept:
            self.unkept.discard(UNKNOWN)
            self.unkept.update(self._layout.shards())

    async def checked(self) -> None:
        """Wait until `start`'s background checks of a cluster's shards are done."""
        if self._checking is not None:
            await self._checking

    async def _check_all(self, attempts: int = 10) -> None:
        for shard in self._layout.shards():
            for attempt in range(attempts):
                try:
                    async with asyncio.timeout(PROBE_TIMEOUT_S):
                        await self.check(shard)
                    break
                except (RedisError, RedisClusterException, OSError) as exc:
                    log.warning("cache: %s not checked (try %d): %r", shard, attempt + 1, exc)
                    await asyncio.sleep(1.0)

    async def follow_source(self, source: str) -> bool:
        """`Epochs.follow`: forget every entry when the source of truth's generation changed
        (a database failover may have dropped commits that reads had already cached)."""
        return await self._epochs.follow(source)

    async def probe(self, shard: str) -> None:
        """The half-open probe's first step: new epochs for `shard`'s slots only if its server
        lost data (or writes skipped it), then the recovery callbacks. Raises `CacheError`."""
        slots = self._layout.shard_slots(shard)
        check_s = PROBE_TIMEOUT_S if self._layout.cluster else self._timeout_s
        try:
            async with asyncio.timeout(check_s):
                if shard in self.unkept:
                    await self._epochs.bump(slots)
                    self.unkept.discard(shard)
                await self.check(shard)
        except (RedisError, RedisClusterException, OSError) as exc:
            raise translate(exc, shard) from exc
        for callback in self._callbacks:
            try:
                await callback()
            except CacheError:
                raise
            except Exception as exc:
                raise CacheRecoveryError(f"{type(exc).__name__}: {exc}", shard) from exc
