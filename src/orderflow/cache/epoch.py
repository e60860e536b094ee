"""Epochs: a counter in every key of a namespace, so one INCR makes all its entries unreachable.

On a Redis Cluster each slot has its own epoch (`layout`), on one node there is one. Each
process keeps the epoch it believes in per slot; every script reply that touches an entry checks
that belief in the same round trip and, if it is out of date, hands back the current value.
When a breaker closes after an outage its probe bumps the epochs of its shard first, so no entry
written before the outage (possibly missing an invalidation it could not receive) is served
again (rule 5).

Epochs only move forward. A missing key (an empty restart, an eviction) starts again from the
server's clock in milliseconds, above any epoch counted up before (`scripts.FRESH`); an epoch
found below what its caller believed (a replica promoted before it received the last bump) is
moved past that belief. So no entry left from an earlier epoch of the same number is served.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import RedisClusterException, RedisError

from orderflow.cache.errors import CacheProtocolError
from orderflow.cache.layout import Layout
from orderflow.cache.scripts import CURRENT_EPOCH, NEW_EPOCH, Call, Scripts

log = logging.getLogger(__name__)


class Epochs:
    """This process's view of a namespace's epoch keys, one per slot."""

    def __init__(
        self, redis: Redis | RedisCluster, namespace: str, layout: Layout, scripts: Scripts
    ) -> None:
        self.namespace = namespace
        self.layout = layout
        self._values: dict[int, int] = {}  # a missing slot is a guess of 0: replies correct it
        self._moves = 0
        self._scripts = scripts
        self._new_epoch = redis.register_script(NEW_EPOCH)
        self._current_epoch = redis.register_script(CURRENT_EPOCH)

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

    async def sync(self, chunk: int = 512) -> None:
        """Learn every slot's epoch (starting those Redis has none of) and believe them: on a
        cluster in pipelines of `chunk` slots, so that other calls are not held up for long."""
        slots = list(self.layout.slots())
        if len(slots) == 1:
            self.adopt(slots[0], int(await self._current_epoch(keys=[self.key(slots[0])])))
            return
        for start in range(0, len(slots), chunk):
            part = [s for s in slots[start : start + chunk] if not self.known(s)]
            calls = [self.learn_call(slot) for slot in part]
            for slot, value in zip(part, await self._scripts.pipelined(calls), strict=True):
                self.adopt(slot, int(value))

    async def sync_quietly(self) -> None:
        """`sync`, in the background: a failure is logged; replies correct guesses anyway."""
        try:
            await self.sync()
        except (RedisError, RedisClusterException, OSError) as exc:
            log.warning("cache %s: epochs not learnt at start: %r", self.namespace, exc)

    async def bump(self, slots: Iterable[int] | None = None) -> None:
        """Start a new epoch in `slots` (default: all): every entry there becomes unreachable."""
        chosen = list(self.layout.slots() if slots is None else slots)
        calls: list[Call] = [(self._new_epoch, [self.key(s)], [self.value(s)]) for s in chosen]
        if len(calls) == 1:
            replies = [await self._new_epoch(keys=calls[0][1], args=calls[0][2])]
        else:
            replies = await self._scripts.pipelined(calls)
        for slot, value in zip(chosen, replies, strict=True):
            self.adopt(slot, int(value))
        log.info("cache epochs of %s bumped in %d slot(s)", self.namespace, len(chosen))

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
