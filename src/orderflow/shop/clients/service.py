"""Client profiles."""

from sqlalchemy.exc import IntegrityError

from orderflow.kit.db import transaction
from orderflow.kit.deps import Sessions
from orderflow.kit.errors import Conflict, NotFound
from orderflow.kit.http import dumps
from orderflow.shop.clients.repository import ClientRepository
from orderflow.shop.clients.schemas import ClientIn, ClientPatch, client_dict


async def create_client(sessions: Sessions, data: ClientIn) -> bytes:
    async with transaction(sessions) as session:
        client = await ClientRepository(session).insert(**data.model_dump())
    if client is None:
        raise Conflict(f"a client with email {data.email} already exists", field="email")
    return dumps(client_dict(client))


async def get_client(sessions: Sessions, client_id: int) -> bytes:
    async with transaction(sessions) as session:
        client = await ClientRepository(session).get(client_id)
    if client is None:
        raise NotFound(f"client {client_id} does not exist")
    return dumps(client_dict(client))


async def update_client(sessions: Sessions, client_id: int, patch: ClientPatch) -> bytes:
    values = patch.model_dump(exclude_unset=True)
    try:
        async with transaction(sessions) as session:
            repo = ClientRepository(session)
            client = await (repo.update(client_id, **values) if values else repo.get(client_id))
    except IntegrityError as exc:  # the unique index on email decides, even between racers
        raise Conflict(f"a client with email {values.get('email')} already exists") from exc
    if client is None:
        raise NotFound(f"client {client_id} does not exist")
    return dumps(client_dict(client))
