"""How a service uses the cache: reads obey the service's switch, writes always keep it true.

A service switched `off` reads straight from PostgreSQL, like the system before the cache.
Its writes still invalidate or write through, so that the services still reading from the
cache (the Shop while the CRM is off, say) never see a value this one has outdated.

Entities named in `near` are also kept in the process (`NearCache`): a writer's invalidation
or generation bump is broadcast, and answered only once every process has dropped its copy.
"""

import logging
import time
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from orderflow.cache import (
    Cache,
    CacheError,
    Entity,
    Key,
    Listing,
    MembersLoader,
    NearCache,
    TTLPolicy,
    page_of,
)
from orderflow.cache.aside import Loader
from orderflow.cache.metrics import for_entity
from orderflow.kit.redis import REDIS_FAILURES
from orderflow.kit.settings import Settings
from orderflow.service_cache.broadcast import Broadcast
from orderflow.service_cache.modes import CacheModes
from orderflow.service_cache.tracing import traced_read, traced_write
from orderflow.service_cache.upkeep import COMMITTED_AT

log = logging.getLogger(__name__)
# A write-through put must leave within this long of its commit, else it writes a tombstone
# instead: the journal's recheck, which undoes an older put landed after an eviction, looks again
# only a moment later (`journal.RECHECK_AFTER_S`), and must come after every late put.
PUT_WITHIN_S = 0.25


@dataclass(frozen=True)
class NearPolicy:
    """Which entities a namespace keeps in the process, and which view families they show."""

    entities: frozenset[str]
    families: frozenset[str]


