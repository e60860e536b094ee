"""What the production domain's services (behind the MES) work with, built in one place."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request

from orderflow.cache import CircuitBreaker
from orderflow.data.mesdb import MesUpkeep
from orderflow.kit.resources import Resources
from orderflow.kit.unit_of_work import Sessions, UnitOfWork
from orderflow.production.caching import JOURNALLED, NAMESPACE
from orderflow.production.events.fanout import EventFanout
from orderflow.production.events.stream import EventStream
from orderflow.service_cache.facade import ServiceCache
from orderflow.service_cache.journal import Republish, UpkeepJournal
from orderflow.service_cache.modes import CacheModes


@dataclass
class Production:
    sessions: Sessions  # the MES db
    cache: ServiceCache  # the "mes" namespace
    events: EventStream | None  # None when no Redis is configured
    journal: UpkeepJournal  # what writes owe the cache and boards, kept in the MES db

    @classmethod
    def open(cls, resources: Resources, modes: CacheModes, service: str = "mes") -> "Production":
        """The context of the MES (or of the relay writing for it)."""
        settings, cache = resources.settings, resources.caches.get(NAMESPACE)
        events = None
        if resources.redis is not None:
            breaker = cache.breaker if cache is not None else None
            if settings.redis_cluster:  # the cache's breakers are per shard: one of its own
                failures, reset_s = settings.cache_breaker_failures, settings.cache_breaker_reset_s
                breaker = CircuitBreaker(failures, reset_s)
            events = EventStream(
                resources.redis,
                maxlen=settings.event_stream_maxlen,
                timeout_s=settings.redis_timeout_s,
                breaker=breaker,
                probes=settings.redis_cluster,
            )
        service_cache = ServiceCache(cache, modes, service, always_through=True)
        sessions = resources.sessions["mesdb"]
        journal = UpkeepJournal(
            sessions,
            MesUpkeep,
            service_cache,
            JOURNALLED,
            settings,
            database="mesdb",
            republish=announcer(events),
        )
        return cls(sessions, service_cache, events, journal)

    def unit(self, *, defer: bool = False) -> UnitOfWork:
        return UnitOfWork(self.sessions, self.journal, defer=defer)


def announcer(events: EventStream | None) -> Republish:
    """How the journal's repair announces an event again (the stream skips one it has)."""

    async def republish(event_type: str, order: dict[str, Any]) -> bool:
        return events is None or await events.publish(event_type, order) is not None

    return republish


@asynccontextmanager
async def live_boards(app: FastAPI, resources: Resources) -> AsyncIterator[None]:
    """The process's one reader of the event stream, fanning it out to its boards."""
    settings = resources.settings
    fanout = (
        EventFanout(
            settings.redis_url,
            cluster=settings.redis_cluster,
            max_subscribers=settings.sse_max_subscribers,
            replay_max=settings.sse_replay_max,
        )
        if settings.redis_url
        else None
    )
    app.state.fanout = fanout
    if fanout is not None:
        fanout.start()
    try:
        yield
    finally:
        if fanout is not None:
            await fanout.stop()


async def get_production(request: Request) -> Production:
    production: Production = request.app.state.context  # opened by the app's lifespan
    return production


ProductionDep = Annotated[Production, Depends(get_production)]
