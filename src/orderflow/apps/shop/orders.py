"""Shop order endpoints: a client places, reads and cancels orders."""

from typing import Annotated

from fastapi import APIRouter, Header

from orderflow.kit.errors import UNAVAILABLE
from orderflow.kit.http import JSONBytes, Responses
from orderflow.kit.pagination import PageDep
from orderflow.kit.params import Id
from orderflow.kit.security import NO_FORM
from orderflow.sales.context import SalesDep
from orderflow.sales.orders import placement, reads, transitions
from orderflow.sales.orders.schemas import OrderIn, OrderList, OrderOut

router = APIRouter(tags=["orders"], responses=UNAVAILABLE)
NOT_FOUND: Responses = {404: {"description": "No order with this id"}}
CONFLICT: Responses = {409: {"description": "The order's status does not allow this"}}

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=200,
        pattern=r"^[\x21-\x7e]+$",
        description="a repeat with the same key and body returns the same order",
    ),
]


@router.post(
    "/orders",
    response_model=OrderOut,
    status_code=201,
    responses={
        200: {
            "model": OrderOut,
            "description": "A repeat of an earlier request (same key and body): the same order",
            "headers": {"Idempotent-Replayed": {"required": True, "schema": {"const": "true"}}},
        }
    },
)
async def place_order(
    sales: SalesDep, body: OrderIn, idempotency_key: IdempotencyKey = None
) -> JSONBytes:
    """Place an order. Send an `Idempotency-Key` so that a retry never makes a second order."""
    data, created = await placement.place_order(sales, body, idempotency_key)
    if created:
        return JSONBytes(data, status_code=201)
    return JSONBytes(data, status_code=200, headers={"Idempotent-Replayed": "true"})


@router.get("/orders/{order_id}", response_model=OrderOut, responses=NOT_FOUND)
async def get_order(sales: SalesDep, order_id: Id) -> JSONBytes:
    """One order with its lines."""
    return JSONBytes(await reads.get_order(sales, order_id))


@router.get("/clients/{client_id}/orders", response_model=OrderList, responses=NOT_FOUND)
async def orders_of_client(sales: SalesDep, client_id: Id, page: PageDep) -> JSONBytes:
    """A client's orders, newest first."""
    return JSONBytes(await reads.orders_of_client(sales, client_id, page))


@router.post(
    "/orders/{order_id}/cancel",
    response_model=OrderOut,
    responses={**NOT_FOUND, **CONFLICT},
    dependencies=[NO_FORM],  # body-less: no form of another site may reach it
)
async def cancel_order(sales: SalesDep, order_id: Id) -> JSONBytes:
    """Cancel an order that is still `created` or `confirmed`."""
    return JSONBytes(await transitions.transition(sales, order_id, "cancel"))
