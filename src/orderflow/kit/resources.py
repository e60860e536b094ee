"""What a service process holds open: engines, session factories, the Redis client."""

import asyncio
from dataclasses import dataclass, field
from typing import Any

from redis.asyncio.cluster import RedisCluster
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from orderflow.cache import Cache, CircuitBreaker
from orderflow.kit import trace_instrument
from orderflow.kit.db import create_engine, session_factory
from orderflow.kit.redis import RedisClient, create_redis, is_cluster
from orderflow.kit.settings import Settings


@dataclass
class Resources:
    settings: Settings
    engines: dict[str, AsyncEngine] = field(default_factory=dict)
    sessions: dict[str, async_sessionmaker[AsyncSession]] = field(default_factory=dict)
    redis: RedisClient | None = None
    caches: dict[str, Cache] = field(default_factory=dict)

    @classmethod
    def open(
        cls,
        settings: Settings,
        databases: tuple[str, ...],
        name: str,
        namespaces: tuple[str, ...] = (),
    ) -> "Resources":
        """Engines for `databases`; a Redis client and one `Cache` per namespace if configured."""
        res = cls(settings)
        dsns = {"shopdb": settings.shop_dsn, "mesdb": settings.mes_dsn}
        for db in databases:
            res.engines[db] = create_engine(dsns[db], settings, database=db)
            trace_instrument.instrument_engine(res.engines[db])
            res.sessions[db] = session_factory(res.engines[db])
        if settings.redis_url:
            res.redis = create_redis(settings.redis_url, settings, name=name)
            for namespace in namespaces:
                res.caches[namespace] = Cache(
                    res.redis,
                    namespace,
                    timeout_s=settings.redis_timeout_s,
                    admit_after=settings.cache_admit_after,
                    breaker=CircuitBreaker(
                        failure_threshold=settings.cache_breaker_failures,
                        reset_after_s=settings.cache_breaker_reset_s,
                    ),
                )
        return res

    async def start(self) -> None:
        """Each cache learns its namespace's epoch (see `Cache.start`)."""
        for cache in self.caches.values():
            await cache.start()

    async def close(self) -> None:
        for engine in self.engines.values():
            await engine.dispose()
        if self.redis is not None:
            await self.redis.aclose()

    async def health(self) -> dict[str, Any]:
        """PostgreSQL decides whether we can serve; Redis only whether we are degraded."""
        report: dict[str, Any] = {}
        for db, engine in self.engines.items():
            report[db] = await self._probe_db(engine)
        report["redis"] = await self._probe_redis()
        for cache in self.caches.values():
            report["cache"] = await cache.health()  # a service uses one namespace
        databases_ok = all(report[db] == "ok" for db in self.engines)
        cache_ok = report["redis"] == "ok" and report.get("cache", "ok") == "ok"
        report["status"] = "ok" if databases_ok and cache_ok else "degraded"
        if not databases_ok:
            report["status"] = "unavailable"
        return report

    async def _probe_db(self, engine: AsyncEngine) -> str:
        try:
            async with asyncio.timeout(self.settings.db_connect_timeout_s):
                async with engine.connect() as conn:
                    await conn.execute(text("SELECT 1"))
        except Exception:  # noqa: BLE001  any failure to answer is "down" for a probe
            return "down"
        return "ok"

    async def _probe_redis(self) -> str:
        if self.redis is None:
            return "not configured"
        try:
            async with asyncio.timeout(self.settings.redis_timeout_s * 2):
                if is_cluster(self.redis):
                    # The masters serving the slots, not every node ever known: a dead master
                    # that its replica replaced is no outage.
                    await self.redis.ping(target_nodes=RedisCluster.PRIMARIES)
                else:
                    await self.redis.ping()
        except Exception:  # noqa: BLE001  timeouts, refusals, protocol errors: all "down"
            return "down"
        return "ok"
