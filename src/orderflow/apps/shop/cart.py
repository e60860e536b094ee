"""The Shop's cart, checkout and "my orders".

The cart lives in a cookie (`item:quantity,...`): no server state for a browsing client. The
checkout form carries the lines, the client and an Idempotency-Key made when the form was
rendered, so a double click or a resubmitted form places one order, never two: the same key
and body return the order the first submission created.

An open "my orders" page re-reads its list every LIVE_S seconds (htmx polling): a Shop order's
status changes in ShopDB through the relay, and no event stream reaches the Shop; each poll is a
hit on the client's cached order list, which every write keeps current (write-through).
"""

import secrets
from typing import Annotated, Any

from fastapi import Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from orderflow.apps.common.pages import (
    first,
    form_fields,
    is_htmx,
    loads,
    page_router,
    see_other,
    whole,
)
from orderflow.apps.shop.pages import current_client, require_quantity, templates
from orderflow.kit.errors import NotFound
from orderflow.kit.pagination import Page
from orderflow.kit.params import Id
from orderflow.sales.catalogue import service as catalogue
from orderflow.sales.context import Sales, SalesDep
from orderflow.sales.orders import placement, reads, transitions
from orderflow.sales.orders.schemas import OrderIn

router = page_router()
CART_COOKIE = "cart"
MAX_LINES = 100
LIVE_S = 2  # how often an open "my orders" page re-reads its statuses


def read_cart(request: Request) -> dict[int, int]:
    """item id -> quantity; whatever in the cookie is not a valid line is dropped."""
    cart: dict[int, int] = {}
    for part in request.cookies.get(CART_COOKIE, "").split("."):
        item, _, quantity = part.partition("-")
        if item.isdigit() and quantity.isdigit() and 0 < int(quantity) <= 10_000:
            cart[int(item)] = int(quantity)
    return dict(list(cart.items())[:MAX_LINES])


def with_cart(response: Response, cart: dict[int, int]) -> Response:
    value = ".".join(f"{item}-{quantity}" for item, quantity in cart.items())
    response.set_cookie(CART_COOKIE, value, samesite="lax", httponly=True)
    return response


async def _lines(sales: Sales, cart: dict[int, int]) -> list[dict[str, Any]]:
    lines = []
    for item_id, quantity in cart.items():
        try:
            item = loads(await catalogue.get_item(sales, item_id))
        except NotFound:
            continue  # removed from the catalogue since: not in the cart any more
        lines.append({"item": item, "quantity": quantity, "amount": quantity * item["price"]})
    return lines


@router.post("/cart/add", response_class=HTMLResponse)
async def add_to_cart(request: Request, sales: SalesDep) -> Response:
    """Put an item in the cart (or change its quantity), then show the cart."""
    fields = await form_fields(request)
    item_id = whole(first(fields, "item_id"), "item_id")
    quantity = require_quantity(first(fields, "quantity", "1"))
    await catalogue.get_item(sales, item_id)  # 404 page for an unknown item
    cart = read_cart(request) | {item_id: quantity}
    return with_cart(see_other("/cart"), cart)


@router.post("/cart/remove", response_class=HTMLResponse)
async def remove_from_cart(request: Request) -> Response:
    fields = await form_fields(request)
    item_id = whole(first(fields, "item_id"), "item_id")
    cart = {k: v for k, v in read_cart(request).items() if k != item_id}
    return with_cart(see_other("/cart"), cart)


@router.get("/cart", response_class=HTMLResponse)
async def cart_page(request: Request, sales: SalesDep) -> HTMLResponse:
    """The cart and, for a known client, the checkout form with a fresh Idempotency-Key."""
    lines = await _lines(sales, read_cart(request))
    return templates.page(
        "cart.html",
        service="shop",
        title="Cart",
        me=await current_client(sales, request),
        lines=lines,
        total=sum(line["amount"] for line in lines),
        key=secrets.token_urlsafe(18),
    )


@router.post("/checkout", response_class=HTMLResponse)
async def checkout(request: Request, sales: SalesDep) -> Response:
    """Place the order the form describes; a repeat of the same form returns the same order."""
    fields = await form_fields(request)
    key = first(fields, "idempotency_key")
    items, quantities = fields.get("item_id", []), fields.get("quantity", [])
    body = {
        "client_id": whole(first(fields, "client_id"), "client_id"),
        "lines": [
            {"item_id": whole(item, "item_id"), "quantity": require_quantity(quantity)}
            for item, quantity in zip(items, quantities, strict=False)
        ],
    }
    data, _ = await placement.place_order(sales, OrderIn.model_validate(body), key or None)
    order = loads(data)
    return with_cart(see_other(f"/my/orders/{order['id']}"), {})


async def _my_orders(sales: Sales, client_id: int, page: int) -> dict[str, Any]:
    window = Page(limit=20, offset=(page - 1) * 20)
    return loads(await reads.orders_of_client(sales, client_id, window))  # type: ignore[no-any-return]


@router.get("/my/orders", response_class=HTMLResponse)
async def my_orders_page(
    request: Request, sales: SalesDep, page: Annotated[int, Query(ge=1, le=10_000)] = 1
) -> Response:
    """The chosen client's orders; open, their statuses follow the order's life."""
    me = await current_client(sales, request)
    if me is None:
        return see_other("/me")
    found = await _my_orders(sales, me["id"], page)
    name = "my_orders_list.html" if is_htmx(request) else "my_orders.html"
    return templates.page(
        name, service="shop", title="My orders", me=me, found=found, page=page, live_s=LIVE_S
    )


@router.get("/my/orders/{order_id}", response_class=HTMLResponse)
async def my_order_page(request: Request, sales: SalesDep, order_id: Id) -> HTMLResponse:
    """One order with its lines; open, its status follows the order's life."""
    order = loads(await reads.get_order(sales, order_id))
    names = await catalogue.item_names(sales, (line["item_id"] for line in order["lines"]))
    name = "my_order_status.html" if is_htmx(request) else "my_order.html"
    me = await current_client(sales, request)
    return templates.page(
        name,
        service="shop",
        title=f"Order {order_id}",
        me=me,
        order=order,
        names=names,
        live_s=LIVE_S,
    )


@router.post("/my/orders/{order_id}/cancel", response_class=HTMLResponse)
async def cancel_my_order(sales: SalesDep, order_id: Id) -> RedirectResponse:
    """Cancel an order still `created` or `confirmed` (a 409 page says why not otherwise)."""
    await transitions.transition(sales, order_id, "cancel")
    return see_other(f"/my/orders/{order_id}")
