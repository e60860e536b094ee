"""The CRM's console for sellers: every client's orders, one order's actions, the catalogue.

Orders and counts come from the same cached views as `GET /orders` and `GET /orders/stats`;
actions call the same transitions as `POST /orders/{id}/{action}`, so a refused one shows the
409's reason in words. Catalogue edits are in `apps/crm/catalogue.py`.
"""

from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlencode

from fastapi import Query
from fastapi.responses import HTMLResponse, Response

from orderflow.apps.common.pages import (
    FormError,
    Templates,
    field_errors,
    label,
    loads,
    page_router,
    see_other,
    whole,
)
from orderflow.kit.errors import Conflict, InvalidInput
from orderflow.kit.pagination import Page
from orderflow.kit.params import Id
from orderflow.sales.catalogue import service as catalogue
from orderflow.sales.clients import service as clients
from orderflow.sales.context import Sales, SalesDep
from orderflow.sales.orders import reads, transitions
from orderflow.sales.orders.lifecycle import ACTIONS, OrderStatus

router = page_router()
templates = Templates(Path(__file__).parent / "templates")
PAGE_SIZE = 25
Field = Annotated[str, Query(max_length=40)]
MATCHES = 20  # clients listed when a name or email matches several
FILTER_FIELDS = {"created_from": "from", "created_to": "to"}  # the service's names, the form's
Action = Literal["confirm", "ship", "deliver", "cancel"]


def _day(value: str, field: str) -> date | None:
    if not value:
        return None
    try:
        day = date.fromisoformat(value)
    except ValueError:
        raise FormError(field, "must be a date like 2026-11-29") from None
    if not 2 <= day.year <= 9998:
        raise FormError(field, "must be between the years 2 and 9998")
    return day


def _filters(status: str, since: str, until: str) -> dict[str, Any]:
    """The list's filters as the service takes them; a wrong one is a 422 naming it."""
    if status and status not in OrderStatus.__members__.values():
        raise FormError("status", "is not an order status")
    first_day, last_day = _day(since, "from"), _day(until, "to")
    return {
        "status": OrderStatus(status) if status else None,
        "created_from": datetime.combine(first_day, time(), UTC) if first_day else None,
        # the form's "to" day is included: the service's bound is exclusive
        "created_to": datetime.combine(last_day + timedelta(days=1), time(), UTC)
        if last_day
        else None,
    }


async def _client(sales: Sales, text: str) -> tuple[int | None, list[dict[str, Any]]]:
    """The client a seller typed: a number, or part of a name or an email. (id, []) when one
    client is meant; (None, the candidates) when several or none match."""
    text = text.strip()
    if text.isascii() and text.isdigit():
        return whole(text, "client"), []
    matches = await clients.find_clients(sales, text, limit=MATCHES + 1)
    if len(matches) == 1:
        return matches[0]["id"], matches
    return None, matches


Looked = tuple[dict[str, Any], dict[str, Any], dict[str, str], int | None, list[dict[str, Any]]]


async def _lookup(
    sales: Sales, status: str, client: str, since: str, until: str, window: Page
) -> Looked:
    """(the page of orders, the counts, the filter's errors, the client, the candidates)."""
    found: dict[str, Any] = {"items": [], "total": 0}
    counts: dict[str, Any] = {"counts": {}, "total": 0}
    client_id: int | None = None
    matches: list[dict[str, Any]] = []
    try:
        filters = _filters(status, since, until)
        client_id, matches = await _client(sales, client) if client else (None, [])
        if not client or client_id is not None:
            found = loads(
                await reads.list_orders(sales, **filters, client_id=client_id, page=window)
            )
            narrowed = {k: v for k, v in filters.items() if k != "status"}
            counts = loads(await reads.counts_by_status(sales, client_id=client_id, **narrowed))
    except (FormError, InvalidInput) as exc:  # beside the filter, with what was typed
        errors = {FILTER_FIELDS.get(k, k): v for k, v in (field_errors(exc) or {}).items()}
        return found, counts, errors, None, []
    return found, counts, {}, client_id, matches


