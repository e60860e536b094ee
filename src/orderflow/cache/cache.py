"""`Cache`: cache-aside reads with single flight, batch reads, write-through, invalidation, views.

Rule 1 is kept here: nothing a Redis failure raises gets past a public method. Reads fall back
to the loader; writes return False, and a write that could not be made trips the breaker, whose
probe (`recovery`) replays what Redis missed before it is used again (rules 4 and 5).
"""

from __future__ import annotations

from collections.abc import Awaitable, Sequence
from typing import Any

import orjson
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster

from orderflow.cache.admission import Doorkeeper
from orderflow.cache.aside import Loader, ManyLoader, Reader, bypass, bypass_many
from orderflow.cache.breaker import CircuitBreaker, State
from orderflow.cache.epoch import Epochs
from orderflow.cache.errors import CacheError, CacheUnavailable
from orderflow.cache.generations import GENERATION_TTL_MS
from orderflow.cache.guard import Guard
from orderflow.cache.keys import Entity, Key, KeySpace
from orderflow.cache.layout import layout_of
from orderflow.cache.listing import Listing, MembersLoader, page_of
from orderflow.cache.metrics import breaker_listener, for_entity
from orderflow.cache.recheck import recheck
from orderflow.cache.recovery import Recovery
from orderflow.cache.scripts import Scripts
from orderflow.cache.store import Store
from orderflow.cache.ttl import TTLPolicy
from orderflow.cache.view_store import ViewStore
from orderflow.cache.views import Views


