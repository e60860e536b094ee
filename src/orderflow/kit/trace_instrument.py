"""Spans from the maintained instrumentations: a span per SQL statement (SQLAlchemy, on each
engine's sync core), Redis and httpx calls (`kit/tracing.py`). A request's own span is
orderflow's (`kit/trace_server.py`, which says why)."""

from sqlalchemy.ext.asyncio import AsyncEngine

from orderflow.kit.tracing import TRACER, enabled, tracer


def instrument_clients() -> None:
    """Redis and httpx calls, in every client of the process (once per process)."""
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
    from opentelemetry.instrumentation.redis import RedisInstrumentor

    RedisInstrumentor().instrument()
    HTTPXClientInstrumentor().instrument()


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
