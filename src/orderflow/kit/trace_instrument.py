"""Spans from the maintained instrumentations: FastAPI (ASGI) server spans, a span per SQL
statement (SQLAlchemy, on each engine's sync core), Redis and httpx calls (`kit/tracing.py`)."""

from typing import Any, cast

from fastapi import FastAPI
from opentelemetry import trace
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from orderflow.kit.tracing import (
    EXCLUDED_URLS,
    ORDER_ATTR,
    SERVICE_ATTR,
    TRACER,
    enabled,
    tracer,
)


def instrument_clients() -> None:
    """Redis and httpx calls, in every client of the process (once per process)."""
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
    from opentelemetry.instrumentation.redis import RedisInstrumentor

    RedisInstrumentor().instrument()
    HTTPXClientInstrumentor().instrument()


def instrument_app(app: FastAPI, service: str) -> None:
    """Server spans for `app`'s requests (not the probes and streams of EXCLUDED_URLS).

    `app.untraced_stack` builds the middleware stack as it was before: a request the gate
    drops (`kit/app.Service`) goes through that, with neither the instrumentation nor
    `ServiceTag`, which only a recorded request needs."""
    if not enabled():
        return
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    plain = app.build_middleware_stack  # Starlette's own, before the instrumentation's

    def untraced_stack() -> ASGIApp:
        tagged = app.user_middleware
        app.user_middleware = [m for m in tagged if m.cls is not cast(Any, ServiceTag)]
        try:
            return plain()
        finally:
            app.user_middleware = tagged

    app.untraced_stack = untraced_stack  # type: ignore[attr-defined]
    # Inside Starlette's error middleware: the instrumentation expects that outermost.
    app.add_middleware(ServiceTag, service=service)
    FastAPIInstrumentor.instrument_app(
        app, excluded_urls=EXCLUDED_URLS, exclude_spans=["receive", "send"]
    )


def instrument_engine(engine: AsyncEngine) -> None:
    """A span per SQL statement of `engine` (its sync core: the async engine has no events)."""
    if not enabled():
        return
    from opentelemetry.instrumentation.sqlalchemy.engine import EngineTracer
    from opentelemetry.metrics import get_meter

    # The instrumentor instruments one engine per process (it is a singleton); the processes
    # here open several (each database, and each service in tests): its EngineTracer, each.
    usage = get_meter(TRACER).create_up_down_counter("db.client.connections.usage")
    EngineTracer(tracer(), engine.sync_engine, usage)  # type: ignore[no-untyped-call]


class ServiceTag:
    """ASGI, inside the instrumentation: the request's span names this service, and the order
    in its path. (Every request's other spans name it by `tracing.serve`, which
    `kit/app.Service` sets.)"""

    def __init__(self, app: ASGIApp, service: str) -> None:
        self.app = app
        self.service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        span = trace.get_current_span()
        if not span.is_recording():  # excluded paths, and a parent's decision to drop
            await self.app(scope, receive, send)
            return
        span.set_attribute(SERVICE_ATTR, self.service)

        async def send_noting_order(message: Message) -> None:
            # Routed by now, and the span still open (it ends with the response).
            if message["type"] == "http.response.start":
                order_id = str(scope.get("path_params", {}).get("order_id", ""))
                if order_id.isascii() and order_id.isdigit():
                    span.set_attribute(ORDER_ATTR, int(order_id))
            await send(message)

        await self.app(scope, receive, send_noting_order)
