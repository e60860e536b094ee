"""Spans from the maintained instrumentations: FastAPI (ASGI) server spans, a span per SQL
statement (SQLAlchemy, on each engine's sync core), Redis and httpx calls (`kit/tracing.py`)."""

from fastapi import FastAPI
from opentelemetry import trace
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from orderflow.kit.tracing import (
    EXCLUDED_URLS,
    ORDER_ATTR,
    SERVICE_ATTR,
    TRACER,
    as_service,
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
    """Server spans for `app`'s requests (not the probes and streams of EXCLUDED_URLS)."""
    if not enabled():
        return
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

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
    """ASGI: the request's spans name this service, and its span the order in its path."""

    def __init__(self, app: ASGIApp, service: str) -> None:
        self.app = app
        self.service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        span = trace.get_current_span()
        if not span.is_recording():  # most requests, at a ratio: the service name only
            with as_service(self.service):
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

        with as_service(self.service):
            await self.app(scope, receive, send_noting_order)
