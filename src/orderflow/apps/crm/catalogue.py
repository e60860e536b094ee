"""The CRM's catalogue editing: list, create, change name, category, price and description.

The same service calls as `POST /items` and `PUT /items/{id}`: an edit drops the item from every
cache (near caches included) before it answers, so the Shop shows the change at once.
"""

import re
from typing import Annotated, Any

from fastapi import Query, Request
from fastapi.responses import HTMLResponse, Response

from orderflow.apps.common.pages import (
    FormError,
    field_errors,
    first,
    form_fields,
    loads,
    money,
    page_router,
    see_other,
)
from orderflow.apps.crm.pages import templates
from orderflow.kit.errors import OrderflowError
from orderflow.kit.pagination import Page
from orderflow.kit.params import Id
from orderflow.sales.catalogue import service as catalogue
from orderflow.sales.catalogue.categories import list_categories
from orderflow.sales.catalogue.schemas import ItemIn
from orderflow.sales.context import Sales, SalesDep

router = page_router()
PAGE_SIZE = 25
# "12", "12.5", "12,50", and with thousands grouped as the list shows them: "1,234.50"
PLAIN = re.compile(r"^(\d{1,10})(?:[.,](\d{1,2}))?$")
GROUPED = re.compile(r"^(\d{1,3}(?:,\d{3}){1,3})(?:\.(\d{1,2}))?$")
CURRENCY = re.compile(r"^(?:EUR|€)|(?:EUR|€)$", re.IGNORECASE)
Text = Annotated[str, Query(max_length=100, pattern=r"^[^\x00]*$")]
FIELDS = ("name", "category", "price", "description")


def cents(value: str) -> int:
    """A price typed as the list shows it ("1,234.50", "€ 12", "12,5") in minor units."""
    typed = CURRENCY.sub("", value.replace(" ", "").replace("\u00a0", ""))
    match = PLAIN.match(typed) or GROUPED.match(typed)
    if match is None:
        raise FormError("price", "must be an amount like 1,234.50")
    units, fraction = match.group(1).replace(",", ""), (match.group(2) or "0").ljust(2, "0")
    return int(units) * 100 + int(fraction)


def _item_in(typed: dict[str, str]) -> ItemIn:
    return ItemIn.model_validate(typed | {"price": cents(typed["price"])})


async def _typed(request: Request) -> dict[str, str]:
    fields = await form_fields(request)
    return {name: first(fields, name) for name in FIELDS}


def _refused(exc: Exception) -> dict[str, str]:
    """The messages of a refused item form by field; anything else is not the form's."""
    errors = field_errors(exc)
    if errors is None:
        raise exc
    return errors


@router.get("/console/items", response_class=HTMLResponse)
async def items_page(
    sales: SalesDep, q: Text = "", page: Annotated[int, Query(ge=1, le=10_000)] = 1
) -> HTMLResponse:
    """The catalogue as sellers see it, with a form for a new item."""
    return await _items(sales, q=q, page=page)


async def _items(
    sales: Sales,
    *,
    q: str = "",
    page: int = 1,
    status_code: int = 200,
    errors: dict[str, str] | None = None,
    typed: dict[str, str] | None = None,
) -> HTMLResponse:
    window = Page(limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE)
    found = loads(await catalogue.search_items(sales, None, q or None, window))
    pages = max(1, -(-found["total"] // PAGE_SIZE))
    return templates.page(
        "items.html",
        status_code,
        service="crm",
        title="Catalogue",
        errors=errors or {},
        typed=typed or {},
        found=found,
        q=q,
        page=page,
        pages=pages,
        categories=loads(await list_categories(sales))["items"],
    )


@router.post("/console/items", response_class=HTMLResponse)
async def create_item(request: Request, sales: SalesDep) -> Response:
    """Add an item; a refused field comes back beside it, with what was typed (422)."""
    typed = await _typed(request)
    try:
        item = loads(await catalogue.create_item(sales, _item_in(typed)))
    except (ValueError, FormError, OrderflowError) as exc:
        errors = _refused(exc)
        return await _items(sales, status_code=422, errors=errors, typed=typed)
    return see_other(f"/console/items/{item['id']}?saved=1")


@router.get("/console/items/{item_id}", response_class=HTMLResponse)
async def item_page(
    sales: SalesDep, item_id: Id, saved: Annotated[str, Query(max_length=1)] = ""
) -> HTMLResponse:
    """One item's edit form."""
    return await _item(sales, item_id, saved=bool(saved))


async def _item(
    sales: Sales,
    item_id: int,
    *,
    saved: bool = False,
    status_code: int = 200,
    errors: dict[str, str] | None = None,
    typed: dict[str, str] | None = None,
) -> HTMLResponse:
    item = loads(await catalogue.get_item(sales, item_id))
    notice = f"Saved: version {item['version']}, the Shop shows it now." if saved else ""
    return templates.page(
        "item.html",
        status_code,
        service="crm",
        title=f"Item {item_id}",
        item=item,
        notice=notice,
        errors=errors or {},
        typed=typed or _as_typed(item),
        categories=loads(await list_categories(sales))["items"],
    )


def _as_typed(item: dict[str, Any]) -> dict[str, str]:
    shown = {name: str(item.get(name) or "") for name in FIELDS}
    return shown | {"price": money(item["price"])}


@router.post("/console/items/{item_id}", response_class=HTMLResponse)
async def save_item(request: Request, sales: SalesDep, item_id: Id) -> Response:
    """Replace the item's fields; its version goes up by one. A refused field comes back
    beside it, with what was typed (422)."""
    typed = await _typed(request)
    try:
        await catalogue.replace_item(sales, item_id, _item_in(typed))
    except (ValueError, FormError, OrderflowError) as exc:
        errors = _refused(exc)
        return await _item(sales, item_id, status_code=422, errors=errors, typed=typed)
    return see_other(f"/console/items/{item_id}?saved=1")
