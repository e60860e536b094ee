"""The CRM's catalogue editing: list, create, change name, category, price and description.

The same service calls as `POST /items` and `PUT /items/{id}`: an edit drops the item from every
cache (near caches included) before it answers, so the Shop shows the change at once.
"""

import re
from typing import Annotated

from fastapi import Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from orderflow.apps.common.pages import FormError, first, form_fields, loads, page_router, see_other
from orderflow.apps.crm.pages import templates
from orderflow.kit.pagination import Page
from orderflow.kit.params import Id
from orderflow.sales.catalogue import service as catalogue
from orderflow.sales.catalogue.categories import list_categories
from orderflow.sales.catalogue.schemas import ItemIn
from orderflow.sales.context import SalesDep

router = page_router()
PAGE_SIZE = 25
PRICE = re.compile(r"^(\d{1,10})(?:[.,](\d{1,2}))?$")
Text = Annotated[str, Query(max_length=100, pattern=r"^[^\x00]*$")]


def cents(value: str) -> int:
    """A price typed as units and optional cents ("12", "12.5", "12,50") in minor units."""
    match = PRICE.match(value.strip().replace(" ", ""))
    if match is None:
        raise FormError("price", "must be an amount like 12.50")
    units, fraction = match.group(1), (match.group(2) or "0").ljust(2, "0")
    return int(units) * 100 + int(fraction)


async def _item_in(request: Request) -> ItemIn:
    fields = await form_fields(request)
    return ItemIn.model_validate(
        {
            "name": first(fields, "name"),
            "category": first(fields, "category"),
            "price": cents(first(fields, "price")),
            "description": first(fields, "description"),
        }
    )


@router.get("/console/items", response_class=HTMLResponse)
async def items_page(
    sales: SalesDep, q: Text = "", page: Annotated[int, Query(ge=1, le=10_000)] = 1
) -> HTMLResponse:
    """The catalogue as sellers see it, with a form for a new item."""
    window = Page(limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE)
    found = loads(await catalogue.search_items(sales, None, q or None, window))
    pages = max(1, -(-found["total"] // PAGE_SIZE))
    return templates.page(
        "items.html",
        service="crm",
        title="Catalogue",
        found=found,
        q=q,
        page=page,
        pages=pages,
        categories=loads(await list_categories(sales))["items"],
    )


@router.post("/console/items", response_class=HTMLResponse)
async def create_item(request: Request, sales: SalesDep) -> RedirectResponse:
    """Add an item (422 page naming a wrong field)."""
    item = loads(await catalogue.create_item(sales, await _item_in(request)))
    return see_other(f"/console/items/{item['id']}?saved=1")


@router.get("/console/items/{item_id}", response_class=HTMLResponse)
async def item_page(
    sales: SalesDep, item_id: Id, saved: Annotated[str, Query(max_length=1)] = ""
) -> HTMLResponse:
    """One item's edit form."""
    item = loads(await catalogue.get_item(sales, item_id))
    notice = f"Saved: version {item['version']}, the Shop shows it now." if saved else ""
    return templates.page(
        "item.html",
        service="crm",
        title=f"Item {item_id}",
        item=item,
        notice=notice,
        categories=loads(await list_categories(sales))["items"],
    )


@router.post("/console/items/{item_id}", response_class=HTMLResponse)
async def save_item(request: Request, sales: SalesDep, item_id: Id) -> RedirectResponse:
    """Replace the item's fields; its version goes up by one."""
    await catalogue.replace_item(sales, item_id, await _item_in(request))
    return see_other(f"/console/items/{item_id}?saved=1")
