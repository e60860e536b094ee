"""Client profiles: cache-aside, invalidated on every change (programmatic, per the decision)."""

import asyncio
from collections.abc import Iterable
from typing import Any

import orjson
from sqlalchemy.exc import IntegrityError

from orderflow.kit.errors import Conflict, NotFound
from orderflow.kit.http import dumps
from orderflow.sales.caching import CLIENT, CLIENT_TTL
from orderflow.sales.clients.repository import ClientReads, ClientRepository, ClientSearch
from orderflow.sales.clients.schemas import ClientIn, ClientPatch, client_dict, client_row_dict
from orderflow.sales.context import Sales
from orderflow.service_cache.upkeep import Upkeep


async def create_client(sales: Sales, data: ClientIn) -> bytes:
    async with sales.unit() as uow:
        client = await uow.repository(ClientRepository).insert(**data.model_dump())
    if client is None:
        raise Conflict(f"a client with email {data.email} already exists", field="email")
    return dumps(client_dict(client))


async def get_client(sales: Sales, client_id: int) -> bytes:
    async def load() -> tuple[int, bytes]:
        row = await ClientReads(sales.sessions).one(client_id)
        if row is None:
            raise NotFound(f"client {client_id} does not exist")
        return row["version"], dumps(client_row_dict(row))

    return await sales.cache.read(CLIENT, client_id, load, CLIENT_TTL)


async def find_clients(sales: Sales, text: str, limit: int = 20) -> list[dict[str, Any]]:
    """Clients whose name or email contains `text` (any case), by name; a seller's search,
    not cached: each is a different question."""
    rows = await ClientSearch(sales.sessions).matching(text, limit)
    return [dict(row) for row in rows]


async def client_names(sales: Sales, client_ids: Iterable[int]) -> dict[int, str]:
    """Each client's name, for lists of orders: cached reads of the clients, all at once."""

    async def name(client_id: int) -> str:
        try:
            return str(orjson.loads(await get_client(sales, client_id))["name"])
        except NotFound:
            return f"client {client_id}"

    ids = list(dict.fromkeys(client_ids))
    return dict(zip(ids, await asyncio.gather(*(name(i) for i in ids)), strict=True))


async def update_client(sales: Sales, client_id: int, patch: ClientPatch) -> bytes:
    values = patch.model_dump(exclude_unset=True)
    try:
        async with sales.unit() as uow:
            repo = uow.repository(ClientRepository)
            client = await (repo.update(client_id, **values) if values else repo.get(client_id))
            if client is None:
                raise NotFound(f"client {client_id} does not exist")
            if values:
                version = client.version
                await uow.keep_cached(
                    Upkeep(CLIENT, client_id, version),
                    lambda: sales.cache.invalidate(CLIENT, client_id, version),
                )
    except IntegrityError as exc:  # the unique index on email decides, even between racers
        raise Conflict(f"a client with email {values.get('email')} already exists") from exc
    return dumps(client_dict(client))
