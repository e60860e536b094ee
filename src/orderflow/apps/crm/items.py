"""CRM catalogue endpoints: sellers add and edit items."""

from fastapi import APIRouter

from orderflow.kit.errors import UNAVAILABLE
from orderflow.kit.http import JSONBytes
from orderflow.kit.params import Id
from orderflow.sales.catalogue import service
from orderflow.sales.catalogue.schemas import ItemIn, ItemOut
from orderflow.sales.context import SalesDep

router = APIRouter(prefix="/items", tags=["catalogue"], responses=UNAVAILABLE)


@router.post("", response_model=ItemOut, status_code=201)
async def create_item(sales: SalesDep, body: ItemIn) -> JSONBytes:
    """Add an item to the catalogue."""
    return JSONBytes(await service.create_item(sales, body), status_code=201)


@router.put("/{item_id}", response_model=ItemOut, responses={404: {"description": "No such item"}})
async def replace_item(sales: SalesDep, item_id: Id, body: ItemIn) -> JSONBytes:
    """Replace an item's fields; its version goes up by one."""
    return JSONBytes(await service.replace_item(sales, item_id, body))
