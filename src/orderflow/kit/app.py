"""The app factory every service uses: lifespan, errors, health, metrics, middleware."""

import gc
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from typing import Any, Protocol

from fastapi import APIRouter, FastAPI, Response
from fastapi.responses import PlainTextResponse
from fastapi.telemetry import TelemetryConfig
from starlette.types import Receive, Scope, Send

from orderflow import __version__
from orderflow.kit import trace_gate, trace_server, tracing
from orderflow.kit.deps import ResourcesDep
from orderflow.kit.edge import Edge
from orderflow.kit.errors import http_error, install_handlers
from orderflow.kit.http import JSONBytes, dumps
from orderflow.kit.metrics import exposition
from orderflow.kit.resources import Resources
from orderflow.kit.security import Hosts
from orderflow.kit.settings import Settings
from orderflow.kit.trace_gather import TraceGather
from orderflow.service_cache import admin
from orderflow.service_cache.facade import NearPolicy, ServiceCache
from orderflow.service_cache.journal import UpkeepJournal
from orderflow.service_cache.modes import CacheModes, cache_modes
from orderflow.service_cache.timeline import TimelineWatch

ops = APIRouter(tags=["operations"])
HEALTH_REPORT: dict[str, Any] = {
    "type": "object",
    "description": "each database (`shopdb` or `mesdb`), `redis` and `cache`, and the verdict",
    "properties": {"status": {"enum": ["ok", "degraded", "unavailable"]}},
    "required": ["status"],
    "additionalProperties": {"type": "string"},
}


@ops.get(
    "/health",
    responses={
        200: {"content": {"application/json": {"schema": HEALTH_REPORT}}},
        503: {
            "description": "PostgreSQL does not answer: the same report, `unavailable`",
            "content": {"application/json": {"schema": HEALTH_REPORT}},
        },
    },
)
async def health(resources: ResourcesDep) -> Response:
    """Liveness and dependencies: 200 while PostgreSQL answers (`degraded` if Redis does not)."""
    report = await resources.health()
    status = 503 if report["status"] == "unavailable" else 200
    return JSONBytes(dumps(report), status_code=status)


@ops.get("/metrics", response_class=PlainTextResponse)
async def prometheus_metrics() -> Response:
    """Prometheus text format: HTTP latency, DB queries, relay deliveries; with several
    workers, the sum of all of them (multiprocess mode, kit/metrics.py)."""
    body, media_type = exposition()
    return Response(body, media_type=media_type)


class DomainContext(Protocol):
    """What a service's routes work with (`Sales`, `Production`): opened once per process."""

    cache: ServiceCache
    journal: UpkeepJournal


OpenContext = Callable[[Resources, CacheModes, str], DomainContext]
Extra = Callable[[FastAPI, Resources], AbstractAsyncContextManager[None]]


NO_NATIVE_TELEMETRY: TelemetryConfig = {"tracing": False, "metrics": False, "logs": False}


class Service(FastAPI):
    """A FastAPI app whose every request passes `kit/edge.Edge` first: host, CSRF and body
    checks, the upkeep mark, the security headers and the request metrics, around the whole
    stack, Starlette's error middleware (the 500s) included, which `add_middleware` cannot.
    Inside the edge, the tracing gate (`kit/trace_gate.py`): a request the sampler keeps is
    answered inside its server span (`kit/trace_server.py`); one it drops, or one to a path
    never traced, runs with OpenTelemetry's suppression keys set, so that the clients'
    instrumentations (Redis, SQLAlchemy, httpx) step aside after one context lookup."""

    def __init__(self, *, service: str, settings: Settings, **fastapi: Any) -> None:
        super().__init__(**fastapi)
        self.service = service
        self.edge = Edge(
            self._gated,
            service=service,
            hosts=Hosts(settings.trusted_hosts()),
            max_body_bytes=settings.max_body_bytes,
            refuse=http_error,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._gated(scope, receive, send)
            return
        scope["app"] = self  # the edge's refusals render with the app's error pages
        await self.edge(scope, receive, send)

    async def _gated(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not tracing.enabled():
            await super().__call__(scope, receive, send)
            return
        serving = tracing.serve(self.service)  # the spans under it name this service
        try:
            if not trace_server.untraced_path(scope) and tracing.request_sampled(scope["headers"]):
                await trace_server.serve(super().__call__, scope, receive, send)
                return
            token = trace_gate.suppress()
            try:
                await super().__call__(scope, receive, send)
            finally:
                trace_gate.release(token)
        finally:
            tracing.served(serving)


def together(*extras: Extra) -> Extra:
    """Several things a service runs beside its routes, opened in order, closed in reverse."""

    @asynccontextmanager
    async def run(app: FastAPI, resources: Resources) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            for extra in extras:
                await stack.enter_async_context(extra(app, resources))
            yield

    return run


def create_app(
    service: str,
    settings: Settings,
    *,
    databases: tuple[str, ...],
    namespace: str,
    context: OpenContext,
    near: NearPolicy | None = None,
    routers: Iterable[APIRouter],
    description: str,
    extra: Extra | None = None,
) -> FastAPI:
    """One service's app. `context` opens what its routes work with (on `app.state.context`);
    `extra` holds what the service runs beside its routes (background tasks), opened after the
    context, closed before it. Tracing (`kit/tracing.py`) is set up here, once per process."""
    tracing.setup(service)
    lifespan = _lifespan(service, settings, databases, namespace, context, near, extra)
    app = Service(
        service=service,
        settings=settings,
        title=f"orderflow {service}",
        version=__version__,
        description=description,
        lifespan=lifespan,
        # FastAPI's own OpenTelemetry layer (0.165) would wrap every request a second time,
        # beside the server span this app makes (`kit/trace_server.py`).
        telemetry=NO_NATIVE_TELEMETRY,
    )
    install_handlers(app)
    app.include_router(ops)
    app.include_router(admin.router)
    for router in routers:
        app.include_router(router)
    return app


def _lifespan(
    service: str,
    settings: Settings,
    databases: tuple[str, ...],
    namespace: str,
    context: OpenContext,
    near: NearPolicy | None,
    extra: Extra | None,
) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        resources = Resources.open(settings, databases, name=service, namespaces=(namespace,))
        app.state.resources = resources
        async with AsyncExitStack() as stack:
            stack.push_async_callback(resources.close)
            await resources.start()
            app.state.traces = TraceGather(settings)  # answers /admin/traces of any process
            app.state.traces.start()
            stack.push_async_callback(app.state.traces.stop)
            modes = await stack.enter_async_context(cache_modes(settings))
            app.state.context = context(resources, modes, service)
            cached = app.state.context.cache
            stack.push_async_callback(cached.close)
            if near is not None and settings.redis_url and settings.near_cache_ttl_s > 0:
                cached.keep_near(near, settings, namespace)
            # Deletes applied upkeep, repairs what is left (rule 9); stops before the cache
            # closes, with a last delete.
            journal = app.state.context.journal
            await stack.enter_async_context(journal.running(repair=True))
            # A failover may have dropped commits the cache saw: forget it when one happened.
            await stack.enter_async_context(TimelineWatch(journal.sessions, cached.cache).running())
            if extra is not None:
                await stack.enter_async_context(extra(app, resources))
            # Everything alive now lives as long as the process: out of the collector's sight,
            # a full collection no longer walks it, which was the p99 tail of every
            # Redis-backed endpoint (docs/performance.md, "The Redis p99 tail").
            gc.freeze()
            yield

    return lifespan