@router.get("/", response_class=HTMLResponse)
async def orders_page(
    sales: SalesDep,
    status: Field = "",
    client: Annotated[str, Query(max_length=100)] = "",
    since: Annotated[str, Query(alias="from", max_length=40)] = "",
    until: Annotated[str, Query(alias="to", max_length=40)] = "",
    page: Annotated[int, Query(ge=1, le=10_000)] = 1,
) -> HTMLResponse:
    """Every client's orders, newest first, filtered by status, client (by number, name or
    email) and day; the counts by status of what the other filters narrow to."""
    window = Page(limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE)
    found, counts, errors, client_id, matches = await _lookup(
        sales, status, client, since, until, window
    )
    unresolved = bool(errors) or (bool(client) and client_id is None)
    query = {k: v for k, v in (("client", client), ("from", since), ("to", until)) if v}

    def link(**change: Any) -> str:
        return "/?" + urlencode({**query, "status": status, **change})

    pages = max(1, -(-found["total"] // PAGE_SIZE))
    names = await clients.client_names(sales, (o["client_id"] for o in found["items"]))
    return templates.page(
        "orders.html",
        422 if errors else 200,
        service="crm",
        errors=errors,
        title="Orders",
        found=found,
        counts=counts,
        names=names,
        matches=matches[:MATCHES],
        more_matches=len(matches) > MATCHES,
        unresolved=unresolved,
        chosen=names.get(client_id) if client_id else None,
        client_id=client_id,
        statuses=[s.value for s in OrderStatus],
        status=status,
        client=client,
        since=since,
        until=until,
        page=page,
        pages=pages,
        status_url=lambda s: "/?" + urlencode({**query, "status": s}),
        client_url=lambda c: "/?" + urlencode({**query, "client": c, "status": status}),
        prev_url=link(page=page - 1) if page > 1 else None,
        next_url=link(page=page + 1) if page < pages else None,
    )


@router.get("/console/orders/{order_id}", response_class=HTMLResponse)
async def order_page(
    sales: SalesDep, order_id: Id, done: Annotated[str, Query(max_length=20)] = ""
) -> HTMLResponse:
    """One order: its client, its lines, and the actions its status allows."""
    notice = f"Done: {done}." if done in ACTIONS else ""
    return await _order_page(sales, order_id, notice=notice)


async def _order_page(
    sales: Sales, order_id: int, *, notice: str = "", status_code: int = 200
) -> HTMLResponse:
    order = loads(await reads.get_order(sales, order_id))
    client = loads(await clients.get_client(sales, order["client_id"]))
    status = OrderStatus(order["status"])
    allowed = [action for action, (sources, _) in ACTIONS.items() if status in sources]
    return templates.page(
        "order.html",
        status_code,
        service="crm",
        title=f"Order {order_id}",
        order=order,
        client=client,
        names=await catalogue.item_names(sales, (ln["item_id"] for ln in order["lines"])),
        allowed=allowed,
        notice=notice,
        refused=status_code == 409,
    )


DONE = {"confirm": "confirmed", "ship": "shipped", "deliver": "delivered", "cancel": "cancelled"}


@router.post("/console/orders/{order_id}/{action}", response_class=HTMLResponse)
async def act_on_order(sales: SalesDep, order_id: Id, action: Action) -> Response:
    """Confirm, ship, deliver or cancel; refused (someone or something changed the order
    first), the order's page comes back (409) saying what happened to it and when."""
    try:
        await transitions.transition(sales, order_id, action)
    except Conflict:
        order = loads(await reads.get_order(sales, order_id))
        when = datetime.fromisoformat(order["updated_at"]).strftime("%d %b %Y at %H:%M:%S %Z")
        notice = (
            f"Order {order_id} was not {DONE[action]}: it became {label(order['status'])} "
            f"on {when}, before your click."
        )
        return await _order_page(sales, order_id, notice=notice, status_code=409)
    return see_other(f"/console/orders/{order_id}?done={action}")
