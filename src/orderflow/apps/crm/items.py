"""CRM catalogue endpoints: sellers add and edit items."""

from fastapi import APIRouter

from orderflow.kit.http import JSONBytes
from orderflow.kit.params import Id
from orderflow.sales.context import ShopDep
from orderflow.sales.catalogue import service
from orderflow.sales.catalogue.schemas import ItemIn, ItemOut

router = APIRouter(prefix="/items", tags=["catalogue"])


@router.post("", response_model=ItemOut, status_code=201)
async def create_item(shop: ShopDep, body: ItemIn) -> JSONBytes:
    """Add an item to the catalogue."""
    return JSONBytes(await service.create_item(shop, body), status_code=201)


@router.put("/{item_id}", response_model=ItemOut, responses={404: {"description": "No such item"}})
async def replace_item(shop: ShopDep, item_id: Id, body: ItemIn) -> JSONBytes:
    """Replace an item's fields; its version goes up by one."""
    return JSONBytes(await service.replace_item(shop, item_id, body))
