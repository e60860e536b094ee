"""A request's server span: orderflow's own, on the OpenTelemetry SDK.

Not `opentelemetry-instrumentation-fastapi`, which made it until 2026-12-07. At a ratio such as
1 %, what tracing costs is mostly the few requests it records, and that middleware made each
of them cost 6.5 times a dropped one (in-process, a route answering constant bytes: 540 µs
against 83; `perf.bench.stack_cost`): it works out some fifteen attributes and sets each twice,
decodes every header for each header it looks up, matches the request against every route a
second time for the span's name, and keeps duration metrics this platform does not read. With
this span a recorded request costs about twice a dropped one (three times when it is rare and
its code runs cold: 282 µs against 88 at 1 %). It keeps what the trace pages and a
backend use, by the stable HTTP conventions: `http.request.method`, `url.scheme`, `url.path`
(never the query: it may hold a client's search words), `http.route`,
`http.response.status_code`, the name `<method> <route>`, an error status for a 5xx or an
exception (recorded), and the W3C `traceparent` a caller sends. The service and the order in
the path are orderflow's own attributes. The Redis, SQLAlchemy and httpx spans under it come
from their maintained instrumentations (`kit/trace_instrument.py`).

`kit/app.Service` calls `serve` for a request the tracing gate keeps (`kit/trace_gate.py`);
a request it drops, or one to an `UNTRACED` path, never comes here.
"""

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from orderflow.kit.tracing import ORDER_ATTR, tracer

# Never traced: probes, scrapes, the dashboard's poll, static files, the trace pages
# themselves, and the endless SSE streams (each push is a span of the trace it shows, see
# apps/mes/live.py). Path prefixes.
UNTRACED = ("/health", "/metrics", "/admin/stats", "/static/", "/admin/traces", "/events",
            "/board/events")  # fmt: skip
_PROPAGATOR = TraceContextTextMapPropagator()
# Any other method a client sends is `_OTHER`: span names and attributes stay few.
METHODS = frozenset(
    {"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "CONNECT", "TRACE"}
)


def untraced_path(scope: Scope) -> bool:
    return str(scope["path"]).startswith(UNTRACED)


async def serve(app: ASGIApp, scope: Scope, receive: Receive, send: Send) -> None:
    """`app` answers the request inside its server span (a child of the caller's
    `traceparent`, if it sent one)."""
    known = scope["method"] in METHODS
    method, named = (scope["method"],) * 2 if known else ("_OTHER", "HTTP")  # the conventions'
    span = tracer().start_span(
        named,  # until routed: a request no route matches keeps the method alone
        context=_parent(scope),
        kind=SpanKind.SERVER,
        attributes={
            "http.request.method": method,
            "url.scheme": scope["scheme"],
            "url.path": scope["path"],
        },
    )
    token = otel_context.attach(trace.set_span_in_context(span))

    async def send_noting(message: Message) -> None:
        if message["type"] == "http.response.start":  # routed by now, the span still open
            _noted(span, scope, named, message["status"])
        await send(message)

    try:
        await app(scope, receive, send_noting)
    except Exception as exc:
        span.record_exception(exc)
        span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
        raise
    finally:
        otel_context.detach(token)
        span.end()


def _parent(scope: Scope) -> Context | None:
    for name, value in scope["headers"]:
        if name == b"traceparent":
            return _PROPAGATOR.extract({"traceparent": value.decode("latin-1")})
    return None  # the request's own trace, its id drawn by the gate (`trace_gate.DrawnIds`)


def _noted(span: trace.Span, scope: Scope, named: str, status: int) -> None:
    span.set_attribute("http.response.status_code", status)
    if status >= 500:
        span.set_status(Status(StatusCode.ERROR))
    route = getattr(scope.get("route"), "path", None)
    if route is not None:
        span.update_name(f"{named} {route}")
        span.set_attribute("http.route", route)
    order_id = str(scope.get("path_params", {}).get("order_id", ""))
    if order_id.isascii() and order_id.isdigit():
        span.set_attribute(ORDER_ATTR, int(order_id))
