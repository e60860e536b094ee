"""Client profile endpoints."""

from fastapi import APIRouter

from orderflow.kit.errors import UNAVAILABLE
from orderflow.kit.http import JSONBytes, Responses
from orderflow.kit.params import Id
from orderflow.sales.clients import service
from orderflow.sales.clients.schemas import ClientIn, ClientOut, ClientPatch
from orderflow.sales.context import SalesDep

router = APIRouter(prefix="/clients", tags=["clients"], responses=UNAVAILABLE)
NOT_FOUND: Responses = {404: {"description": "No client with this id"}}
EMAIL_TAKEN: Responses = {409: {"description": "The email belongs to another client"}}


@router.post("", response_model=ClientOut, status_code=201, responses=EMAIL_TAKEN)
async def create_client(sales: SalesDep, body: ClientIn) -> JSONBytes:
    """Register a client; emails are unique."""
    return JSONBytes(await service.create_client(sales, body), status_code=201)


@router.get("/{client_id}", response_model=ClientOut, responses=NOT_FOUND)
async def get_client(sales: SalesDep, client_id: Id) -> JSONBytes:
    """One client's profile."""
    return JSONBytes(await service.get_client(sales, client_id))


@router.patch("/{client_id}", response_model=ClientOut, responses={**NOT_FOUND, **EMAIL_TAKEN})
async def update_client(sales: SalesDep, client_id: Id, body: ClientPatch) -> JSONBytes:
    """Change some of a client's fields."""
    return JSONBytes(await service.update_client(sales, client_id, body))
