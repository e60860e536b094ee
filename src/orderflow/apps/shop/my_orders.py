"""The Shop's "my orders": the signed-in client's orders only, and cancelling one.

Which client comes from the session cookie (`apps/shop/session.py`). Another client's order is
answered like an order that does not exist (404 in words), so order numbers, which are
sequential, reveal nothing. Cancelling asks first, on a page of its own (no script needed), and
a refusal (the order went into production meanwhile) comes back on the order's page saying
what happened and when.

An open "my orders" page, or an order's page, follows its statuses over Server-Sent Events
(`apps/shop/live.py`); only while no stream can be held does it re-read every 2 s instead
(`static/live-orders.js`).
"""

from datetime import datetime
from typing import Annotated, Any

from fastapi import Query, Request
from fastapi.responses import HTMLResponse, Response

from orderflow.apps.common.pages import is_htmx, loads, page_router, see_other
from orderflow.apps.shop.pages import current_client, flash, shop_page, sign_in_first
from orderflow.kit.errors import Conflict, NotFound
from orderflow.kit.pagination import Page
from orderflow.kit.params import Id
from orderflow.sales.catalogue import service as catalogue
from orderflow.sales.context import Sales, SalesDep
from orderflow.sales.orders import reads, transitions

router = page_router()
PER_PAGE = 20


async def own_order(sales: Sales, me: dict[str, Any], order_id: int) -> dict[str, Any]:
    """The order if it is this client's; for anyone else it does not exist."""
    try:
        order: dict[str, Any] = loads(await reads.get_order(sales, order_id))
    except NotFound:
        order = {}
    if order.get("client_id") != me["id"]:
        raise NotFound(f"You have no order {order_id}. Your orders are listed under My orders.")
    return order


@router.get("/my/orders", response_class=HTMLResponse)
async def my_orders_page(
    request: Request, sales: SalesDep, page: Annotated[int, Query(ge=1, le=10_000)] = 1
) -> Response:
    """The signed-in client's orders; open, their statuses follow the order's life."""
    me = await current_client(sales, request)
    if me is None:
        return sign_in_first(request)
    window = Page(limit=PER_PAGE, offset=(page - 1) * PER_PAGE)
    found = loads(await reads.orders_of_client(sales, me["id"], window))
    name = "my_orders_list.html" if is_htmx(request) else "my_orders.html"
    return await shop_page(request, sales, name, title="My orders", me=me, found=found, page=page)


async def _order_page(
    request: Request,
    sales: Sales,
    me: dict[str, Any],
    order: dict[str, Any],
    *,
    name: str = "my_order.html",
    status_code: int = 200,
    notice: str = "",
) -> HTMLResponse:
    names = await catalogue.item_names(sales, (line["item_id"] for line in order["lines"]))
    context = {"notice": notice, "refused": status_code == 409} if notice else {}
    return await shop_page(
        request,
        sales,
        name,
        status_code=status_code,
        title=f"Order {order['id']}",
        me=me,
        order=order,
        names=names,
        here=f"/my/orders/{order['id']}",
        **context,
    )


@router.get("/my/orders/{order_id}", response_class=HTMLResponse)
async def my_order_page(request: Request, sales: SalesDep, order_id: Id) -> Response:
    """One of the client's orders with its lines; open, its status follows the order's life."""
    me = await current_client(sales, request)
    if me is None:
        return sign_in_first(request)
    order = await own_order(sales, me, order_id)
    name = "my_order_status.html" if is_htmx(request) else "my_order.html"
    return await _order_page(request, sales, me, order, name=name)


@router.get("/my/orders/{order_id}/cancel", response_class=HTMLResponse)
async def confirm_cancel_page(request: Request, sales: SalesDep, order_id: Id) -> Response:
    """Are you sure? What cancelling means, and the two ways out."""
    me = await current_client(sales, request)
    if me is None:
        return sign_in_first(request)
    order = await own_order(sales, me, order_id)
    return await _order_page(request, sales, me, order, name="my_order_cancel.html")


@router.post("/my/orders/{order_id}/cancel", response_class=HTMLResponse)
async def cancel_my_order(request: Request, sales: SalesDep, order_id: Id) -> Response:
    """Cancel one of the client's orders still `created` or `confirmed`; otherwise the order's
    page (409) says what happened to it and when."""
    me = await current_client(sales, request)
    if me is None:
        return sign_in_first(request)
    await own_order(sales, me, order_id)
    try:
        await transitions.transition(sales, order_id, "cancel")
    except Conflict:
        order = await own_order(sales, me, order_id)
        words = _not_cancelled(order)
        return await _order_page(request, sales, me, order, status_code=409, notice=words)
    return flash(see_other(f"/my/orders/{order_id}"), "cancelled")


def _not_cancelled(order: dict[str, Any]) -> str:
    when = datetime.fromisoformat(order["updated_at"]).strftime("%d %b %Y at %H:%M %Z")
    state = order["status"].replace("_", " ")
    return f"Order {order['id']} was not cancelled: it became {state} on {when}."
