"""`GET /my/orders/events`: "my orders" and one order's status, live over Server-Sent Events.

PostgreSQL announces every order placed or changed (`sales/orders/changes.py`); this process
follows the signed-in client's announcements and sends the list (or the order's status) again,
rendered from the same cached reads as the page. An announcement comes at commit, before the
writer's after-commit cache write: a render waits until the cache holds the announced version.
A stream starts with a render (whatever changed before it connected), so a page that
reconnects is never behind. While this process cannot listen, the stream ends or answers 503
and the page polls instead (`static/live-orders.js`) until a stream holds again.
"""

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Query, Request
from fastapi.responses import StreamingResponse

from orderflow.apps.common.pages import loads, page_router, sse_frame
from orderflow.apps.shop.my_orders import PER_PAGE, own_order
from orderflow.apps.shop.pages import current_client, templates
from orderflow.kit.errors import NotFound, Unavailable
from orderflow.kit.pagination import Page
from orderflow.kit.resources import Resources
from orderflow.sales.context import Sales, SalesDep
from orderflow.sales.orders import reads
from orderflow.sales.orders.changes import Change, OrderChanges, listening

router = page_router()
HEARTBEAT = b": heartbeat\n\n"
CATCH_UP_S = 3.0  # longest wait for the announced version to reach the cache (upkeep: ~2 s)
# A change the cache has not shown by then is looked at again, CATCH_UP_S later, so many times
# at most: sending what the cache held and waiting for the next change left a page stale.
MAX_LOOKS = 10
Render = Callable[[], Awaitable[tuple[dict[int, int], str]]]


@asynccontextmanager
async def order_feed(app: FastAPI, resources: Resources) -> AsyncIterator[None]:
    """The process's listener, beside the Shop's routes."""
    async with listening(resources.settings.shop_dsn) as changes:
        app.state.order_changes = changes
        yield


async def require_changes(request: Request) -> OrderChanges:
    changes: OrderChanges | None = getattr(request.app.state, "order_changes", None)
    if changes is None or not changes.live:
        raise Unavailable("live order updates are not available now: the page polls instead")
    return changes


@router.get("/my/orders/events")
async def my_orders_events(
    request: Request,
    sales: SalesDep,
    changes: Annotated[OrderChanges, Depends(require_changes)],
    page: Annotated[int, Query(ge=1, le=10_000)] = 1,
    order: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None,
) -> StreamingResponse:
    """The signed-in client's list page (`orders` events) or one of their orders (`status`
    events), as HTML to swap in, sent again whenever one of their orders changes."""
    me = await current_client(sales, request)
    if me is None:
        raise NotFound("Sign in to follow your orders.")
    if order is not None:
        await own_order(sales, me, order)  # another client's order: 404
        render = _status(sales, me, order)
    else:
        render = _list(sales, me["id"], page)
    heartbeat_s: float = request.app.state.resources.settings.sse_heartbeat_s
    first_page = order is None and page == 1
    frames = _frames(changes, me["id"], order, render, heartbeat_s, first_page)
    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return StreamingResponse(frames, media_type="text/event-stream", headers=headers)


def _list(sales: Sales, client_id: int, page: int) -> Render:
    async def render() -> tuple[dict[int, int], str]:
        window = Page(limit=PER_PAGE, offset=(page - 1) * PER_PAGE)
        found = loads(await reads.orders_of_client(sales, client_id, window))
        html = templates.render("my_orders_list.html", found=found, page=page)
        return {o["id"]: o["version"] for o in found["items"]}, html

    return render


def _status(sales: Sales, me: dict[str, Any], order_id: int) -> Render:
    async def render() -> tuple[dict[int, int], str]:
        order = await own_order(sales, me, order_id)
        return {order_id: order["version"]}, templates.render("my_order_status.html", order=order)

    return render


async def _caught_up(
    render: Render, change: Change | None, *, first_page: bool
) -> tuple[str, bool]:
    """The render, once it shows the announced version of the changed order (or, after
    CATCH_UP_S, whatever the cache holds: the cache's upkeep has its own guarantees). A new
    order (version 1) belongs at the top of the first page of the list: it waits for it there."""
    deadline = asyncio.get_running_loop().time() + CATCH_UP_S
    while True:
        versions, html = await render()
        if change is None:
            return html, True
        seen = versions.get(change.order_id)
        if seen is None and not (first_page and change.version == 1):
            return html, True  # not on this page: nothing to wait for
        if seen is not None and seen >= change.version:
            return html, True
        if asyncio.get_running_loop().time() > deadline:
            return html, False
        await asyncio.sleep(0.1)


async def _frames(
    changes: OrderChanges,
    client_id: int,
    order: int | None,
    render: Render,
    heartbeat_s: float,
    first_page: bool,
) -> AsyncIterator[bytes]:
    event = "status" if order is not None else "orders"
    with changes.follow(client_id) as queue:  # first: nothing after this point is missed
        yield b": following\n\n"
        yield sse_frame(event, (await _caught_up(render, None, first_page=first_page))[0])
        looks: Counter[Change] = Counter()
        while True:
            try:
                change = await asyncio.wait_for(queue.get(), heartbeat_s)
            except TimeoutError:
                yield HEARTBEAT
                continue
            if change is None:  # the listener lost PostgreSQL: the page polls meanwhile
                return
            if order is None or change.order_id == order:
                html, caught = await _caught_up(render, change, first_page=first_page)
                yield sse_frame(event, html)
                looks[change] += 1
                if not caught and looks[change] < MAX_LOOKS:  # the cache is late: look again
                    asyncio.get_running_loop().call_later(CATCH_UP_S, _offer, queue, change)


def _offer(queue: asyncio.Queue[Change | None], change: Change) -> None:
    with contextlib.suppress(asyncio.QueueFull):  # a stuck page: it resyncs anyway
        queue.put_nowait(change)
