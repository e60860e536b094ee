"""The Shop's pages for clients: the catalogue, an item, signing in and registering.

Which client a browser is comes from its signed session cookie (`apps/shop/session.py`); the
Shop's JSON API keeps taking ids in the request (authorisation is out of scope there). The
cart, checkout and "my orders" are in `apps/shop/cart.py` and `apps/shop/my_orders.py`.
"""

from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from markupsafe import Markup

from orderflow.apps.common.pages import (
    FormError,
    Templates,
    field_errors,
    first,
    form_fields,
    loads,
    page_router,
    see_other,
    whole,
)
from orderflow.apps.shop import session
from orderflow.kit.errors import NotFound, OrderflowError
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
FLASH = "shop_notice"  # what the page after a redirect says: a code, the words are made here
Text = Annotated[str, Query(max_length=100, pattern=r"^[^\x00]*$")]
Next = Annotated[str, Query(max_length=300)]
NO_ONE = object()


async def current_client(sales: Sales, request: Request) -> dict[str, Any] | None:
    """The client this browser signed in as, or None (also when that client is gone)."""
    client_id = session.client_of(request)
    if client_id is None:
        return None
    try:
        client: dict[str, Any] = loads(await clients.get_client(sales, client_id))
    except NotFound:
        return None
    return client


def safe_next(value: str) -> str:
    """A path of this Shop to return to; anything else (another site, a scheme) is `/`."""
    if value.startswith("/") and not value.startswith(("//", "/\\")) and value.isprintable():
        return value[:300]
    return "/"


def here(request: Request) -> str:
    """Where signing in from this page returns to: the page itself, if a GET can show it."""
    if request.method != "GET":
        return "/"
    query = request.url.query
    return request.url.path + (f"?{query}" if query else "")


def _flashed(request: Request, me: dict[str, Any] | None) -> str:
    code = request.cookies.get(FLASH, "")
    if code == "welcome" and me:
        return Markup(
            "Welcome, {}! Your client number is <strong>{}</strong>. Keep it: with your email, "
            "it signs you in again."
        ).format(me["name"], me["id"])
    words = {
        "signed-in": "You are signed in.",
        "signed-out": "You are signed out.",
        "cancelled": "Your order is cancelled.",
    }
    return words.get(code, "")


def flash(response: Response, code: str) -> Response:
    response.set_cookie(FLASH, code, max_age=60, samesite="lax", httponly=True)
    return response


async def shop_page(
    request: Request, sales: Sales, name: str, *, status_code: int = 200, **context: Any
) -> HTMLResponse:
    """A Shop page: who is signed in, where the sign-in link returns to, a flashed notice."""
    me = context.pop("me") if "me" in context else await current_client(sales, request)
    context.setdefault("notice", _flashed(request, me))
    context.setdefault("here", here(request))
    response = templates.page(name, status_code, service="shop", me=me, **context)
    if FLASH in request.cookies:
        response.delete_cookie(FLASH)
    return response


def sign_in_first(request: Request) -> RedirectResponse:
    return see_other("/me?" + urlencode({"next": here(request)}))


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

    return await shop_page(
        request,
        sales,
        "catalogue.html",
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
    return await shop_page(request, sales, "item.html", item=item, title=item["name"])


@router.get("/me", response_class=HTMLResponse)
async def who_page(request: Request, sales: SalesDep, next: Next = "/") -> HTMLResponse:
    """Sign in (email and client number) or register; then back to where the client was."""
    return await _who(request, sales, next=safe_next(next))


async def _who(
    request: Request,
    sales: Sales,
    *,
    status_code: int = 200,
    next: str = "/",
    errors: dict[str, str] | None = None,
    typed: dict[str, str] | None = None,
) -> HTMLResponse:
    return await shop_page(
        request,
        sales,
        "me.html",
        status_code=status_code,
        title="Sign in or register",
        next=next,
        errors=errors or {},
        typed=typed or {},
    )


def _signed_in(request: Request, client_id: int, to: str, code: str) -> Response:
    response = see_other(to)
    session.start(request, response, client_id)
    return flash(response, code)


@router.post("/me", response_class=HTMLResponse)
async def sign_in(request: Request, sales: SalesDep) -> Response:
    """Sign in with an email and the client number that goes with it."""
    fields = await form_fields(request)
    to = safe_next(first(fields, "next", "/"))
    typed = {"signin.email": first(fields, "email"), "signin.client_id": first(fields, "client_id")}
    try:
        client_id = whole(typed["signin.client_id"], "client_id")
        client = loads(await clients.get_client(sales, client_id))
    except (FormError, NotFound):
        client = None
    if client is None or client["email"].casefold() != typed["signin.email"].casefold():
        words = "No client has this email and client number. Check both, or register below."
        errors = {"signin": words}
        return await _who(request, sales, status_code=422, next=to, errors=errors, typed=typed)
    return _signed_in(request, client["id"], to, "signed-in")


@router.post("/me/register", response_class=HTMLResponse)
async def register_client(request: Request, sales: SalesDep) -> Response:
    """Register a new client, sign them in, and welcome them with their client number."""
    fields = await form_fields(request)
    to = safe_next(first(fields, "next", "/"))
    data = {name: first(fields, name) for name in ("name", "email", "phone")}
    try:
        body = ClientIn.model_validate({k: v for k, v in data.items() if v or k != "phone"})
        client = loads(await clients.create_client(sales, body))
    except (ValueError, OrderflowError) as exc:
        errors = field_errors(exc)
        if errors is None:
            raise
        status = 409 if isinstance(exc, OrderflowError) and exc.status == 409 else 422
        if status == 409:
            errors = {"email": "This email is already registered: sign in with it instead."}
        typed = {f"register.{k}": v for k, v in data.items()}
        errors = {f"register.{k}": v for k, v in errors.items()}
        return await _who(request, sales, status_code=status, next=to, errors=errors, typed=typed)
    return _signed_in(request, client["id"], to, "welcome")


@router.post("/me/forget", response_class=HTMLResponse)
async def sign_out() -> Response:
    response = see_other("/me")
    session.end(response)
    return flash(response, "signed-out")


def require_quantity(value: str) -> int:
    if not value:
        raise FormError("quantity", "is required")
    return whole(value, "quantity", high=10_000)
