"""Shop catalogue endpoints."""

from typing import Annotated

from fastapi import APIRouter, Query

from orderflow.kit.errors import UNAVAILABLE
from orderflow.kit.http import JSONBytes, Responses
from orderflow.kit.pagination import PageDep
from orderflow.kit.params import NO_NUL, Id
from orderflow.sales.catalogue import service
from orderflow.sales.catalogue.schemas import ItemList, ItemOut
from orderflow.sales.context import SalesDep

router = APIRouter(prefix="/items", tags=["catalogue"], responses=UNAVAILABLE)
NOT_FOUND: Responses = {404: {"description": "No item with this id"}}


@router.get("", response_model=ItemList)
async def list_items(
    sales: SalesDep,
    page: PageDep,
    category: Annotated[str | None, Query(max_length=100, pattern=NO_NUL)] = None,
    q: Annotated[
        str | None, Query(max_length=100, pattern=NO_NUL, description="substring of the name")
    ] = None,
) -> JSONBytes:
    """Browse the catalogue, optionally by category and name."""
    return JSONBytes(await service.search_items(sales, category, q, page))


@router.get("/{item_id}", response_model=ItemOut, responses=NOT_FOUND)
async def get_item(sales: SalesDep, item_id: Id) -> JSONBytes:
    """One item."""
    return JSONBytes(await service.get_item(sales, item_id))
