"""CRM order endpoints: sellers see every client's orders and move them along."""

from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel

from orderflow.kit.errors import UNAVAILABLE
from orderflow.kit.http import JSONBytes, Responses
from orderflow.kit.pagination import PageDep
from orderflow.kit.params import Id, Moment, QueryId
from orderflow.kit.security import NO_FORM
from orderflow.sales.context import SalesDep
from orderflow.sales.orders import reads, transitions
from orderflow.sales.orders.lifecycle import OrderStatus
from orderflow.sales.orders.schemas import OrderList, OrderOut

router = APIRouter(prefix="/orders", tags=["orders"], responses=UNAVAILABLE)
NOT_FOUND: Responses = {404: {"description": "No order with this id"}}
CONFLICT: Responses = {409: {"description": "The order's status does not allow this"}}
TRANSITION: Responses = {**NOT_FOUND, **CONFLICT}
FROM = "inclusive; an RFC 3339 date-time (2026-01-01T00:00:00Z), not after `created_to`"
TO = "exclusive; an RFC 3339 date-time (2026-02-01T00:00:00+01:00)"


class StatusCounts(BaseModel):
    counts: dict[OrderStatus, int]
    total: int


@router.get("", response_model=OrderList)
async def search_orders(
    sales: SalesDep,
    page: PageDep,
    status: OrderStatus | None = None,
    client_id: Annotated[QueryId | None, Query()] = None,
    created_from: Annotated[Moment | None, Query(description=FROM)] = None,
    created_to: Annotated[Moment | None, Query(description=TO)] = None,
) -> JSONBytes:
    """Orders of all clients, newest first, filtered by status, client and creation time."""
    body = await reads.list_orders(
        sales,
        status=status,
        client_id=client_id,
        created_from=created_from,
        created_to=created_to,
        page=page,
    )
    return JSONBytes(body)


@router.get("/stats", response_model=StatusCounts)
async def counts_by_status(sales: SalesDep) -> JSONBytes:
    """How many orders are in each status."""
    return JSONBytes(await reads.counts_by_status(sales))


@router.get("/{order_id}", response_model=OrderOut, responses=NOT_FOUND)
async def get_order(sales: SalesDep, order_id: Id) -> JSONBytes:
    """One order with its lines."""
    return JSONBytes(await reads.get_order(sales, order_id))


def _transition_route(action: str, summary: str) -> None:
    async def endpoint(sales: SalesDep, order_id: Id) -> JSONBytes:
        return JSONBytes(await transitions.transition(sales, order_id, action))

    endpoint.__name__ = f"{action}_order"
    endpoint.__doc__ = summary
    router.post(
        f"/{{order_id}}/{action}",
        response_model=OrderOut,
        responses=TRANSITION,
        dependencies=[NO_FORM],  # body-less: no form of another site may reach it
    )(endpoint)


_transition_route("confirm", "Confirm a `created` order; it is sent to production.")
_transition_route("ship", "Ship a `ready` order.")
_transition_route("deliver", "Mark a `shipped` order delivered.")
_transition_route("cancel", "Cancel a `created` or `confirmed` order.")
