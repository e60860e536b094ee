"""Entry operations on Redis: one round trip each, through the guard. Raises `CacheError`.

Reads pin their epoch: a fill goes to the key its lookup used, in the epoch seen *before* the
database load, so a fill can never carry a pre-outage value into a new epoch. Writes (put,
invalidate, delete) follow the current epoch instead: they must reach the entries readers see.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from typing import Any, Literal, NamedTuple, cast

from redis.commands.core import AsyncScript
from redis.typing import EncodableT

from orderflow.cache import entry
from orderflow.cache.epoch import Epoch
from orderflow.cache.guard import Guard
from orderflow.cache.keys import Entity, Key, KeySpace
from orderflow.cache.metrics import EntityMetrics
from orderflow.cache.scripts import Scripts


class Miss(enum.Enum):
    """Why a lookup found no value, and what the caller should do about it."""

    LEASED = "leased"  # this caller holds the lease: load, fill, release
    BUSY = "busy"  # another caller holds it: wait for its fill
    MOVED = "moved"  # the epoch moved (now adopted): load, but do not fill the old key


class ViewHit(NamedTuple):
    """A view's stored entry, and its members' (None: missing or a tombstone) if asked for."""

    raw: bytes
    members: list[bytes | None]


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

    async def peek(self, m: EntityMetrics, epoch: int, key: str) -> bytes | Miss | None:
        """The payload at `key`, None if missing or a tombstone: the hit path, no Lua.

        One MGET reads the epoch and the entry at the same instant, so the epoch check is the
        lookup script's, for the price of a plain read. A miss takes no lease: the caller goes
        on to `lookup`, one more round trip, but only when it is going to load anyway.
        """
        current, raw = cast(
            list[bytes | None],
            await self._guard.run(
                m, "peek", lambda: self._scripts.redis.mget(self.keys.epoch, key)
            ),
        )
        if int(current or 0) != epoch:
            self.epoch.adopt(int(current or 0))
            return Miss.MOVED
        return (entry.body(raw) if raw else None) or None  # b"" is a tombstone's

    async def lookup(self, m: EntityMetrics, epoch: int, key: str, token: str) -> bytes | Miss:
        """The stored entry at `key`, or a `Miss`; with a `token`, a miss claims the lease."""
        keys = [self.keys.epoch, key, self.keys.lease(key)]
        args: list[EncodableT] = [epoch, token, self._lease_ms]
        reply = await self._guard.run(m, "lookup", lambda: self._scripts.lookup(keys, args))
        if isinstance(reply, bytes):
            return reply
        if isinstance(reply, list):
            self.epoch.adopt(int(reply[0]))
            return Miss.MOVED
        return Miss.LEASED if reply == 1 else Miss.BUSY

    async def lookup_many(
        self, m: EntityMetrics, epoch: int, keys: Sequence[str]
    ) -> list[bytes | None] | Literal[Miss.MOVED]:
        """The stored data entry at each of `keys` (None: missing or a tombstone), no leases."""
        script_keys, args = [self.keys.epoch, *keys], [epoch]
        reply = await self._guard.run(
            m, "lookup_many", lambda: self._scripts.lookup_many(script_keys, args)
        )
        if isinstance(reply[0], int):  # {epoch}: entries come back as bytes or None
            self.epoch.adopt(reply[0])
            return Miss.MOVED
        return list(reply)

    async def lookup_view(
        self,
        m: EntityMetrics,
        epoch: int,
        entity: Entity,
        key: Key,
        families: Sequence[str],
        members: Entity | None = None,
    ) -> ViewHit | str | Literal[Miss.MOVED]:
        """A view's entry under its families' current generations, in one round trip, with
        its members' entries if `members` is given (the view body's "ids" are their keys).

        A miss (or a tombstone) returns the key to load into: the generations it was built
        from are the ones the fill must use, even if a writer bumps them meanwhile.
        """
        head, tail = self.keys.view_entry(entity, epoch, key)
        member_head = self.keys.member_head(members, epoch) if members else ""
        script_keys = [self.keys.epoch, *(self.keys.generation(epoch, f) for f in families)]
        args: list[EncodableT] = [epoch, head, tail, member_head]
        reply = await self._guard.run(
            m, "lookup_view", lambda: self._scripts.lookup_view(script_keys, args)
        )
        if isinstance(reply[0], bytes):
            return ViewHit(reply[0], reply[1:])
        if len(reply) == 1:
            self.epoch.adopt(int(reply[0]))
            return Miss.MOVED
        return str(reply[1], "utf-8")

    async def fill(
        self, m: EntityMetrics, epoch: int, key: str, version: int, payload: bytes, ttl_ms: int
    ) -> None:
        """Compare-and-set after a miss, in the lookup's epoch (counted: stored/stale/epoch)."""
        keys = [self.keys.epoch, key]
        args: list[EncodableT] = [epoch, version, entry.encode(version, payload), ttl_ms]
        reply = await self._guard.run(m, "fill", lambda: self._scripts.fill(keys, args))
        self._count_fill(m, reply)

    async def fill_many(
        self, m: EntityMetrics, epoch: int, fills: Sequence[tuple[str, int, bytes, int]]
    ) -> None:
        """`fill` for several `(key, version, payload, ttl_ms)`, pipelined in one round trip.

        Each fill is its own compare-and-set, counted on its own.
        """
        calls: list[tuple[list[str], list[EncodableT]]] = [
            ([self.keys.epoch, key], [epoch, version, entry.encode(version, payload), ttl_ms])
            for key, version, payload, ttl_ms in fills
        ]
        replies = await self._guard.run(
            m, "fill_many", lambda: self._scripts.pipelined(self._scripts.fill, calls)
        )
        for reply in replies:
            self._count_fill(m, reply)

    async def release(self, m: EntityMetrics, key: str, token: str) -> None:
        """Give the lease on `key` back, if it is still ours (it may have expired meanwhile)."""
        keys, args = [self.keys.lease(key)], [token]
        await self._guard.run(m, "release", lambda: self._scripts.release(keys, args))

    async def put(
        self, m: EntityMetrics, entity: Entity, key: Key, version: int, payload: bytes, ttl_ms: int
    ) -> None:
        """Write-through compare-and-set in the current epoch (counted: stored/stale)."""
        args: list[EncodableT] = [version, entry.encode(version, payload), ttl_ms]
        reply = await self._current(m, "put", self._scripts.fill, entity, key, args)
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

    def _count_fill(self, m: EntityMetrics, reply: Any) -> None:
        if isinstance(reply, list):  # the lookup's epoch is over: the value stays out
            self.epoch.adopt(int(reply[0]))
            outcome = "epoch"
        else:
            outcome = "stored" if reply == 1 else "stale"
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

        async def attempt(epoch: int) -> Any:
            keys = [self.keys.epoch, self.keys.entry(entity, epoch, key)]
            return await script(keys, [epoch, *args])

        return await self._guard.run(m, op, lambda: self.epoch.write(attempt))
