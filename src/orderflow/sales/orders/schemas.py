"""Order shapes. Money is in minor units (cents)."""

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from orderflow.data.shopdb import Order, OrderLine
from orderflow.kit.params import JsonInt
from orderflow.sales.orders.lifecycle import OrderStatus

MAX_ID = 2**63 - 1


class LineIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    item_id: JsonInt = Field(ge=1, le=MAX_ID)
    quantity: JsonInt = Field(ge=1, le=10_000)  # JSON numbers only: not true, not "2"


class OrderIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    client_id: JsonInt = Field(ge=1, le=MAX_ID)
    lines: list[LineIn] = Field(min_length=1, max_length=100)


class LineOut(BaseModel):
    item_id: int
    quantity: int
    unit_price: int


class OrderOut(BaseModel):
    id: int
    client_id: int
    status: OrderStatus
    lines: list[LineOut]
    total: int
    created_at: datetime
    updated_at: datetime
    version: int


class OrderList(BaseModel):
    items: list[OrderOut]
    total: int


def line_dict(line: OrderLine) -> dict[str, Any]:
    return {"item_id": line.item_id, "quantity": line.quantity, "unit_price": line.unit_price}


def order_dict(order: Order, lines: list[OrderLine]) -> dict[str, Any]:
    return {
        "id": order.id,
        "client_id": order.client_id,
        "status": order.status,
        "lines": [line_dict(line) for line in lines],
        "total": order.total,
        "created_at": order.created_at,
        "updated_at": order.updated_at,
        "version": order.version,
    }


def order_row_dict(row: Mapping[str, Any]) -> dict[str, Any]:
    """`order_dict` of a row of `repository.ORDER_ROW` (its lines as [item, quantity, price]
    arrays): the same dict, so the same JSON bytes as the write-through entries."""
    return {
        "id": row["id"],
        "client_id": row["client_id"],
        "status": row["status"],
        "lines": [
            {"item_id": item_id, "quantity": quantity, "unit_price": unit_price}
            for item_id, quantity, unit_price in row["lines"] or ()
        ],
        "total": row["total"],
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
        "version": row["version"],
    }