@dataclass
class ServiceCache:
    cache: Cache | None  # None: no Redis configured
    modes: CacheModes
    service: str
    near: NearCache | None = None
    near_policy: NearPolicy = NearPolicy(frozenset(), frozenset())
    bus: Broadcast | None = None  # carries near-cache drops to every process
    always_through: bool = False  # writes through whatever the orders' mode (the MES)
    _near_epoch: int = 0
    _view_families: dict[str, frozenset[str]] = field(default_factory=dict)

    def keep_near(self, policy: NearPolicy, settings: Settings, namespace: str) -> None:
        """Keep `policy`'s entities in the process too; drops arrive on the namespace's bus."""
        self.near = NearCache(maxsize=settings.near_cache_size, ttl_s=settings.near_cache_ttl_s)
        self.near_policy = policy
        self.bus = Broadcast(
            settings.redis_url,
            f"{namespace}:near",
            self.on_near_message,
            cluster=settings.redis_cluster,
        )
        self.bus.start()

    async def close(self) -> None:
        if self.bus is not None:
            await self.bus.stop()

    @property
    def reading(self) -> bool:
        return self.cache is not None and self.modes.reads_cached(self.service)

    @property
    def writing_through(self) -> bool:
        """Whether `put` writes values through: always for a service that must (the MES: no
        delay is acceptable for operators), else as the orders' mode says."""
        return self.always_through or self.modes.orders == "write-through"

    @traced_read
    async def read(self, entity: Entity, key: Key, loader: Loader, ttl: TTLPolicy) -> bytes:
        if self.cache is None or not self.reading:
            return (await loader())[1]
        near = self._near_for(entity)
        if near is None:
            return await self.cache.get_or_load(entity, key, loader, ttl)
        if (value := near.get((entity.name, key))) is not None:
            for_entity(entity.name).near_hit.inc()
            return value
        stamp = near.stamp()
        value = await self.cache.get_or_load(entity, key, loader, ttl)
        near.put((entity.name, key), value, stamp)
        return value

    @traced_read
    async def read_view(
        self, entity: Entity, key: Key, families: Sequence[str], loader: Loader, ttl: TTLPolicy
    ) -> bytes:
        if self.cache is None or not self.reading:
            return (await loader())[1]
        near = self._near_for(entity)
        if near is None:
            return await self.cache.get_or_load_view(entity, key, families, loader, ttl)
        self._view_families.setdefault(entity.name, frozenset(families))
        if (value := near.get((entity.name, key))) is not None:
            for_entity(entity.name).near_hit.inc()
            return value
        stamp = near.stamp()
        value = await self.cache.get_or_load_view(entity, key, families, loader, ttl)
        near.put((entity.name, key), value, stamp)
        return value

    @traced_read
    async def read_page(
        self,
        listing: Listing,
        key: Key,
        families: Sequence[str],
        loader: Loader,
        members: MembersLoader,
    ) -> bytes:
        """A listing's page, ready to send (see `Cache.get_or_load_page`)."""
        if self.cache is None or not self.reading:
            view = (await loader())[1]
            ids: list[int] = orjson.loads(view)["ids"]
            loaded = await members(ids) if ids else {}
            return page_of(view, [loaded[id_][1] for id_ in ids])
        return await self.cache.get_or_load_page(listing, key, families, loader, members)

    @property
    def epoch(self) -> int | None:
        """The epoch this process believes in (None: no Redis); upkeep pins it before a commit."""
        return None if self.cache is None else self.cache.epoch

    @property
    def _idle(self) -> bool:
        """Nothing to write: no Redis configured, or the library bypassed (re-enabling it
        starts a new epoch, so nothing written meanwhile is owed)."""
        return self.cache is None or not self.cache.enabled

    @traced_write("put")
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
        """After a commit: write the new value through (`Cache.put`), the one write-through of
        the services; as an invalidation when this service does not write through (the orders'
        `cache-aside` mode) or when the commit is no longer recent (`PUT_WITHIN_S`).

        True when applied (or nothing to do); False when Redis failed it or the breaker refused.
        """
        if self._idle:
            return True
        assert self.cache is not None
        if not (self.writing_through and _prompt()):
            return await self.invalidate(entity, key, version)
        put = self.cache.put(entity, key, version, payload, ttl, seen_epoch=seen_epoch)
        return await _never_fails("put", self.cache, put)

    async def recheck(self, written: Sequence[tuple[Entity, Key, int]]) -> list[bool]:
        """The writer's second look at what it wrote (`Cache.recheck`); True where done."""
        if self._idle or not written:
            return [True] * len(written)
        assert self.cache is not None
        return await self.cache.recheck(written)

    @traced_write("invalidate")
    async def invalidate(self, entity: Entity, key: Key, version: int) -> bool:
        """Tombstone the entry at `version`, and drop its near copies in every process."""
        if self._idle:
            return True
        assert self.cache is not None
        done = await _never_fails(
            "invalidate", self.cache, self.cache.invalidate(entity, key, version)
        )
        if entity.name in self.near_policy.entities:
            done = await self._tell_near(["drop", entity.name, key]) and done
        return done

    @traced_write("bump")
    async def bump(self, families: Sequence[str]) -> bool:
        if self._idle or not families:
            return True
        assert self.cache is not None
        done = await _never_fails("bump", self.cache, self.cache.bump(families))
        if self.near_policy.families.intersection(families):
            done = await self._tell_near(["bump", *families]) and done
        return done

    async def _tell_near(self, message: list[Any]) -> bool:
        """Drop near copies in every process. Best effort, like every cache write: if Redis
        is failing, the copies still die within the near cache's TTL. False if not sent."""
        if self.bus is None:
            return True
        if self.cache is None or self.cache.breaker_state == "open":
            return False
        try:
            await self.bus.send(orjson.dumps(message).decode())
        except REDIS_FAILURES as exc:
            log.warning("near-cache drop %s not broadcast: %s", message, exc)
            return False
        return True

    async def on_near_message(self, message: str) -> None:
        """Another process (or this one) changed near-cached data: drop the local copies."""
        if self.near is None:
            return
        kind, *args = orjson.loads(message)
        if kind == "drop":
            name, key = args
            self.near.drop((name, tuple(key) if isinstance(key, list) else key))
        else:
            for name, families in self._view_families.items():
                if families.intersection(args):
                    self.near.clear(name)

    def _near_for(self, entity: Entity) -> NearCache | None:
        if self.near is None or entity.name not in self.near_policy.entities:
            return None
        assert self.cache is not None
        if self.cache.epoch != self._near_epoch:  # Redis healed from an outage: start over
            self.near.clear()
            self._near_epoch = self.cache.epoch
        return self.near


_WRITE_FAILURES: tuple[type[Exception], ...] = (CacheError, *REDIS_FAILURES)


def _prompt() -> bool:
    """Whether a put may still carry its value: sent within `PUT_WITHIN_S` of its commit (or
    made outside a unit of work)."""
    committed = COMMITTED_AT.get()
    return committed is None or time.monotonic() - committed <= PUT_WITHIN_S


async def _never_fails(op: str, cache: Cache, write: Awaitable[bool]) -> bool:
    """Rule 1 at the service's edge: a cache write that fails in a way the library did not
    contain (a connection reset while it recovered from another error) trips the breaker, whose
    probe replays the upkeep journal before Redis is read again, and the committed write is
    answered all the same."""
    try:
        return bool(await write)
    except _WRITE_FAILURES as exc:
        log.warning("cache %s failed after the commit: %s", op, exc)
        cache.trip()
        return False
