"""MES endpoints: the production queue, claims, release and completion."""

from typing import Annotated

from fastapi import APIRouter, Query

from orderflow.kit.errors import UNAVAILABLE
from orderflow.kit.http import JSONBytes, Responses
from orderflow.kit.pagination import PageDep
from orderflow.kit.params import Id, QueryId
from orderflow.production.context import ProductionDep
from orderflow.production.orders import claims, reads
from orderflow.production.orders.schemas import (
    OperatorAction,
    ProductionOrderList,
    ProductionOrderOut,
    ProductionStatus,
)

router = APIRouter(prefix="/orders", tags=["production"], responses=UNAVAILABLE)
NOT_FOUND: Responses = {404: {"description": "No production order with this id"}}
REFUSED: Responses = {
    **NOT_FOUND,
    409: {"description": "Taken by another operator (the holder is named), or wrong status"},
    422: {"description": "Invalid body or unknown operator"},
}


@router.get("", response_model=ProductionOrderList)
async def search(
    p: ProductionDep,
    page: PageDep,
    status: ProductionStatus | None = None,
    operator_id: Annotated[QueryId | None, Query()] = None,
) -> JSONBytes:
    """The production board: the queue (`status=queued`) or an operator's orders."""
    return JSONBytes(await reads.search(p, status, operator_id, page))


@router.get("/{order_id}", response_model=ProductionOrderOut, responses=NOT_FOUND)
async def get_production_order(p: ProductionDep, order_id: Id) -> JSONBytes:
    """One production order."""
    return JSONBytes(await reads.get_production_order(p, order_id))


@router.post("/{order_id}/claim", response_model=ProductionOrderOut, responses=REFUSED)
async def claim(p: ProductionDep, order_id: Id, body: OperatorAction) -> JSONBytes:
    """Take a queued order. Exactly one of any number of racing operators wins."""
    return JSONBytes(await claims.claim(p, order_id, body.operator_id))


@router.post("/{order_id}/release", response_model=ProductionOrderOut, responses=REFUSED)
async def release(p: ProductionDep, order_id: Id, body: OperatorAction) -> JSONBytes:
    """Give a claimed order back to the queue (holder only)."""
    return JSONBytes(await claims.release(p, order_id, body))


@router.post("/{order_id}/complete", response_model=ProductionOrderOut, responses=REFUSED)
async def complete(p: ProductionDep, order_id: Id, body: OperatorAction) -> JSONBytes:
    """Finish a claimed order (holder only); the Shop order becomes `ready`."""
    return JSONBytes(await claims.complete(p, order_id, body))
