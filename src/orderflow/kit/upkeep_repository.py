"""SQL over a cache upkeep journal (`cache_upkeep`: both databases' tables have one shape)."""

from collections.abc import Sequence
from datetime import timedelta

import orjson
from sqlalchemy import BigInteger, any_, bindparam, delete, func, select, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession

from orderflow.cache import Key
from orderflow.data.base import UpkeepTable
from orderflow.kit.db import BACKGROUND
from orderflow.kit.upkeep import Upkeep, encode_key

Model = type[UpkeepTable]
# Plain text: an ORM-enabled INSERT of the model cost about 1 ms more per write in the write's
# transaction (measured; this one costs its round trip). Both databases' tables are named alike.
RECORD = text(
    "INSERT INTO cache_upkeep (entity, key, version, families, event, body) "
    "VALUES (:entity, :key, :version, CAST(:families AS jsonb), :event, CAST(:body AS jsonb)) "
    "RETURNING id"
)


class UpkeepRepository:
    """`background`: statements of the journal's own work, counted apart from requests'."""

    def __init__(self, session: AsyncSession, model: Model, *, background: bool = False) -> None:
        self.session = session
        self.model = model
        self.options = BACKGROUND if background else {}

    async def record(self, upkeep: Upkeep) -> int:
        """Journal `upkeep` in the session's transaction; returns the row's id."""
        row = upkeep.row()
        row["families"] = orjson.dumps(row["families"]).decode()
        row["body"] = None if row["body"] is None else orjson.dumps(row["body"]).decode()
        row_id = await self.session.scalar(RECORD, row, execution_options=self.options)
        assert row_id is not None
        return int(row_id)

    async def lock_due(self, older_than_s: float, limit: int) -> Sequence[UpkeepTable]:
        """The oldest rows left for `older_than_s`, locked; other processes skip them."""
        m = self.model
        due = func.now() - bindparam("age", timedelta(seconds=older_than_s))
        statement = (
            select(m)
            .where(m.created_at < due)
            .order_by(m.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        return (await self.session.scalars(statement, execution_options=self.options)).all()

    async def lock_entry(self, entity: str, key: Key) -> Sequence[UpkeepTable]:
        """Every row of one entry, locked; waits for a process that is repairing them now."""
        m = self.model
        statement = (
            select(m)
            .where(m.entity == entity, m.key == encode_key(key))
            .order_by(m.id)
            .with_for_update()
        )
        return (await self.session.scalars(statement, execution_options=self.options)).all()

    async def delete(self, ids: Sequence[int]) -> None:
        if ids:
            m = self.model
            wanted = bindparam("ids", list(ids), type_=ARRAY(BigInteger))
            statement = delete(m).where(m.id == any_(wanted))
            await self.session.execute(statement, execution_options=self.options)

    async def backlog(self) -> int:
        """Rows not yet deleted (applied, waiting for a delete, or left for repair)."""
        m = self.model
        statement = select(func.count()).select_from(m)
        return int(await self.session.scalar(statement, execution_options=self.options) or 0)
