"""The cache dashboard at `/admin/` of every service: the decision's switch, made visible.

The page shows the cache's mode with its switch, the breaker and the epoch, and two live charts
(uPlot): cache reads per second by result and PostgreSQL statements per second. Its script polls
`/admin/stats` once a second and turns the counters into rates; polling rather than SSE because
the counters are cumulative and a missed sample costs nothing. The counters are this process's
(with several workers, the one that answered). The switch calls the very code of
`PUT /admin/cache`, so it takes effect in every process at once.
"""

import os
import time
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from orderflow.apps.common.pages import (
    SHARED,
    first,
    form_fields,
    loads,
    page_router,
    see_other,
    service_of,
    static_router,
)
from orderflow.apps.common.traces import router as traces
from orderflow.cache.metrics import REQUESTS
from orderflow.kit import admin
from orderflow.kit.http import JSONBytes, dumps
from orderflow.kit.metrics import DB_QUERIES

router = page_router()
RESULTS = ("hit", "near_hit", "miss", "bypass")
HIDDEN = ("generations", "health")  # bumps and pings: no reads of data


def counters() -> tuple[dict[str, dict[str, float]], dict[str, float]]:
    """Cache reads by entity and result, and SQL statements by database, since the start."""
    entities: dict[str, dict[str, float]] = {}
    for metric in REQUESTS.collect():
        for sample in metric.samples:
            if not sample.name.endswith("_total"):
                continue
            entity, result = sample.labels["entity"], sample.labels["result"]
            if entity not in HIDDEN:
                entities.setdefault(entity, dict.fromkeys(RESULTS, 0.0))[result] = sample.value
    statements: dict[str, float] = {}
    for metric in DB_QUERIES.collect():
        for sample in metric.samples:
            if sample.name.endswith("_total"):
                statements[sample.labels["database"]] = sample.value
    return entities, statements


async def _state(request: Request) -> dict[str, Any]:
    state: dict[str, Any] = loads(bytes((await admin.get_cache_state(request)).body))
    return state


@router.get("/admin/stats")
async def stats(request: Request) -> JSONBytes:
    """The dashboard's sample: the cache state and the counters, with this process's clock."""
    entities, statements = counters()
    body = {
        "t": time.time(),
        "pid": os.getpid(),
        "state": await _state(request),
        "entities": entities,
        "statements": statements,
    }
    return JSONBytes(dumps(body), headers={"Cache-Control": "no-store"})


@router.get("/admin/", response_class=HTMLResponse)
async def dashboard(request: Request) -> HTMLResponse:
    """The cache dashboard of this service."""
    entities, _ = counters()
    return SHARED.page(
        "dashboard.html",
        service=service_of(request),
        title="Cache dashboard",
        state=await _state(request),
        entities=sorted(entities),
    )


@router.get("/admin", include_in_schema=False)
async def dashboard_slash() -> RedirectResponse:
    return see_other("/admin/")


@router.post("/admin/switch", response_class=HTMLResponse)
async def switch(request: Request) -> RedirectResponse:
    """The switch's form: the same code as `PUT /admin/cache`, then the dashboard again."""
    fields = await form_fields(request)
    body = {k: v for k in ("mode", "orders") if (v := first(fields, k))}
    await admin.switch_cache(request, admin.CacheSwitch.model_validate(body))
    return see_other("/admin/")


def shared_router() -> APIRouter:
    """What every service serves beside its own pages: the dashboard, the traces and the
    static files."""
    shared = APIRouter(include_in_schema=False)
    shared.include_router(router)
    shared.include_router(traces)
    shared.include_router(static_router())
    return shared
