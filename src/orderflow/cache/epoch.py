"""Epochs: a counter in every key of a namespace, so one INCR makes all its entries unreachable.

On a Redis Cluster each slot has its own epoch (`layout`), on one node there is one. Each
process keeps the epoch it believes in per slot; every script reply that touches an entry checks
that belief in the same round trip and, if it is out of date, hands back the current value.

An epoch moves only when Redis lost data (rule 5), as the server itself shows it:
- an empty restart loses the epoch key (it has no TTL, so no `volatile-*` eviction takes it):
  the next script re-creates it above every value it had (`lua_epochs.FRESH`, the caller's belief);
- a restart that kept a snapshot, or a replica promoted in its master's place, serves the slot
  under another run id than the one marked there: the first process to see it moves the epoch,
  once for all processes (`check_server`, run by every breaker probe).
A pause, a timeout or a slow probe moves nothing: writes that could not reach Redis meanwhile are
replayed from the upkeep journal instead, and the cache stays as warm as it was.

Epochs only move forward: an epoch found below what its caller believed (a replica promoted
before it received the last bump) is moved past that belief. So no entry left from an earlier
epoch of the same number is served.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.commands.core import AsyncScript
from redis.typing import EncodableT

from orderflow.cache.errors import CacheProtocolError
from orderflow.cache.layout import Layout
from orderflow.cache.lua_epochs import CHECK_SERVER, CURRENT_EPOCH, NEW_EPOCH
from orderflow.cache.scripts import Call, Scripts

log = logging.getLogger(__name__)
CHUNK = 512  # slots per pipelined round trip when a cluster's are checked


class Epochs:
    """This process's view of a namespace's epoch keys, one per slot."""

    def __init__(
        self, redis: Redis | RedisCluster, namespace: str, layout: Layout, scripts: Scripts
    ) -> None:
        self.namespace = namespace
        self.layout = layout
        self._redis = redis
        # shard -> (its masters, their run id) when all its slots were last checked here
        self._checked: dict[str, tuple[tuple[str, ...], str]] = {}
        self._values: dict[int, int] = {}  # a missing slot is a guess of 0: replies correct it
        self._moves = 0
        self._scripts = scripts
        self._new_epoch = redis.register_script(NEW_EPOCH)
        self._current_epoch = redis.register_script(CURRENT_EPOCH)
        self._check_server = redis.register_script(CHECK_SERVER)

    def key(self, slot: int) -> str:
        return self.layout.epoch_key(self.namespace, slot)

    def value(self, slot: int) -> int:
        return self._values.get(slot, 0)

    def known(self, slot: int) -> bool:
        """Whether this process learnt `slot`'s epoch yet (else `value` is a guess of 0)."""
        return slot in self._values

    def learn_call(self, slot: int) -> Call:
        """The call that reads `slot`'s epoch (starting one if Redis has none)."""
        return self._current_epoch, [self.key(slot)], []

    @property
    def mark(self) -> int:
        """Changes whenever this process adopts a new epoch in any slot (on one node, the epoch
        itself). A writer notes it before committing: if it is unchanged at the put, the put's
        slot still has the epoch the writer saw."""
        return self._values.get(0, 0) if not self.layout.cluster else self._moves

    def adopt(self, slot: int, value: int) -> None:
        """Believe `value` for `slot` from now on (reported by Redis, so it is the truth).
        Learning a slot's epoch for the first time is no move (`mark` stays)."""
        if value != self._values.get(slot, 0):
            if not self.layout.cluster:
                log.info("cache epoch %s: %d -> %d", self.key(slot), self.value(slot), value)
            self._moves += slot in self._values
            self._values[slot] = value

    async def bump(self, slots: Iterable[int] | None = None) -> None:
        """Start a new epoch in `slots` (default: all): every entry there becomes unreachable."""
        chosen = list(self.layout.slots() if slots is None else slots)
        await self._adopt_each(self._new_epoch, chosen, lambda s: [self.key(s)])
        log.info("cache epochs of %s bumped in %d slot(s)", self.namespace, len(chosen))

    async def follow(self, source: str) -> bool:
        """Follow the generation of the entries' source of truth (a database's timeline): when
        it differs from the one recorded for this namespace, every entry becomes unreachable (a
        new epoch in every slot), then `source` is recorded; whether that happened. The first
        generation seen is recorded alone. Recorded only after the move: a process that dies
        between the two leaves the move to the next one, never to nobody."""
        key = self.key(0) + ":source"
        found = await self._redis.get(key)
        recorded = found.decode() if isinstance(found, bytes) else found
        if recorded == source:
            return False
        if recorded is not None:
            log.warning("cache %s: source now %s, was %s", self.namespace, source, recorded)
            await self.bump()
        await self._redis.set(key, source)
        return recorded is not None

    async def check_server(self, slots: Iterable[int]) -> None:
        """Check the server serving each of `slots` now (its run id, read by the script): if
        another server held the slot when last checked, its data may be lost, so its epoch moves
        (once, whichever process sees it first); adopt what each slot's epoch is now."""
        await self._adopt_each(self._check_server, list(slots), self._check_keys)

    async def check_shard(self, shard: str) -> None:
        """`check_server` for every slot of `shard`, unless this process checked them all
        against the same server as now (its masters and their run id unchanged): then no slot
        can have lost data since, and the thousands of per-slot checks of a cluster's shard
        are spared. Every probe used to repeat them; under load, with several processes
        probing after a partition, probes that each took seconds of CPU failed on their
        budget and were tried again, and the shard never recovered (tests/multihost)."""
        slots = self.layout.shard_slots(shard)
        masters = tuple(sorted(set(self.layout.masters(shard))))
        server = (masters, await self.layout.run_id(self._redis, slots[0]))
        if len(masters) <= 1 and self._checked.get(shard) == server:
            return
        await self.check_server(slots)
        self._checked[shard] = server

    async def _adopt_each(
        self, script: AsyncScript, slots: list[int], keys_of: Callable[[int], list[str]]
    ) -> None:
        """Run `script` (keys `keys_of(slot)`, the belief as its argument) for each of `slots`
        and adopt each reply: one slot alone, else pipelined `CHUNK` slots at a time, so that
        other calls are not held up for long."""
        if len(slots) == 1:
            args: list[EncodableT] = [self.value(slots[0])]
            self.adopt(slots[0], int(await script(keys=keys_of(slots[0]), args=args)))
            return
        for start in range(0, len(slots), CHUNK):
            part = slots[start : start + CHUNK]
            calls: list[Call] = [(script, keys_of(s), [self.value(s)]) for s in part]
            for slot, value in zip(part, await self._scripts.pipelined(calls), strict=True):
                self.adopt(slot, int(value))

    def _check_keys(self, slot: int) -> list[str]:
        return [self.key(slot), self.key(slot) + ":server"]

    async def write(self, slot: int, attempt: Callable[[int], Awaitable[Any]]) -> Any:
        """Run a write script at the believed epoch of `slot`; if the reply says the epoch
        moved (a one-element list), adopt it and run once more. Writes must land in the current
        epoch, or an invalidation would miss the entries that readers actually see."""
        for _ in range(2):
            reply = await attempt(self.value(slot))
            if not isinstance(reply, list):
                return reply
            self.adopt(slot, int(reply[0]))
        raise CacheProtocolError(f"{self.key(slot)} moved twice during one write")
