"""`/admin/traces` beside the cache dashboard: the latest traces of the whole platform, found
by order id, each drawn as a waterfall across services.

Spans come from every process (`kit/trace_gather.py`). A waterfall is server-rendered SVG (a
bar's place and length are SVG attributes, not inline styles or scripts, so the page keeps to a
`default-src 'self'` policy); htmx only swaps the list when the search form is used.
"""

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse

from orderflow.apps.common.pages import SHARED, FormError, is_htmx, page_router, service_of, whole
from orderflow.kit import tracing
from orderflow.kit.errors import NotFound
from orderflow.kit.http import JSONBytes, dumps
from orderflow.kit.trace_gather import TraceGather

router = page_router()
SHARED.env.filters["timestamp"] = lambda s: datetime.fromtimestamp(s, UTC).strftime("%H:%M:%S.%f")[
    :-3
]
TRACE_ID = re.compile(r"^[0-9a-f]{32}$")
LATEST = 50
WIDTH = 1000  # the SVG's user units across a waterfall
SHOWN = ("cache.", "orderflow.", "db.statement", "db.query.text", "http.route", "http.status_code",
         "http.response.status_code", "db.system", "messaging.", "url.path")  # fmt: skip


def merge_summaries(answers: list[Any]) -> list[dict[str, Any]]:
    """One line per trace out of every process's summaries of its part, newest first."""
    merged: dict[str, dict[str, Any]] = {}
    for answer in answers:
        for part in answer:
            have = merged.get(part["trace_id"])
            if have is None:
                merged[part["trace_id"]] = dict(part)
                continue
            if part["start"] < have["start"]:
                have["name"] = part["name"]
            have["start"], have["end"] = (
                min(have["start"], part["start"]),
                max(have["end"], part["end"]),
            )
            have["spans"] += part["spans"]
            have["errors"] += part["errors"]
            have["services"] = sorted({*have["services"], *part["services"]})
            have["orders"] = sorted({*have["orders"], *part["orders"]})
    found = sorted(merged.values(), key=lambda s: s["start"], reverse=True)
    for s in found:
        s["ms"] = (s["end"] - s["start"]) / 1e6
    return found


@dataclass
class Row:
    span: dict[str, Any]
    depth: int
    x: float
    width: float
    ms: float
    offset_ms: float
    attributes: list[tuple[str, Any]] = field(default_factory=list)


def waterfall(answers: list[Any]) -> list[Row]:
    """The spans of one trace (duplicates dropped), parents before children, each child under
    its parent by start time; a span whose parent no process kept starts a tree of its own."""
    spans = {s["span_id"]: s for answer in answers for s in answer}
    if not spans:
        return []
    begin = min(s["start"] for s in spans.values())
    total = max(max(s["end"] for s in spans.values()) - begin, 1)
    children: dict[str | None, list[dict[str, Any]]] = {}
    for s in spans.values():
        parent = s["parent_id"] if s["parent_id"] in spans else None
        children.setdefault(parent, []).append(s)
    rows: list[Row] = []

    def visit(parent: str | None, depth: int) -> None:
        for s in sorted(children.get(parent, []), key=lambda s: (s["start"], s["end"])):
            x = (s["start"] - begin) / total * WIDTH
            width = max((s["end"] - s["start"]) / total * WIDTH, 2.0)
            shown = [(k, v) for k, v in sorted(s["attributes"].items()) if k.startswith(SHOWN)]
            ms, offset = (s["end"] - s["start"]) / 1e6, (s["start"] - begin) / 1e6
            rows.append(
                Row(s, depth, round(x, 1), round(min(width, WIDTH - x), 1), ms, offset, shown)
            )
            visit(s["span_id"], depth + 1)

    visit(None, 0)
    return rows


def _gather(request: Request) -> TraceGather:
    gather: TraceGather | None = getattr(request.app.state, "traces", None)
    if gather is None:
        gather = TraceGather(request.app.state.resources.settings)  # none started: this process
    return gather


@router.get("/admin/traces", response_class=HTMLResponse)
async def traces(request: Request, order: str = "") -> HTMLResponse:
    """The latest traces of every process; with `order`, those about that order."""
    order_id = whole(order.strip(), "order") if order.strip() else None
    # The order's journey first, then the requests about it.
    journey = tracing.journey_trace_id(order_id) if order_id is not None else None
    answers = await _gather(request).ask({"find": order_id, "limit": LATEST, "first": journey})
    found = merge_summaries(answers)
    found.sort(key=lambda t: t["trace_id"] != journey)  # stable: the rest newest first
    found = found[:LATEST]
    for t in found:
        t["journey"] = t["trace_id"] == journey
    context: dict[str, Any] = {
        "service": service_of(request),
        "title": "Traces",
        "traces": found,
        "order": order_id,
        "enabled": tracing.enabled(),
        "ops": True,  # the operations frame, beside the cache dashboard
    }
    return SHARED.page("traces_list.html" if is_htmx(request) else "traces.html", **context)


@router.get("/admin/traces/{trace_id}/spans")
async def trace_spans(request: Request, trace_id: str) -> JSONBytes:
    """Every span of one trace that any process keeps, as JSON (what the waterfall draws)."""
    if not TRACE_ID.match(trace_id):
        raise FormError("trace_id", "must be 32 lowercase hexadecimal digits")
    answers = await _gather(request).ask({"spans": [trace_id]})
    spans = list({s["span_id"]: s for answer in answers for s in answer}.values())
    spans.sort(key=lambda s: s["start"])
    body = {"trace_id": trace_id, "spans": spans}
    return JSONBytes(dumps(body), headers={"Cache-Control": "no-store"})


@router.get("/admin/traces/{trace_id}", response_class=HTMLResponse)
async def one_trace(request: Request, trace_id: str) -> HTMLResponse:
    """One trace as a waterfall: every span any process kept, across services."""
    if not TRACE_ID.match(trace_id):
        raise FormError("trace_id", "must be 32 lowercase hexadecimal digits")
    rows = waterfall(await _gather(request).ask({"spans": [trace_id]}))
    if not rows:
        raise NotFound(f"no process keeps a span of trace {trace_id} (any more)")
    services = sorted({r.span["service"] for r in rows})
    orders = sorted({o for r in rows if (o := r.span["attributes"].get("orderflow.order_id"))})
    total_ms = max(r.offset_ms + r.ms for r in rows)
    return SHARED.page(
        "trace.html",
        service=service_of(request),
        title=f"Trace {trace_id[:8]}",
        trace_id=trace_id,
        rows=rows,
        services=services,
        orders=orders,
        total_ms=total_ms,
        width=WIDTH,
        ops=True,
    )
