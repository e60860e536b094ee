"""The Shop's pages for clients: the catalogue, an item, "who are you".

Identities are ids (authorisation is out of scope): the chosen client's id is kept in a cookie.
The cart, checkout and "my orders" are in `apps/shop/cart.py`.
"""

from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from orderflow.apps.common.pages import (
    FormError,
    Templates,
    first,
    form_fields,
    loads,
    page_router,
    see_other,
    whole,
)
from orderflow.kit.errors import NotFound
from orderflow.kit.pagination import Page
from orderflow.kit.params import Id
from orderflow.sales.catalogue import service as catalogue
from orderflow.sales.catalogue.categories import list_categories
from orderflow.sales.clients import service as clients
from orderflow.sales.clients.schemas import ClientIn
from orderflow.sales.context import Sales, SalesDep

router = page_router()
templates = Templates(Path(__file__).parent / "templates")
PAGE_SIZE = 24
CLIENT_COOKIE = "client_id"
Text = Annotated[str, Query(max_length=100, pattern=r"^[^\x00]*$")]


async def current_client(sales: Sales, request: Request) -> dict[str, Any] | None:
    """The client this browser said it is, or None (also when that id no longer exists)."""
    raw = request.cookies.get(CLIENT_COOKIE, "")
    if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) < 2**63:
        return None
    try:
        client: dict[str, Any] = loads(await clients.get_client(sales, int(raw)))
    except NotFound:
        return None
    return client


@router.get("/", response_class=HTMLResponse)
async def catalogue_page(
    request: Request,
    sales: SalesDep,
    category: Text = "",
    q: Text = "",
    page: Annotated[int, Query(ge=1, le=10_000)] = 1,
) -> HTMLResponse:
    """The catalogue: by category, searched by name, a page at a time."""
    window = Page(limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE)
    found = loads(await catalogue.search_items(sales, category or None, q or None, window))
    pages = max(1, -(-found["total"] // PAGE_SIZE))

    def link(n: int) -> str:
        return "/?" + urlencode(
            {k: v for k, v in (("category", category), ("q", q)) if v} | {"page": n}
        )

    return templates.page(
        "catalogue.html",
        service="shop",
        me=await current_client(sales, request),
        categories=loads(await list_categories(sales))["items"],
        items=found["items"],
        total=found["total"],
        category=category,
        q=q,
        page=page,
        pages=pages,
        prev_url=link(page - 1) if page > 1 else None,
        next_url=link(page + 1) if page < pages else None,
    )


@router.get("/catalogue/{item_id}", response_class=HTMLResponse)
async def item_page(request: Request, sales: SalesDep, item_id: Id) -> HTMLResponse:
    """One item, with a form that puts it in the cart."""
    item = loads(await catalogue.get_item(sales, item_id))
    me = await current_client(sales, request)
    return templates.page("item.html", service="shop", me=me, item=item, title=item["name"])


@router.get("/me", response_class=HTMLResponse)
async def who_page(request: Request, sales: SalesDep) -> HTMLResponse:
    """Who are you: pick a client by id, or register one."""
    me = await current_client(sales, request)
    return templates.page("me.html", service="shop", me=me, title="Who are you?")


def _as_client(client_id: int, to: str = "/") -> RedirectResponse:
    response = see_other(to)
    response.set_cookie(CLIENT_COOKIE, str(client_id), samesite="lax", httponly=True)
    return response


@router.post("/me", response_class=HTMLResponse)
async def pick_client(request: Request, sales: SalesDep) -> RedirectResponse:
    """Continue as an existing client (404 page for an unknown id)."""
    fields = await form_fields(request)
    client_id = whole(first(fields, "client_id"), "client_id")
    await clients.get_client(sales, client_id)
    return _as_client(client_id)


@router.post("/me/register", response_class=HTMLResponse)
async def register_client(request: Request, sales: SalesDep) -> RedirectResponse:
    """Register a new client and continue as them (422 page naming a wrong field)."""
    fields = await form_fields(request)
    data = {"name": first(fields, "name"), "email": first(fields, "email")}
    if phone := first(fields, "phone"):
        data["phone"] = phone
    client = loads(await clients.create_client(sales, ClientIn.model_validate(data)))
    return _as_client(client["id"])


@router.post("/me/forget", response_class=HTMLResponse)
async def forget_client() -> RedirectResponse:
    response = see_other("/me")
    response.delete_cookie(CLIENT_COOKIE)
    return response


def require_quantity(value: str) -> int:
    if not value:
        raise FormError("quantity", "is required")
    return whole(value, "quantity", high=10_000)
