"""What the MES's services work with, built once per process."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, FastAPI, Request

from orderflow.kit.caching import ServiceCache
from orderflow.kit.deps import Sessions
from orderflow.kit.resources import Resources
from orderflow.production.events.fanout import EventFanout
from orderflow.production.events.stream import EventStream


@dataclass
class Production:
    sessions: Sessions
    cache: ServiceCache
    events: EventStream | None  # None when no Redis is configured


@asynccontextmanager
async def production_context(app: FastAPI, resources: Resources) -> AsyncIterator[None]:
    settings = resources.settings
    events = None
    if resources.redis is not None:
        events = EventStream(
            resources.redis, maxlen=settings.event_stream_maxlen, timeout_s=settings.redis_timeout_s
        )
    app.state.production = Production(resources.sessions["mesdb"], app.state.cache, events)
    fanout = EventFanout(settings.redis_url) if settings.redis_url else None
    app.state.fanout = fanout
    if fanout is not None:
        fanout.start()
    try:
        yield
    finally:
        if fanout is not None:
            await fanout.stop()


def get_production(request: Request) -> Production:
    production: Production = request.app.state.production
    return production


ProductionDep = Annotated[Production, Depends(get_production)]
