"""The Shop's cart and checkout.

The cart lives in a cookie (`item:quantity,...`): no server state for a browsing client. The
checkout form carries the lines, the client and an Idempotency-Key made when the form was
rendered, so a double click or a resubmitted form places one order, never two: the same key
and body return the order the first submission created.

The order is placed for the client the browser is signed in as (the session cookie), never for
a client id the form names.
"""

import secrets
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, Response

from orderflow.apps.common.pages import (
    FormError,
    first,
    form_fields,
    loads,
    page_router,
    see_other,
    whole,
)
from orderflow.apps.shop.pages import current_client, require_quantity, shop_page
from orderflow.kit.errors import NotFound
from orderflow.sales.catalogue import service as catalogue
from orderflow.sales.context import Sales, SalesDep
from orderflow.sales.orders import placement
from orderflow.sales.orders.schemas import OrderIn

router = page_router()
CART_COOKIE = "cart"
MAX_LINES = 100
MAX_QUANTITY = 10_000


def read_cart(request: Request) -> dict[int, int]:
    """item id -> quantity; whatever in the cookie is not a valid line is dropped."""
    cart: dict[int, int] = {}
    for part in request.cookies.get(CART_COOKIE, "").split("."):
        item, _, quantity = part.partition("-")
        if item.isdigit() and quantity.isdigit() and 0 < int(quantity) <= MAX_QUANTITY:
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
    """Put an item in the cart (added to what is there already), then show the cart."""
    fields = await form_fields(request)
    item_id = whole(first(fields, "item_id"), "item_id")
    quantity = require_quantity(first(fields, "quantity", "1"))
    await catalogue.get_item(sales, item_id)  # 404 page for an unknown item
    cart = read_cart(request)
    cart[item_id] = min(cart.get(item_id, 0) + quantity, MAX_QUANTITY)
    return with_cart(see_other("/cart"), cart)


@router.post("/cart/update", response_class=HTMLResponse)
async def update_cart(request: Request, sales: SalesDep) -> Response:
    """Set a line's quantity (0 removes it); a wrong one comes back beside the line (422)."""
    fields = await form_fields(request)
    item_id = whole(first(fields, "item_id"), "item_id")
    typed = first(fields, "quantity")
    cart = read_cart(request)
    try:
        quantity = whole(typed, "quantity", low=0, high=MAX_QUANTITY)
    except FormError:
        words = f"must be a whole number from 0 (remove) to {MAX_QUANTITY:,}"
        return await _cart(request, sales, 422, errors={item_id: words}, typed={item_id: typed})
    if quantity == 0:
        cart.pop(item_id, None)
    elif item_id in cart:
        cart[item_id] = quantity
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
    return await _cart(request, sales)


async def _cart(
    request: Request,
    sales: Sales,
    status_code: int = 200,
    errors: dict[int, str] | None = None,
    typed: dict[int, str] | None = None,
) -> HTMLResponse:
    lines = await _lines(sales, read_cart(request))
    return await shop_page(
        request,
        sales,
        "cart.html",
        status_code=status_code,
        title="Cart",
        lines=lines,
        total=sum(line["amount"] for line in lines),
        key=secrets.token_urlsafe(18),
        errors=errors or {},
        typed=typed or {},
        here="/cart",
    )


@router.post("/checkout", response_class=HTMLResponse)
async def checkout(request: Request, sales: SalesDep) -> Response:
    """Place the order the form describes; a repeat of the same form returns the same order."""
    me = await current_client(sales, request)
    if me is None:  # signed out since the cart was shown: sign in, then the cart again
        return see_other("/me?next=/cart")
    fields = await form_fields(request)
    key = first(fields, "idempotency_key")
    items, quantities = fields.get("item_id", []), fields.get("quantity", [])
    body = {
        "client_id": me["id"],
        "lines": [
            {"item_id": whole(item, "item_id"), "quantity": require_quantity(quantity)}
            for item, quantity in zip(items, quantities, strict=False)
        ],
    }
    data, _ = await placement.place_order(sales, OrderIn.model_validate(body), key or None)
    order = loads(data)
    return with_cart(see_other(f"/my/orders/{order['id']}"), {})
