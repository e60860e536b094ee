"""Entry operations on Redis: one round trip each, through the guard. Raises `CacheError`.

Reads pin their epoch: a fill goes to the key its lookup used, in the epoch seen *before* the
database load, so a fill can never carry a pre-outage value into a new epoch. A lookup that
misses grants a lease in the same round trip, and a fill lands only with it: a write revokes
the lease, so a reader that loaded before the write cannot fill. Writes (invalidate, delete)
follow the current epoch: they must reach the entries readers see. A put may be pinned to the
epoch its writer saw before committing; if that epoch is over, it writes a tombstone instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from redis.commands.core import AsyncScript
from redis.typing import EncodableT

from orderflow.cache import entry
from orderflow.cache.epoch import Epochs
from orderflow.cache.errors import CacheError
from orderflow.cache.found import (
    Busy,
    Fill,
    Found,
    Miss,
    Pinned,
    by_slot,
    entry_found,
    text,
)
from orderflow.cache.guard import Guard
from orderflow.cache.keys import Entity, Key, KeySpace
from orderflow.cache.metrics import EntityMetrics
from orderflow.cache.scripts import Call, Scripts
from orderflow.cache.shards import Shards


class Store:
    """The Redis side of `Cache`."""

    def __init__(
        self,
        keys: KeySpace,
        epochs: Epochs,
        scripts: Scripts,
        guard: Guard,
        *,
        lease_ms: int,
        tombstone_ttl_ms: int,
    ) -> None:
        self.keys = keys
        self.epochs = epochs
        self.layout = epochs.layout
        self.scripts = scripts
        self.guard = guard
        self.shards = Shards(guard, scripts)
        self.lease_ms = lease_ms
        self.tombstone_ttl_ms = tombstone_ttl_ms

    async def pins(
        self, m: EntityMetrics, entity: Entity, keys: Sequence[Key], epoch: int | None = None
    ) -> list[Pinned]:
        """`pin` for each of `keys` (in `epoch` if given, else in their slots' learnt epochs)."""
        if epoch is None and self.layout.cluster:  # one node: `Cache.start` learnt its epoch
            await self.learn(m, {self._slot(entity, k) for k in keys})
        return [self.pin(entity, key, epoch) for key in keys]

    async def learn(self, m: EntityMetrics, slots: set[int]) -> None:
        """Learn the epochs of the `slots` this process has not used yet: a cluster's 16,384
        are learnt as they are used, one round trip per shard, once. Best effort: a slot not
        learnt keeps its guess of 0, which the lookup's epoch check corrects."""
        if unknown := [slot for slot in slots if not self.epochs.known(slot)]:
            calls = [(slot, self.epochs.learn_call(slot)) for slot in unknown]
            for slot, reply in zip(unknown, await self.shards.run(m, "epoch", calls), strict=True):
                if not isinstance(reply, CacheError):
                    self.epochs.adopt(slot, int(reply))

    def pin(self, entity: Entity, key: Key, epoch: int | None = None) -> Pinned:
        """`key`'s entry in the epoch this process believes its slot has (or in `epoch`)."""
        slot = self._slot(entity, key)
        epoch = self.epochs.value(slot) if epoch is None else epoch
        return Pinned(self.keys.entry(entity, epoch, key), slot, epoch)

    def _slot(self, entity: Entity, key: Key) -> int:
        return self.layout.slot(self.keys.entry(entity, 0, key)) if self.layout.cluster else 0

    async def lookup(
        self, m: EntityMetrics, pin: Pinned, token: str
    ) -> bytes | Literal[Miss.LEASED, Miss.MOVED] | Busy:
        """The stored entry at `pin`; on a miss, the lease for `token` or who holds it."""
        call = self.lookup_call(pin, token)
        reply = await self.guard.run(m, "lookup", lambda: call[0](call[1], call[2]), pin.slot)
        return self.looked_up(pin, reply)

    async def lookup_many(
        self, m: EntityMetrics, pins: Sequence[Pinned], token: str
    ) -> list[Found]:
        """The stored data entry at each of `pins`, or how it missed (leased to `token`, or
        busy: leased to another caller, or in a slot whose epoch moved or whose shard failed).
        One round trip per shard, the shards at once."""
        groups = by_slot(pins)
        calls = [(slot, self.lookup_many_call(group, token)) for slot, group in groups]
        replies = await self.shards.run(m, "lookup_many", calls)
        return self.found_many(pins, groups, replies)

    async def lease_many(self, m: EntityMetrics, pins: Sequence[Pinned], token: str) -> list[bool]:
        """Take the leases of `pins` for `token` where free, stored entries or not: whether
        each is ours. One round trip per shard; a failed shard's or moved epoch's are not."""
        groups = by_slot(pins)
        calls: list[tuple[int, Call]] = [
            (
                slot,
                (
                    self.scripts.lease_many,
                    self.lease_keys(g),
                    [g[0][1].epoch, token, self.lease_ms],
                ),
            )
            for slot, g in groups
        ]
        leased = [False] * len(pins)
        for (slot, group), reply in zip(
            groups, await self.shards.run(m, "lease", calls), strict=True
        ):
            if isinstance(reply, CacheError):
                continue
            if len(reply) == 1:  # {epoch}
                self.epochs.adopt(slot, int(reply[0]))
                continue
            for (i, _), got in zip(group, reply[1:], strict=True):
                leased[i] = got == 1
        return leased

    def lease_keys(self, group: list[tuple[int, Pinned]]) -> list[str]:
        """The epoch key of the group's slot, then the group's lease keys."""
        return [self.epochs.key(group[0][1].slot), *(self.keys.lease(p.key) for _, p in group)]

    async def fill(
        self, m: EntityMetrics, pin: Pinned, token: str, version: int, payload: bytes, ttl_ms: int
    ) -> None:
        """Compare-and-set after a miss, in the lookup's epoch, with the lookup's lease, which
        it releases (counted: stored/stale/epoch/lease)."""
        call = self.fill_call(pin, token, version, payload, ttl_ms)
        reply = await self.guard.run(m, "fill", lambda: call[0](call[1], call[2]), pin.slot)
        self.count_fill(m, pin.slot, reply)

    async def fill_many(
        self,
        m: EntityMetrics,
        token: str,
        fills: Sequence[Fill],
        releases: Sequence[Pinned] = (),
    ) -> int:
        """`fill` for several `(pin, version, payload, ttl_ms)` leased to `token`, and the
        leases on `releases` given back: one pipelined round trip per shard. Each fill is its
        own compare-and-set, counted on its own. How many were stored."""
        calls = [(f[0].slot, self.fill_call(f[0], token, f[1], f[2], f[3])) for f in fills]
        calls += [(p.slot, self._release_call(p, token)) for p in releases]
        replies = await self.shards.run(m, "fill_many", calls)
        for fill, reply in zip(fills, replies, strict=False):
            if not isinstance(reply, CacheError):
                self.count_fill(m, fill[0].slot, reply)
        return sum(1 for reply in replies[: len(fills)] if reply == 1)

    async def release(self, m: EntityMetrics, pin: Pinned, token: str) -> None:
        """Give the lease on `pin` back, if it is still ours (it may have expired meanwhile)."""
        call = self._release_call(pin, token)
        await self.guard.run(m, "release", lambda: call[0](call[1], call[2]), pin.slot)

    async def put(
        self,
        m: EntityMetrics,
        entity: Entity,
        key: Key,
        version: int,
        payload: bytes,
        ttl_ms: int,
        seen_mark: int | None = None,
    ) -> None:
        """Write-through compare-and-set (counted: stored/stale/epoch); revokes the lease.

        With `seen_mark` (`Epochs.mark` as its writer saw it before committing) the put lands
        only in the epoch its slot had then. If that epoch is over, a tombstone goes to the
        current one instead: a new epoch has no history to refuse an older version, so a
        delayed put must not carry its value there.
        """
        args: list[EncodableT] = [version, entry.encode(version, payload), ttl_ms]
        if seen_mark is None:
            reply = await self._current(m, "put", self.scripts.put, entity, key, args)
        else:
            pin = (await self.pins(m, entity, [key]))[0]
            reply = [pin.epoch]  # a move since the mark: as if the script had said so
            if self.epochs.mark == seen_mark:
                keys = [self.epochs.key(pin.slot), pin.key, self.keys.lease(pin.key)]
                reply = await self.guard.run(
                    m, "put", lambda: self.scripts.put(keys, [pin.epoch, *args]), pin.slot
                )
            if isinstance(reply, list):
                self.count_fill(m, pin.slot, reply)
                await self.invalidate(m, entity, key, version)
                return
        m.fills["stored" if reply == 1 else "stale"].inc()

    async def invalidate(self, m: EntityMetrics, entity: Entity, key: Key, version: int) -> None:
        """Tombstone the entry at `version` unless it already holds that version or newer."""
        args: list[EncodableT] = [version, entry.tombstone(version), self.tombstone_ttl_ms]
        await self._current(m, "invalidate", self.scripts.invalidate, entity, key, args)
        m.invalidations.inc()

    async def delete(self, m: EntityMetrics, entity: Entity, key: Key) -> None:
        """Remove the entry in the current epoch."""
        await self._current(m, "delete", self.scripts.delete, entity, key, [])
        m.invalidations.inc()

    def lookup_call(self, pin: Pinned, token: str) -> Call:
        keys = [self.epochs.key(pin.slot), pin.key, self.keys.lease(pin.key)]
        return self.scripts.lookup, keys, [pin.epoch, token, self.lease_ms]

    def lookup_many_call(self, group: list[tuple[int, Pinned]], token: str) -> Call:
        entries = [pin.key for _, pin in group]
        keys = [*self.epoch_keys(group), *(self.keys.lease(k) for k in entries)]
        return self.scripts.lookup_many, keys, [group[0][1].epoch, token, self.lease_ms]

    def epoch_keys(self, group: list[tuple[int, Pinned]]) -> list[str]:
        """The epoch key of the group's slot, then the group's keys."""
        return [self.epochs.key(group[0][1].slot), *(pin.key for _, pin in group)]

    def fill_call(self, pin: Pinned, token: str, version: int, payload: bytes, ttl_ms: int) -> Call:
        keys = [self.epochs.key(pin.slot), pin.key, self.keys.lease(pin.key)]
        args: list[EncodableT] = [pin.epoch, version, entry.encode(version, payload), ttl_ms]
        return self.scripts.fill, keys, [*args, token]

    def _release_call(self, pin: Pinned, token: str) -> Call:
        return self.scripts.release, [self.keys.lease(pin.key)], [token]

    def looked_up(self, pin: Pinned, reply: Any) -> bytes | Literal[Miss.LEASED, Miss.MOVED] | Busy:
        if isinstance(reply, bytes):
            return reply
        if reply == 1:
            return Miss.LEASED
        if len(reply) == 2:
            return Busy(text(reply[1]))
        self.epochs.adopt(pin.slot, int(reply[0]))
        return Miss.MOVED

    def found_many(
        self,
        pins: Sequence[Pinned],
        groups: list[tuple[int, list[tuple[int, Pinned]]]],
        replies: Sequence[Any],
    ) -> list[Found]:
        """Each entry's reply in `pins`' order. An entry whose slot's epoch moved (now adopted)
        or whose shard failed is busy: load it, do not fill it. Raises if every shard failed."""
        found: list[Found] = [Miss.BUSY] * len(pins)
        failed = [r for r in replies if isinstance(r, CacheError)]
        if failed and len(failed) == len(replies):
            raise failed[0]
        for (slot, group), reply in zip(groups, replies, strict=True):
            if isinstance(reply, CacheError):
                continue
            if len(reply) == 1:  # {epoch}: every other reply starts with a 0 and has entries
                self.epochs.adopt(slot, int(reply[0]))
                continue
            for (i, _), raw in zip(group, reply[1:], strict=True):
                found[i] = entry_found(raw)
        return found

    def count_fill(self, m: EntityMetrics, slot: int, reply: Any) -> None:
        if isinstance(reply, list):  # the lookup's epoch is over: the value stays out
            self.epochs.adopt(slot, int(reply[0]))
            outcome = "epoch"
        else:
            outcome = _FILL_OUTCOMES[reply]
        m.fills[outcome].inc()

    async def _current(
        self,
        m: EntityMetrics,
        op: str,
        script: AsyncScript,
        entity: Entity,
        key: Key,
        args: list[EncodableT],
    ) -> Any:
        """Run an entry script in the current epoch, following it if it moves meanwhile."""
        slot = self._slot(entity, key)

        async def attempt(epoch: int) -> Any:
            entry_key = self.keys.entry(entity, epoch, key)
            keys = [self.epochs.key(slot), entry_key, self.keys.lease(entry_key)]
            return await script(keys, [epoch, *args])

        return await self.guard.run(m, op, lambda: self.epochs.write(slot, attempt), slot)


_FILL_OUTCOMES = {0: "stale", 1: "stored", 2: "lease"}
