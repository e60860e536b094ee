"""Catalogue shapes. Prices are integers in minor units (cents)."""

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from orderflow.data.shopdb import Item
from orderflow.kit.params import FILLED, NO_NUL, NOT_BLANK, TEXT, JsonInt, Name

Category = Annotated[str, Field(max_length=100, json_schema_extra={"pattern": NOT_BLANK}), FILLED]
Description = Annotated[str, Field(max_length=5000, json_schema_extra={"pattern": NO_NUL}), TEXT]
Price = Field(ge=0, le=100_000_000_00)


class ItemIn(BaseModel):
    """The fields as sent; the texts are stored without their surrounding white space."""

    model_config = ConfigDict(extra="forbid")

    name: Name
    category: Category
    price: JsonInt = Price
    description: Description = ""


class ItemOut(BaseModel):
    id: int
    name: str
    category: str
    price: int
    description: str
    version: int
    updated_at: datetime


class ItemList(BaseModel):
    items: list[ItemOut]
    total: int


def item_dict(item: Item) -> dict[str, Any]:
    return {
        "id": item.id,
        "name": item.name,
        "category": item.category,
        "price": item.price,
        "description": item.description,
        "version": item.version,
        "updated_at": item.updated_at,
    }
