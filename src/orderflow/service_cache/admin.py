"""`GET`/`PUT /admin/cache`: see and flip the cache switch of a running platform."""

import logging
from typing import Annotated, Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, model_validator

from orderflow.kit.errors import Unavailable
from orderflow.kit.http import JSONBytes, dumps
from orderflow.kit.params import NOT_NULL, left_out
from orderflow.kit.redis import REDIS_FAILURES
from orderflow.kit.settings import CacheMode, OrdersMode
from orderflow.service_cache.facade import ServiceCache

log = logging.getLogger(__name__)
router = APIRouter(prefix="/admin", tags=["operations"])


class CacheSwitch(BaseModel):
    """One field or both; a field left out stays as it is."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"minProperties": 1})

    mode: Annotated[CacheMode | None, NOT_NULL] = left_out()
    orders: Annotated[OrdersMode | None, NOT_NULL] = left_out()

    @model_validator(mode="after")
    def _something(self) -> "CacheSwitch":
        if self.mode is None and self.orders is None:
            raise ValueError("give `mode` (on/off), `orders` (write-through/cache-aside) or both")
        return self


class CacheState(BaseModel):
    service: str
    mode: CacheMode
    orders: OrdersMode
    modes: dict[str, str]
    breaker: str | None
    epoch: int | None
    applied_by: int | None = None  # on a change: how many processes have applied it


def _state(cached: ServiceCache) -> dict[str, Any]:
    cache = cached.cache
    return {
        "service": cached.service,
        "mode": cached.modes.values[cached.service],
        "orders": cached.modes.orders,
        "modes": cached.modes.snapshot(),
        "breaker": str(cache.breaker_state) if cache else None,
        "epoch": cache.epoch if cache else None,
    }


@router.get("/cache", response_model=CacheState)
async def get_cache_state(request: Request) -> JSONBytes:
    """This service's cache mode, every service's modes, the breaker and the epoch."""
    return JSONBytes(dumps(_state(request.app.state.context.cache)))


@router.put("/cache", response_model=CacheState, responses={503: {"description": "No Redis"}})
async def switch_cache(request: Request, body: CacheSwitch) -> JSONBytes:
    """Turn this service's cache `on` or `off`, and/or choose how orders are cached.

    Takes effect in every process of the platform at once, without a restart.
    """
    cached: ServiceCache = request.app.state.context.cache
    changes: dict[str, str] = {}
    if body.mode is not None:
        changes[cached.service] = body.mode
    if body.orders is not None:
        changes["orders"] = body.orders
    if not cached.modes.available:
        raise Unavailable("the cache switch needs Redis, and none is configured")
    try:
        applied_by = await cached.modes.set(changes)
    except REDIS_FAILURES as exc:
        # The detail says what, not Redis's own words (addresses, versions): those go to the log.
        log.warning("cache switch not applied: %s", exc)
        raise Unavailable("the switch is kept in Redis, which did not answer") from exc
    return JSONBytes(dumps(_state(cached) | {"applied_by": applied_by}))
