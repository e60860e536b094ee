"""The cache dashboard at `/admin/` of every service: the decision's switch, made visible.

The page is for the people who run the platform, in their words: whether the cache is on and
what off means, whether Redis is healthy or failing (the breaker, and the epoch, are under
"technical details"), a switch that asks before it acts, and two live charts
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
from orderflow.kit.http import JSONBytes, dumps
from orderflow.kit.metrics import DB_QUERIES
from orderflow.service_cache import admin

router = page_router()
RESULTS = ("hit", "near_hit", "miss", "bypass")
HIDDEN = ("generations", "health", "epoch")  # bumps, pings, epoch checks: no reads of data
SERVICES = {"shop": "Shop", "crm": "CRM", "mes": "MES"}
# What each cached entity is, for the people who run the platform (not its key names).
ENTITIES = {
    "item": "Items",
    "catalogue_page": "Catalogue pages",
    "client": "Clients",
    "order": "Orders",
    "order_view": "Order lists (CRM)",
    "client_order_view": "Clients' order lists",
    "order_counts": "Order counts by status",
    "production_order": "Production orders",
    "production_view": "Production boards' lists",
}
MODE_WORDS = {
    "on": "reads come from Redis when it has them, else from PostgreSQL",
    "off": "every read goes straight to PostgreSQL, as before the cache: nothing is lost and "
    "nothing is stale, but pages are slower and the database does all the work",
}
ORDERS_WORDS = {
    "write-through": "a change to an order is written into the cache before the answer",
    "cache-aside": "a change to an order removes it from the cache; the next read fills it",
}


def redis_words(breaker: str | None) -> tuple[str, str]:
    """(a word, what it means) for the breaker's state, in operations' terms."""
    if breaker is None:
        return "not configured", "no Redis is set up: every read goes to PostgreSQL"
    if "half" in breaker:
        return "recovering", "Redis failed; a first request is testing whether it answers again"
    if "open" in breaker:
        return "failing", "Redis does not answer: reads go straight to PostgreSQL until it does"
    return "healthy", "Redis answers"


def plain_words(state: dict[str, Any]) -> dict[str, str]:
    health, meaning = redis_words(state["breaker"])
    every = ", ".join(f"{SERVICES.get(k, k)} {v}" for k, v in state["modes"].items())
    return {
        "mode": MODE_WORDS.get(state["mode"], ""),
        "orders": ORDERS_WORDS.get(state["orders"], ""),
        "redis": health,
        "redis_meaning": meaning,
        "modes": every,
    }


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
        "state": (state := await _state(request)),
        "words": plain_words(state),
        "entities": entities,
        "statements": statements,
    }
    return JSONBytes(dumps(body), headers={"Cache-Control": "no-store"})


@router.get("/admin/", response_class=HTMLResponse)
async def dashboard(request: Request) -> HTMLResponse:
    """The cache dashboard of this service."""
    entities, _ = counters()
    state = await _state(request)
    return _page(
        request,
        "dashboard.html",
        state=state,
        words=plain_words(state),
        entities=[(name, ENTITIES.get(name, name.replace("_", " "))) for name in sorted(entities)],
        switched=request.query_params.get("switched") == "1",
    )


def _page(request: Request, name: str, **context: Any) -> HTMLResponse:
    service = service_of(request)
    return SHARED.page(
        name,
        service=service,
        service_name=SERVICES.get(service, service),
        title="Cache dashboard",
        ops=True,  # the operations frame: not a client's, seller's or operator's navigation
        mode_words=MODE_WORDS,
        orders_words=ORDERS_WORDS,
        **context,
    )


@router.get("/admin", include_in_schema=False)
async def dashboard_slash() -> RedirectResponse:
    return see_other("/admin/")


@router.get("/admin/switch", response_class=HTMLResponse)
async def confirm_switch(request: Request) -> HTMLResponse:
    """Are you sure? What the switch the form chose will do, before it does it."""
    asked = admin.CacheSwitch.model_validate(
        {k: v for k in ("mode", "orders") if (v := request.query_params.get(k))}
    )
    state = await _state(request)
    changes = {k: v for k, v in asked.model_dump(exclude_none=True).items() if state.get(k) != v}
    return _page(request, "dashboard_confirm.html", state=state, changes=changes)


@router.post("/admin/switch", response_class=HTMLResponse)
async def switch(request: Request) -> RedirectResponse:
    """The confirmed switch: the same code as `PUT /admin/cache`, then the dashboard again."""
    fields = await form_fields(request)
    body = {k: v for k in ("mode", "orders") if (v := first(fields, k))}
    await admin.switch_cache(request, admin.CacheSwitch.model_validate(body))
    return see_other("/admin/?switched=1")


def shared_router() -> APIRouter:
    """What every service serves beside its own pages: the dashboard, the traces and the
    static files."""
    shared = APIRouter(include_in_schema=False)
    shared.include_router(router)
    shared.include_router(traces)
    shared.include_router(static_router())
    return shared