class Cache:
    """The cache of one namespace, for one process and one Redis client.

    `timeout_s` bounds every Redis round trip. A miss takes a lease of `lease_ms` so that one
    caller across all processes loads the value; the others poll every `poll_ms` for up to
    `wait_ms`, then load it themselves. Invalidations leave a tombstone for `tombstone_ttl_ms`.
    With `admit_after` > 0 a key's first read in a while skips Redis (`admission.Doorkeeper`,
    remembering up to twice that many keys); single reads, views and listings only.
    Set `enabled = False` at run time to bypass Redis completely.
    """

    def __init__(
        self,
        redis: Redis | RedisCluster,
        namespace: str,
        *,
        timeout_s: float = 0.25,
        breaker: CircuitBreaker | None = None,
        lease_ms: int = 2_000,
        wait_ms: int = 300,
        poll_ms: int = 5,
        tombstone_ttl_ms: int = 60_000,
        enabled: bool = True,
        admit_after: int = 0,
    ) -> None:
        self.namespace = namespace
        self.breaker = breaker or CircuitBreaker()
        self.breaker.on_change = self.breaker.on_change or breaker_listener(namespace)
        self.breaker.on_change(self.breaker.state)
        self._redis = redis
        self._layout = layout = layout_of(redis)
        scripts = Scripts.register(redis)
        self._epochs = Epochs(redis, namespace, layout, scripts)
        # `recovery.add(callback)`: what a breaker's probe replays before Redis is used again.
        self.recovery = Recovery(self._epochs, timeout_s)
        self._guard = Guard(self.breaker, timeout_s, self.recovery.probe, layout)
        self._guard.on_learnt = self.recovery.learnt
        keys = KeySpace(namespace, layout.slot_tags)
        stored = {"lease_ms": lease_ms, "tombstone_ttl_ms": tombstone_ttl_ms}
        self._store = Store(keys, self._epochs, scripts, self._guard, **stored)
        self._reader = Reader(self._store, wait_ms=wait_ms, poll_ms=poll_ms)
        self._doorkeeper = Doorkeeper(admit_after)
        self._views = Views(self._store, self._reader, self._doorkeeper)
        self._view_store = ViewStore(self._store)
        self._enabled = enabled

    @property
    def enabled(self) -> bool:
        """False: every call goes straight to the loader, or does nothing, without Redis."""
        return self._enabled

    @enabled.setter
    def enabled(self, on: bool) -> None:
        if on and not self._enabled:
            # Writes skipped Redis while off, so entries may be stale: a new epoch before use.
            self.recovery.unkept.update(self._layout.shards())
            self.trip(probe_now=True)
        self._enabled = on

    @property
    def epoch(self) -> int:
        """The epoch this process currently believes in; on a cluster, a number that changes
        whenever it adopts a new epoch in any slot (`Epochs.mark`)."""
        return self._epochs.mark

    def key_of(self, entity: Entity, key: Key) -> str:
        """The Redis key this process reads `entity` `key` at now (tests, debugging)."""
        return self._store.pin(entity, key).key

    @property
    def breaker_state(self) -> State:
        """The breaker's state; on a cluster, the worst of its shards' breakers."""
        return self._guard.state

    @property
    def partly_usable(self) -> bool:
        """Whether some shard's breaker is closed: on a cluster, the other shards go on while
        one is in an outage."""
        return self._guard.some_closed

    @property
    def cluster(self) -> bool:
        return self._layout.cluster

    def trip(self, *, probe_now: bool = False) -> None:
        """Open every breaker: each probe then checks its server and runs the recovery
        callbacks before Redis is used again."""
        self._guard.trip(probe_now=probe_now)

    async def get_or_load(self, entity: Entity, key: Key, loader: Loader, ttl: TTLPolicy) -> bytes:
        """Cache-aside read: the cached JSON bytes, or `loader()`'s, which are then cached."""
        m = for_entity(entity.name)
        if not self._enabled:
            return await bypass(m, loader)
        if not self._doorkeeper.admit((entity.key_prefix, key)):
            return await bypass(m, loader, m.first_sight)
        pin = (await self._store.pins(m, entity, [key]))[0]
        return await self._reader.read(m, pin, loader, ttl)

    async def get_or_load_many(
        self, entity: Entity, keys: Sequence[Key], loader: ManyLoader, ttl: TTLPolicy
    ) -> list[bytes]:
        """Batch cache-aside read, e.g. the order bodies of a list view that stores their ids.

        One round trip looks up every key; the misses' indexes go to one `loader(indexes)` call,
        whose values are filled in one more round trip. Payloads come back in the order of
        `keys`. Unlike `get_or_load` there is no single flight: see `Reader.read_many`.
        """
        if not keys:
            return []
        m = for_entity(entity.name)
        if not self._enabled:
            return await bypass_many(m, loader, len(keys))
        pins = await self._store.pins(m, entity, keys)
        return await self._reader.read_many(m, pins, loader, ttl)

    async def refresh_many(
        self, entity: Entity, keys: Sequence[Key], loader: ManyLoader, ttl: TTLPolicy
    ) -> int:
        """Load `keys` again and store them with fresh TTLs, cached or not (the quiet window's
        warm-up): each under a lease, as a miss is, so a write committed meanwhile revokes it
        and its value stays out. A key whose lease another caller holds is skipped. How many
        were stored; never a cache error (a loader's error reaches the caller)."""
        if not self._enabled or not keys:
            return 0
        m = for_entity(entity.name)
        return await self._reader.refresh_many(
            m, await self._store.pins(m, entity, keys), loader, ttl
        )

    async def get_or_load_view(
        self, entity: Entity, key: Key, families: Sequence[str], loader: Loader, ttl: TTLPolicy
    ) -> bytes:
        """Cache-aside read of a view, keyed by the generations of the `families` it shows: a
        hit is one round trip, a miss two. Its loader may return version 0 (generations rule)."""
        return await self._views.read(entity, key, families, loader, ttl, self._enabled)

    async def get_or_load_listing(
        self,
        listing: Listing,
        key: Key,
        families: Sequence[str],
        loader: Loader,
        members: MembersLoader,
    ) -> tuple[Any, list[bytes]]:
        """A list view, decoded, and the entries it lists: `(view, [member JSON, ...])`. The
        view's JSON has an `"ids"` array: the integer keys of its `listing.members` entries,
        shared with single reads and kept current by every write. A hit on the view and all
        its members is one round trip, a cold page three (see `views`)."""
        listed = await self._views.listing(listing, key, families, loader, members, self._enabled)
        return orjson.loads(listed.view), listed.bodies

    async def get_or_load_page(
        self,
        listing: Listing,
        key: Key,
        families: Sequence[str],
        loader: Loader,
        members: MembersLoader,
    ) -> bytes:
        """`get_or_load_listing`'s page, ready to send: the view's JSON with its leading
        `"ids"` array replaced by `"items"`, the members' bodies (`listing.page_of`)."""
        listed = await self._views.listing(listing, key, families, loader, members, self._enabled)
        return page_of(listed.view, listed.bodies)

    async def put(
        self,
        entity: Entity,
        key: Key,
        version: int,
        payload: bytes,
        ttl: TTLPolicy,
        *,
        seen_epoch: int | None = None,
    ) -> bool:
        """Write-through, after the commit: cache `payload` unless a newer version is cached.

        `seen_epoch` is the epoch (`Cache.epoch`) its writer saw before committing: if the
        epoch moved since, a tombstone is written instead of the value (see `Store.put`).
        True when the cache now holds this version, a newer one, or a tombstone for it. If
        Redis fails, the entry is tombstoned instead, or else the breaker trips: False.
        """
        if not self._enabled:
            return False
        m = for_entity(entity.name)
        self._doorkeeper.saw((entity.key_prefix, key))  # its writer will likely read it
        try:
            await self._store.put(m, entity, key, version, payload, ttl.ttl_ms(), seen_epoch)
        except CacheError:
            # A delete would let a reader that loaded the old row put it back; a tombstone won't.
            await self.invalidate(entity, key, version)
            return False
        return True

    async def invalidate(self, entity: Entity, key: Key, version: int) -> bool:
        """After committing `version`: make sure no older version can be served or filled.

        Leaves a short-lived tombstone (rule 2). False if Redis failed; the breaker then trips.
        """
        if not self._enabled:
            return False
        m = for_entity(entity.name)
        return await self._write(self._store.invalidate(m, entity, key, version))

    async def recheck(self, written: Sequence[tuple[Entity, Key, int]]) -> list[bool]:
        """A moment after writing `(entity, key, committed version)`s: tombstone each entry
        that Redis holds at an older version or not at all (`recheck`). Per entry, False if
        Redis failed it (never raises; the breaker is told, not tripped)."""
        if not self._enabled:
            return [False] * len(written)
        return await recheck(self._store, written)

    async def delete(self, entity: Entity, key: Key) -> bool:
        """Remove an entry. After a database write prefer `invalidate`, which a racing fill
        cannot undo. False if Redis failed; the breaker then trips."""
        if not self._enabled:
            return False
        return await self._write(self._store.delete(for_entity(entity.name), entity, key))

    async def bump(self, families: Sequence[str]) -> bool:
        """After a commit: make every cached view of `families` unreachable.

        False if Redis failed; the breaker then trips.
        """
        if not self._enabled:
            return False
        m = for_entity("generations")
        if ok := await self._write(self._view_store.bump(m, families, GENERATION_TTL_MS)):
            m.invalidations.inc()
        return ok

    async def start(self) -> None:
        """Check the namespace's servers before the first read (`Recovery.start`): an
        earlier process may have cached data that a server restarted since has lost, and the
        servers' marks let a later failover be seen. Best effort."""
        if self._enabled:
            await self.recovery.start(self._guard, self.namespace)

    async def started(self) -> None:
        """Wait until `start`'s background check of a cluster's shards is done."""
        await self.recovery.checked()

    async def health(self) -> str:
        """`ok`, `disabled`, or `degraded: ...` saying why. Also lets a due probe through, so
        /health polling alone heals the breaker (its probe replays what Redis missed)."""
        if not self._enabled:
            return "disabled"
        return await self._guard.health_text(for_entity("health"), self._redis)

    async def _write(self, write: Awaitable[object]) -> bool:
        try:
            await write
        except CacheUnavailable:
            # Rejected by the open breaker: its probe will bump the epoch once, whatever the
            # number of writes it rejected. Tripping it again would restart that wait.
            return False
        except CacheError as exc:
            # The old value may still be cached. Open the breaker: its probe bumps the epoch.
            self._guard.trip(exc.shard)
            return False
        return True
