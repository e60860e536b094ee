"""How a service uses the cache: reads obey the service's switch, writes always keep it true.

A service switched `off` reads straight from PostgreSQL, like the system before the cache.
Its writes still invalidate or write through, so that the services still reading from the
cache (the Shop while the CRM is off, say) never see a value this one has outdated.
"""

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from orderflow.cache import Cache, Entity, Key, TTLPolicy
from orderflow.cache.aside import Loader
from orderflow.kit.cache_modes import CacheModes

ManyLoader = Callable[[list[int]], Awaitable[dict[int, tuple[int | None, bytes]]]]


@dataclass
class ServiceCache:
    cache: Cache | None  # None: no Redis configured
    modes: CacheModes
    service: str

    @property
    def reading(self) -> bool:
        return self.cache is not None and self.modes.reads_cached(self.service)

    @property
    def writing_through(self) -> bool:
        return self.modes.orders == "write-through"

    async def read(self, entity: Entity, key: Key, loader: Loader, ttl: TTLPolicy) -> bytes:
        if self.cache is None or not self.reading:
            return (await loader())[1]
        return await self.cache.get_or_load(entity, key, loader, ttl)

    async def read_view(
        self, entity: Entity, key: Key, families: Sequence[str], loader: Loader, ttl: TTLPolicy
    ) -> bytes:
        if self.cache is None or not self.reading:
            return (await loader())[1]
        return await self.cache.get_or_load_view(entity, key, families, loader, ttl)

    async def read_many(
        self, entity: Entity, keys: Sequence[Key], loader: ManyLoader, ttl: TTLPolicy
    ) -> list[bytes]:
        if self.cache is None or not self.reading:
            loaded = await loader(list(range(len(keys))))
            return [loaded[i][1] for i in range(len(keys))]
        return await self.cache.get_or_load_many(entity, keys, loader, ttl)

    async def write(
        self, entity: Entity, key: Key, version: int, payload: bytes, ttl: TTLPolicy
    ) -> None:
        """After a commit: write the new value through, or (cache-aside mode) invalidate it."""
        if self.cache is None:
            return
        if self.writing_through:
            await self.cache.put(entity, key, version, payload, ttl)
        else:
            await self.cache.invalidate(entity, key, version)

    async def put(
        self, entity: Entity, key: Key, version: int, payload: bytes, ttl: TTLPolicy
    ) -> None:
        """After a commit: write through, whatever the orders' mode (the MES always does)."""
        if self.cache is not None:
            await self.cache.put(entity, key, version, payload, ttl)

    async def invalidate(self, entity: Entity, key: Key, version: int) -> None:
        if self.cache is not None:
            await self.cache.invalidate(entity, key, version)

    async def bump(self, families: Sequence[str]) -> None:
        if self.cache is not None and families:
            await self.cache.bump(families)
