"""The latest spans of this process, in memory and bounded: what `/admin/traces` shows.

A span processor that keeps the last `size` finished spans (older ones fall off), and answers
the two questions the trace pages ask every process: which traces (the latest, or those about
an order), and every span of some traces. Spans are turned into plain JSON-ready dicts only
when asked, never on the request path.
"""

from collections import deque
from collections.abc import Iterable
from typing import Any

from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor
from opentelemetry.trace import StatusCode

ORDER_ATTR = "orderflow.order_id"
SERVICE_ATTR = "orderflow.service"


class SpanBuffer(SpanProcessor):
    def __init__(self, size: int) -> None:
        self.spans: deque[ReadableSpan] = deque(maxlen=size)

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        pass

    def on_end(self, span: ReadableSpan) -> None:
        self.spans.append(span)  # atomic; a full deque drops its oldest

    def shutdown(self) -> None:
        self.spans.clear()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True

    def summaries(self, order_id: int | None, limit: int) -> list[dict[str, Any]]:
        """The latest `limit` traces of this process (those with a span about `order_id`)."""
        traces: dict[int, list[ReadableSpan]] = {}
        for span in list(self.spans):
            traces.setdefault(span.context.trace_id, []).append(span)
        if order_id is not None:
            traces = {
                t: spans
                for t, spans in traces.items()
                if any(s.attributes and s.attributes.get(ORDER_ATTR) == order_id for s in spans)
            }
        found = [summary(spans) for spans in traces.values()]
        found.sort(key=lambda s: s["start"], reverse=True)
        return found[:limit]

    def spans_of(self, trace_ids: Iterable[str]) -> list[dict[str, Any]]:
        wanted = {int(t, 16) for t in trace_ids}
        return [as_dict(s) for s in list(self.spans) if s.context.trace_id in wanted]


def summary(spans: list[ReadableSpan]) -> dict[str, Any]:
    first = min(spans, key=lambda s: s.start_time or 0)
    orders = {
        s.attributes[ORDER_ATTR]
        for s in spans
        if s.attributes and isinstance(s.attributes.get(ORDER_ATTR), int)
    }
    return {
        "trace_id": format(first.context.trace_id, "032x"),
        "name": first.name,
        "start": min(s.start_time or 0 for s in spans),
        "end": max(s.end_time or 0 for s in spans),
        "spans": len(spans),
        "services": sorted({service_of(s) for s in spans}),
        "orders": sorted(orders),
        "errors": sum(1 for s in spans if s.status.status_code is StatusCode.ERROR),
    }


def service_of(span: ReadableSpan) -> str:
    if span.attributes and SERVICE_ATTR in span.attributes:
        return str(span.attributes[SERVICE_ATTR])
    return str(span.resource.attributes.get("service.name", "?"))


def as_dict(span: ReadableSpan) -> dict[str, Any]:
    parent = span.parent
    return {
        "trace_id": format(span.context.trace_id, "032x"),
        "span_id": format(span.context.span_id, "016x"),
        "parent_id": format(parent.span_id, "016x") if parent is not None else None,
        "name": span.name,
        "service": service_of(span),
        "kind": span.kind.name.lower(),
        "start": span.start_time or 0,
        "end": span.end_time or span.start_time or 0,
        "error": span.status.status_code is StatusCode.ERROR,
        "attributes": {k: _plain(v) for k, v in (span.attributes or {}).items()},
        "links": [
            {
                "trace_id": format(x.context.trace_id, "032x"),
                "span_id": format(x.context.span_id, "016x"),
            }
            for x in span.links
        ],
    }


def _plain(value: Any) -> Any:
    if isinstance(value, str | int | float | bool):
        return value
    return [v for v in value] if isinstance(value, tuple | list) else str(value)
