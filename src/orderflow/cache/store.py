"""Entry operations on Redis: one round trip each, through the guard. Raises `CacheError`.

Reads pin their epoch: a fill goes to the key its lookup used, in the epoch seen *before* the
database load, so a fill can never carry a pre-outage value into a new epoch. A lookup that
misses grants a lease in the same round trip, and a fill lands only with it: a write revokes
the lease, so a reader that loaded before the write cannot fill. Writes (invalidate, delete)
follow the current epoch: they must reach the entries readers see. A put may be pinned to the
epoch its writer saw before committing; if that epoch is over, it writes a tombstone instead.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from typing import Any, Literal, NamedTuple

from redis.commands.core import AsyncScript
from redis.typing import EncodableT

from orderflow.cache import entry
from orderflow.cache.epoch import Epoch
from orderflow.cache.guard import Guard
from orderflow.cache.keys import Entity, Key, KeySpace
from orderflow.cache.metrics import EntityMetrics
from orderflow.cache.scripts import Call, Scripts


class Miss(enum.Enum):
    """Why a lookup found no value, and what the caller should do about it."""

    LEASED = "leased"  # this caller holds the lease: load, fill (which releases it)
    BUSY = "busy"  # another caller holds it: load without filling, or wait for its fill
    MOVED = "moved"  # the epoch moved (now adopted): load, but do not fill the old key


class Busy(NamedTuple):
    """Another caller holds the lease: `holder` is its token ('' if it just went away)."""

    holder: str


Found = bytes | Literal[Miss.LEASED, Miss.BUSY]  # one entry of a batch lookup


class ViewHit(NamedTuple):
    """A view's stored entry, and its members' (bytes, or how they missed) if asked for."""

    raw: bytes
    members: list[Found]


class ViewMiss(NamedTuple):
    """A view not stored: the key to load into (its generations may move before the fill),
    and whether this caller got its lease."""

    key: str
    lease: Literal[Miss.LEASED] | Busy


class Store:
    """The Redis side of `Cache`."""

    def __init__(
        self,
        keys: KeySpace,
        epoch: Epoch,
        scripts: Scripts,
        guard: Guard,
        *,
        lease_ms: int,
        tombstone_ttl_ms: int,
    ) -> None:
        self.keys = keys
        self.epoch = epoch
        self._scripts = scripts
        self._guard = guard
        self._lease_ms = lease_ms
        self._tombstone_ttl_ms = tombstone_ttl_ms

    async def lookup(
        self, m: EntityMetrics, epoch: int, key: str, token: str
    ) -> bytes | Literal[Miss.LEASED, Miss.MOVED] | Busy:
        """The stored entry at `key`; on a miss, the lease for `token` or who holds it."""
        keys = [self.keys.epoch, key, self.keys.lease(key)]
        args: list[EncodableT] = [epoch, token, self._lease_ms]
        reply = await self._guard.run(m, "lookup", lambda: self._scripts.lookup(keys, args))
        if isinstance(reply, bytes):
            return reply
        if reply == 1:
            return Miss.LEASED
        if len(reply) == 2:
            return Busy(_text(reply[1]))
        self.epoch.adopt(int(reply[0]))
        return Miss.MOVED

    async def lookup_many(
        self, m: EntityMetrics, epoch: int, keys: Sequence[str], token: str
    ) -> list[Found] | Literal[Miss.MOVED]:
        """The stored data entry at each of `keys`, or how it missed (leased to `token`, or
        busy: leased to another caller)."""
        script_keys = [self.keys.epoch, *keys, *(self.keys.lease(k) for k in keys)]
        args: list[EncodableT] = [epoch, token, self._lease_ms]
        reply = await self._guard.run(
            m, "lookup_many", lambda: self._scripts.lookup_many(script_keys, args)
        )
        return self._many(reply)

    async def lookup_view(
        self,
        m: EntityMetrics,
        epoch: int,
        entity: Entity,
        key: Key,
        families: Sequence[str],
        token: str,
        members: Entity | None = None,
    ) -> ViewHit | ViewMiss | Literal[Miss.MOVED]:
        """A view's entry under its families' current generations, in one round trip, with
        its members' entries if `members` is given (the view body's "ids" are their keys).
        Missing entries, the view's or its members', are leased to `token` if free."""
        head, tail = self.keys.view_entry(entity, epoch, key)
        member_head = self.keys.member_head(members, epoch) if members else ""
        script_keys = [self.keys.epoch, *(self.keys.generation(epoch, f) for f in families)]
        args: list[EncodableT] = [epoch, token, self._lease_ms, head, tail, member_head]
        reply = await self._guard.run(
            m, "lookup_view", lambda: self._scripts.lookup_view(script_keys, args)
        )
        if isinstance(reply[0], bytes):
            return ViewHit(reply[0], [_found(r) for r in reply[1:]])
        if len(reply) == 1:
            self.epoch.adopt(int(reply[0]))
            return Miss.MOVED
        if reply[2] == 1:
            return ViewMiss(_text(reply[1]), Miss.LEASED)
        return ViewMiss(_text(reply[1]), Busy(_text(reply[2])))

    async def fill(
        self,
        m: EntityMetrics,
        epoch: int,
        key: str,
        token: str,
        version: int,
        payload: bytes,
        ttl_ms: int,
    ) -> None:
        """Compare-and-set after a miss, in the lookup's epoch, with the lookup's lease, which
        it releases (counted: stored/stale/epoch/lease)."""
        call = self._fill_call(epoch, key, token, version, payload, ttl_ms)
        reply = await self._guard.run(m, "fill", lambda: call[0](call[1], call[2]))
        self._count_fill(m, reply)

    async def fill_many(
        self,
        m: EntityMetrics,
        epoch: int,
        token: str,
        fills: Sequence[Fill],
        releases: Sequence[str] = (),
    ) -> None:
        """`fill` for several `(key, version, payload, ttl_ms)` leased to `token`, and the
        leases on `releases` given back, pipelined in one round trip. Each fill is its own
        compare-and-set, counted on its own."""
        calls = [self._fill_call(epoch, f[0], token, f[1], f[2], f[3]) for f in fills]
        calls += [(self._scripts.release, [self.keys.lease(key)], [token]) for key in releases]
        replies = await self._guard.run(m, "fill_many", lambda: self._scripts.pipelined(calls))
        for reply in replies[: len(fills)]:
            self._count_fill(m, reply)

    async def fill_then_lookup_many(
        self, m: EntityMetrics, epoch: int, token: str, fill: Fill, keys: Sequence[str]
    ) -> list[Found] | Literal[Miss.MOVED]:
        """A cold listing's middle round trip: the view's fill and its members' lookup."""
        script_keys = [self.keys.epoch, *keys, *(self.keys.lease(k) for k in keys)]
        lookup: Call = (self._scripts.lookup_many, script_keys, [epoch, token, self._lease_ms])
        key, version, payload, ttl_ms = fill
        calls = [self._fill_call(epoch, key, token, version, payload, ttl_ms), lookup]
        filled, found = await self._guard.run(
            m, "fill_many", lambda: self._scripts.pipelined(calls)
        )
        self._count_fill(m, filled)
        return self._many(found)

    async def release(self, m: EntityMetrics, key: str, token: str) -> None:
        """Give the lease on `key` back, if it is still ours (it may have expired meanwhile)."""
        keys, args = [self.keys.lease(key)], [token]
        await self._guard.run(m, "release", lambda: self._scripts.release(keys, args))

    async def put(
        self,
        m: EntityMetrics,
        entity: Entity,
        key: Key,
        version: int,
        payload: bytes,
        ttl_ms: int,
        seen_epoch: int | None = None,
    ) -> None:
        """Write-through compare-and-set (counted: stored/stale/epoch); revokes the lease.

        With `seen_epoch` (the epoch its writer saw before committing) the put lands only in
        that epoch. If it is over, a tombstone goes to the current one instead: a new epoch has
        no history to refuse an older version, so a delayed put must not carry its value there.
        """
        args: list[EncodableT] = [version, entry.encode(version, payload), ttl_ms]
        if seen_epoch is None:
            reply = await self._current(m, "put", self._scripts.put, entity, key, args)
        else:
            keys = [self.keys.epoch, *self._entry_keys(entity, seen_epoch, key)]
            reply = await self._guard.run(
                m, "put", lambda: self._scripts.put(keys, [seen_epoch, *args])
            )
            if isinstance(reply, list):
                self._count_fill(m, reply)
                await self.invalidate(m, entity, key, version)
                return
        m.fills["stored" if reply == 1 else "stale"].inc()

    async def invalidate(self, m: EntityMetrics, entity: Entity, key: Key, version: int) -> None:
        """Tombstone the entry at `version` unless it already holds that version or newer."""
        args: list[EncodableT] = [version, entry.tombstone(version), self._tombstone_ttl_ms]
        await self._current(m, "invalidate", self._scripts.invalidate, entity, key, args)
        m.invalidations.inc()

    async def delete(self, m: EntityMetrics, entity: Entity, key: Key) -> None:
        """Remove the entry in the current epoch."""
        await self._current(m, "delete", self._scripts.delete, entity, key, [])
        m.invalidations.inc()

    def _fill_call(
        self, epoch: int, key: str, token: str, version: int, payload: bytes, ttl_ms: int
    ) -> Call:
        keys = [self.keys.epoch, key, self.keys.lease(key)]
        args: list[EncodableT] = [epoch, version, entry.encode(version, payload), ttl_ms, token]
        return self._scripts.fill, keys, args

    def _many(self, reply: list[Any]) -> list[Found] | Literal[Miss.MOVED]:
        if len(reply) == 1:  # {epoch}: every other reply starts with a 0 and has entries
            self.epoch.adopt(int(reply[0]))
            return Miss.MOVED
        return [_found(r) for r in reply[1:]]

    def _count_fill(self, m: EntityMetrics, reply: Any) -> None:
        if isinstance(reply, list):  # the lookup's epoch is over: the value stays out
            self.epoch.adopt(int(reply[0]))
            outcome = "epoch"
        else:
            outcome = _FILL_OUTCOMES[reply]
        m.fills[outcome].inc()

    def _entry_keys(self, entity: Entity, epoch: int, key: Key) -> list[str]:
        entry_key = self.keys.entry(entity, epoch, key)
        return [entry_key, self.keys.lease(entry_key)]

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

        async def attempt(epoch: int) -> Any:
            keys = [self.keys.epoch, *self._entry_keys(entity, epoch, key)]
            return await script(keys, [epoch, *args])

        return await self._guard.run(m, op, lambda: self.epoch.write(attempt))


Fill = tuple[str, int, bytes, int]  # key, version, payload, ttl_ms
_FILL_OUTCOMES = {0: "stale", 1: "stored", 2: "lease"}


def _found(reply: Any) -> Found:
    if isinstance(reply, bytes):
        return reply
    return Miss.LEASED if reply == 1 else Miss.BUSY


def _text(reply: Any) -> str:
    return str(reply, "utf-8") if isinstance(reply, bytes) else ""
