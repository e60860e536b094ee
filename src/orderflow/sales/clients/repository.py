"""All SQL over clients: `ClientRepository` in a unit of work, `ClientReads` for a cache miss
(one statement, no transaction, a plain row: `kit/lean.py`)."""

from asyncpg import Record
from sqlalchemy import exists, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from orderflow.data.shopdb import Client
from orderflow.kit.lean import fetch, fetchrow
from orderflow.kit.unit_of_work import Sessions

# In `schemas.client_dict`'s order, so that a row renders the same JSON as an entity.
CLIENT_BY_ID = (
    "SELECT id, name, email, phone, version, created_at, updated_at FROM clients WHERE id = $1"
)


class ClientReads:
    def __init__(self, sessions: Sessions) -> None:
        self.sessions = sessions

    async def one(self, client_id: int) -> Record | None:
        return await fetchrow(self.sessions, CLIENT_BY_ID, client_id)


class ClientSearch:
    """A seller looking for a client by part of a name or an email (no transaction)."""

    def __init__(self, sessions: Sessions) -> None:
        self.sessions = sessions

    async def matching(self, text: str, limit: int) -> list[Record]:
        escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        sql = (
            "SELECT id, name, email FROM clients WHERE name ILIKE $1 OR email ILIKE $1"
            " ORDER BY name, id LIMIT $2"
        )
        return await fetch(self.sessions, sql, f"%{escaped}%", limit)


class ClientRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, client_id: int) -> Client | None:
        return await self.session.get(Client, client_id)

    async def exists(self, client_id: int) -> bool:
        return bool(await self.session.scalar(select(exists().where(Client.id == client_id))))

    async def insert(self, **values: object) -> Client | None:
        """None when the email is taken (decided by the unique index, race-free)."""
        stmt = insert(Client).values(**values).on_conflict_do_nothing(index_elements=["email"])
        result = await self.session.scalars(stmt.returning(Client))
        return result.one_or_none()

    async def email_taken(self, email: str, *, other_than: int) -> bool:
        query = exists().where(Client.email == email, Client.id != other_than)
        return bool(await self.session.scalar(select(query)))

    async def update(self, client_id: int, **values: object) -> Client | None:
        result = await self.session.scalars(
            update(Client)
            .where(Client.id == client_id)
            .values(**values, version=Client.version + 1, updated_at=func.now())
            .returning(Client)
        )
        return result.one_or_none()
