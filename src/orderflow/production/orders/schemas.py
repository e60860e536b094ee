"""Production order shapes."""

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from asyncpg import Record
from pydantic import BaseModel, ConfigDict, Field

from orderflow.data.mesdb import ProductionOrder
from orderflow.kit.params import JSON_INTEGER, JsonInt

MAX_ID = 2**63 - 1


class ProductionStatus(StrEnum):
    QUEUED = "queued"
    IN_PROGRESS = "in_progress"
    DONE = "done"
    CANCELLED = "cancelled"


class OperatorAction(BaseModel):
    model_config = ConfigDict(extra="forbid")

    operator_id: JsonInt = Field(ge=1, le=MAX_ID)
    version: Annotated[int, Field(ge=1, le=MAX_ID), JSON_INTEGER] | None = Field(
        None, description="fencing token: the version the holder last saw"
    )


class ProductionLine(BaseModel):
    item_id: int
    quantity: int


class ProductionOrderOut(BaseModel):
    id: int
    status: ProductionStatus
    operator_id: int | None
    lines: list[ProductionLine]
    version: int
    created_at: datetime
    updated_at: datetime


class ProductionOrderList(BaseModel):
    items: list[ProductionOrderOut]
    total: int


FIELDS = ("id", "status", "operator_id", "lines", "version", "created_at", "updated_at")


def production_order_dict(order: ProductionOrder | Record) -> dict[str, Any]:
    """The order's JSON fields, from the ORM's object or a row of `lean_reads`."""
    if isinstance(order, ProductionOrder):
        return {name: getattr(order, name) for name in FIELDS}
    return {name: order[name] for name in FIELDS}
