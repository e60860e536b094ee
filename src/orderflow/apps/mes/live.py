"""`GET /board/events`: the board's live feed, HTML fragments over Server-Sent Events.

Why a page-specific stream beside `GET /events`: what a change looks like depends on who
watches (on operator 3's board, operator 3's claim moves the order into "my orders" with
release and complete buttons; on every other board it reads "taken by operator 3"), and htmx's
SSE extension swaps HTML, not JSON. Rendering the fragments here keeps one template for the
full page and its live updates, and no client-side templating. Both feeds read the same
per-process fan-out of the Redis stream, so a board costs no extra Redis read.

A fragment is rendered from the order's current state (a cached read), never from the event:
a replayed, repeated or reordered event can only bring a board up to date. A board that
connects without `Last-Event-ID` (first load, or the extension's fresh EventSource after a
failed reconnect) gets a full snapshot; one that reconnects with it gets what changed since,
or a snapshot when the stream cannot tell (`resync`) or when it is more than
`ORDERFLOW_SSE_REPLAY_MAX` events behind (a replay from the oldest id would render the whole
stream for one request).
"""

import asyncio
from collections.abc import AsyncIterator
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Annotated

import orjson
from fastapi import Depends, Request
from fastapi.responses import StreamingResponse

from orderflow.apps.common.pages import loads, page_router
from orderflow.apps.common.pages import sse_frame as frame
from orderflow.apps.mes.events import HEARTBEAT, LastEventId, require_fanout
from orderflow.apps.mes.pages import (
    Operator,
    PageNo,
    Search,
    board_lists,
    count_of_own,
    own_orders,
    templates,
)
from orderflow.kit import tracing
from orderflow.kit.errors import NotFound
from orderflow.kit.redis import REDIS_FAILURES
from orderflow.production.context import Production, ProductionDep
from orderflow.production.events.fanout import EventFanout, Subscription
from orderflow.production.events.stream import StreamEvent
from orderflow.production.orders import reads
from orderflow.production.products import service as products

router = page_router()


@dataclass(frozen=True)
class View:
    """What one board shows: whose it is, which page of the queue, or a search."""

    operator: int | None
    page: int = 1
    q: str = ""


async def snapshot(p: Production, view: View, position: str) -> bytes:
    lists = await board_lists(p, view.operator, view.page, view.q)
    html = templates.render("board_lists.html", oob=True, **lists)
    return frame("snapshot", html, position if position not in ("$", "0-0") else "")


async def changes(p: Production, view: View, events: list[StreamEvent]) -> bytes:
    """One frame for a batch of events: each order's current state, once. A board showing a
    search keeps to its result: orders newly queued are not appended to it. Reading an order
    is a span of the trace of its latest event (the write that changed it)."""
    latest = {int(orjson.loads(e.data)["order_id"]): e for e in events}
    orders = []
    for order_id, event in latest.items():
        with _push_span(order_id, event, view.operator):
            try:
                orders.append(loads(await reads.get_production_order(p, order_id)))
            except NotFound:
                continue
    names = await products.item_names(p, products.item_ids_of(orders))
    parts = [
        templates.render(
            "board_change.html", o=o, operator=view.operator, names=names, appends=not view.q
        )
        for o in orders
    ]
    parts.append(count_of_own(view.operator, await own_orders(p, view.operator)))
    return frame("change", "\n".join(parts), events[-1].id)


def _push_span(
    order_id: int, event: StreamEvent, operator: int | None
) -> AbstractContextManager[object]:
    """`board push`, continuing the event's trace; nothing for an event that carries none."""
    if not event.traceparent:
        return nullcontext()
    attributes: dict[str, str | int] = {
        "orderflow.order_id": order_id,
        "orderflow.event": event.type,
    }
    attributes["orderflow.board"] = f"operator {operator}" if operator else "queue"
    return tracing.continued(event.traceparent, "board push", attributes=attributes)


async def _missed(fanout: EventFanout, last_event_id: str) -> list[StreamEvent] | None:
    try:
        return await fanout.missed(last_event_id)
    except REDIS_FAILURES:
        return None  # cannot tell: the board gets a snapshot instead


async def _batch(subscription: Subscription, heartbeat_s: float) -> list[StreamEvent]:
    """Whatever waits (at least one event), or [] when a heartbeat is due."""
    try:
        waiting = [await asyncio.wait_for(subscription.queue.get(), heartbeat_s)]
    except TimeoutError:
        return []
    while not subscription.queue.empty():
        waiting.append(subscription.queue.get_nowait())
    return waiting


async def _frames(
    p: Production,
    fanout: EventFanout,
    view: View,
    last_event_id: str | None,
    heartbeat_s: float,
) -> AsyncIterator[bytes]:
    subscription = fanout.subscribe()  # first: nothing after this point is missed
    position = fanout.position
    try:
        yield b": subscribed\n\n"
        missed = await _missed(fanout, last_event_id) if last_event_id else None
        if missed is None:
            yield await snapshot(p, view, position)
        elif missed:
            yield await changes(p, view, missed)
        while True:
            batch = await _batch(subscription, heartbeat_s)
            if not batch:
                yield HEARTBEAT
            elif any(not event.id for event in batch):  # a resync: start over
                yield await snapshot(p, view, fanout.position)
            else:
                yield await changes(p, view, batch)
    finally:
        subscription.close()


@router.get("/board/events")
async def board_events(
    request: Request,
    p: ProductionDep,
    fanout: Annotated[EventFanout, Depends(require_fanout)],
    operator: Operator = None,
    page: PageNo = 1,
    q: Search = "",
    last_event_id: LastEventId = None,
) -> StreamingResponse:
    """The board's live feed: `snapshot` and `change` events carrying HTML to swap in."""
    fanout.admit()
    heartbeat_s: float = request.app.state.resources.settings.sse_heartbeat_s
    frames = _frames(p, fanout, View(operator, page, q), last_event_id, heartbeat_s)
    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return StreamingResponse(frames, media_type="text/event-stream", headers=headers)
