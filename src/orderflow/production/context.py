"""What the production domain's services (behind the MES) work with, built in one place."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, FastAPI, Request

from orderflow.kit.cache_modes import CacheModes
from orderflow.kit.caching import ServiceCache
from orderflow.kit.resources import Resources
from orderflow.kit.unit_of_work import Sessions, UnitOfWork
from orderflow.production.caching import NAMESPACE
from orderflow.production.events.fanout import EventFanout
from orderflow.production.events.stream import EventStream


@dataclass
class Production:
    sessions: Sessions  # the MES db
    cache: ServiceCache  # the "mes" namespace
    events: EventStream | None  # None when no Redis is configured

    @classmethod
    def open(cls, resources: Resources, modes: CacheModes, service: str = "mes") -> "Production":
        """The context of the MES (or of the relay writing for it)."""
        settings, cache = resources.settings, resources.caches.get(NAMESPACE)
        events = None
        if resources.redis is not None:
            events = EventStream(
                resources.redis,
                maxlen=settings.event_stream_maxlen,
                timeout_s=settings.redis_timeout_s,
                breaker=cache.breaker if cache is not None else None,
            )
        service_cache = ServiceCache(cache, modes, service)
        return cls(resources.sessions["mesdb"], service_cache, events)

    def unit(self) -> UnitOfWork:
        return UnitOfWork(self.sessions)


@asynccontextmanager
async def live_boards(app: FastAPI, resources: Resources) -> AsyncIterator[None]:
    """The process's one reader of the event stream, fanning it out to its boards."""
    redis_url = resources.settings.redis_url
    fanout = EventFanout(redis_url) if redis_url else None
    app.state.fanout = fanout
    if fanout is not None:
        fanout.start()
    try:
        yield
    finally:
        if fanout is not None:
            await fanout.stop()


def get_production(request: Request) -> Production:
    production: Production = request.app.state.context  # opened by the app's lifespan
    return production


ProductionDep = Annotated[Production, Depends(get_production)]
