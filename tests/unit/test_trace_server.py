"""The request's server span (`kit/trace_server.py`), on an SDK provider of the test's own."""

from typing import Any

import pytest
from fastapi import FastAPI
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from orderflow.kit import trace_server

PARENT_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_SPAN = "00f067aa0ba902b7"


@pytest.fixture
def spans(monkeypatch: pytest.MonkeyPatch) -> InMemorySpanExporter:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    monkeypatch.setattr(trace_server, "tracer", lambda: provider.get_tracer("test"))
    return exporter


def app() -> FastAPI:
    api = FastAPI()

    @api.get("/orders/{order_id}")
    async def one(order_id: int) -> dict[str, int]:
        return {"id": order_id}

    @api.get("/broken")
    async def broken() -> None:
        raise RuntimeError("the endpoint failed")

    return api


async def call(
    path: str, headers: list[tuple[bytes, bytes]] | None = None, method: str = "GET"
) -> list[Any]:
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method,
        "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"q=secret",
        "root_path": "", "headers": headers or [], "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
    }  # fmt: skip
    sent: list[Any] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Any) -> None:
        sent.append(message)

    await trace_server.serve(app(), scope, receive, send)
    return sent


def only(exporter: InMemorySpanExporter) -> ReadableSpan:
    (span,) = exporter.get_finished_spans()
    return span


async def test_a_routed_request_is_named_by_its_route(spans: InMemorySpanExporter) -> None:
    await call("/orders/42")
    span = only(spans)
    assert span.name == "GET /orders/{order_id}" and span.kind is SpanKind.SERVER
    assert dict(span.attributes or {}) == {
        "http.request.method": "GET",
        "url.scheme": "http",
        "url.path": "/orders/42",  # the query (a client's search words, say) is never kept
        "http.response.status_code": 200,
        "http.route": "/orders/{order_id}",
        "orderflow.order_id": 42,
    }
    assert span.status.status_code is StatusCode.UNSET and span.parent is None


async def test_a_callers_traceparent_is_continued(spans: InMemorySpanExporter) -> None:
    await call("/orders/1", [(b"traceparent", f"00-{PARENT_TRACE}-{PARENT_SPAN}-01".encode())])
    span = only(spans)
    assert format(span.context.trace_id, "032x") == PARENT_TRACE
    assert span.parent is not None and format(span.parent.span_id, "016x") == PARENT_SPAN


async def test_a_failing_endpoint_is_an_error_with_its_exception(
    spans: InMemorySpanExporter,
) -> None:
    with pytest.raises(RuntimeError):
        await call("/broken")
    span = only(spans)
    assert span.status.status_code is StatusCode.ERROR
    assert (span.attributes or {})["http.response.status_code"] == 500
    assert [e.name for e in span.events] == ["exception"]


async def test_a_path_no_route_matches_keeps_the_method_alone(
    spans: InMemorySpanExporter,
) -> None:
    sent = await call("/nowhere/7")
    span = only(spans)
    assert sent[0]["status"] == 404 and span.name == "GET"
    assert "http.route" not in (span.attributes or {})
    assert span.status.status_code is StatusCode.UNSET  # a 4xx is the client's, not ours


async def test_a_method_outside_the_standard_ones_is_other(spans: InMemorySpanExporter) -> None:
    """Span names and attributes stay few whatever a client sends."""
    sent = await call("/nowhere", method="BREW")
    span = only(spans)
    assert sent[0]["status"] == 404 and span.name == "HTTP"
    assert (span.attributes or {})["http.request.method"] == "_OTHER"


@pytest.mark.parametrize(
    ("path", "untraced"),
    [("/health", True), ("/metrics", True), ("/static/app.css", True), ("/board/events", True),
     ("/events", True), ("/admin/traces/abc/spans", True), ("/orders", False),
     ("/board", False), ("/admin/cache", False)],
)  # fmt: skip
def test_probes_streams_and_trace_pages_are_never_traced(path: str, untraced: bool) -> None:
    assert trace_server.untraced_path({"path": path}) is untraced
