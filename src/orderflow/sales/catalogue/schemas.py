"""Catalogue shapes. Prices are integers in minor units (cents)."""

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from orderflow.data.shopdb import Item
from orderflow.kit.params import NO_NUL

Name = Field(min_length=1, max_length=200, pattern=NO_NUL)
Category = Field(min_length=1, max_length=100, pattern=NO_NUL)
Price = Field(ge=0, le=100_000_000_00)


class ItemIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: str = Name
    category: str = Category
    price: int = Price
    description: str = Field("", max_length=5000, pattern=NO_NUL)


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
