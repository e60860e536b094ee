"""SQL over a cache upkeep journal (`cache_upkeep`: both databases' tables have one shape)."""

from collections.abc import Sequence
from datetime import timedelta

import orjson
from sqlalchemy import BigInteger, any_, bindparam, delete, func, select, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from orderflow.data.base import UpkeepTable
from orderflow.kit.db import BACKGROUND
from orderflow.service_cache.upkeep import Upkeep

Model = type[UpkeepTable]
# Plain text: an ORM-enabled INSERT of the model cost about 1 ms more per write in the write's
# transaction (measured; this one costs its round trip). Both databases' tables are named alike.
RECORD = text(
    "INSERT INTO cache_upkeep (entity, key, version, families, event, body, traceparent) "
    "VALUES (:entity, :key, :version, CAST(:families AS jsonb), :event, CAST(:body AS jsonb), "
    ":traceparent) RETURNING id"
)
PENDING = text("SELECT EXISTS (SELECT 1 FROM cache_upkeep WHERE entity = :entity AND key = :key)")
# Whether some row was written over `age` ago: the rows `lock_due` takes. Not "the lowest id":
# ids are drawn at the insert and `created_at` at the transaction's start, so a row with a
# higher id can be older. The journal holds the rows in flight, a few hundred under load.
ANY_DUE = text(
    "SELECT EXISTS (SELECT 1 FROM cache_upkeep WHERE created_at < now() - CAST(:age AS interval))"
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

    async def pending(self, entity: str, key: str) -> bool:
        """Whether one entry (`key` as `encode_key` writes it) has rows, in this transaction."""
        found = await self.session.scalar(PENDING, {"entity": entity, "key": key})
        return bool(found)

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

    async def pending_rows(self, limit: int, ids: list[int] | None = None) -> Sequence[UpkeepTable]:
        """The oldest `limit` rows (of `ids` only, if given), whatever their age, not locked: a
        replay applies them all, those other processes are repairing now included (applying
        is idempotent)."""
        m = self.model
        statement = select(m).order_by(m.id).limit(limit)
        if ids is not None:
            statement = statement.where(m.id.in_(ids))
        return (await self.session.scalars(statement, execution_options=self.options)).all()

    async def lock_entry(self, entity: str, key: str, *, wait_ms: int) -> Sequence[UpkeepTable]:
        """Every row of one entry (`key` as `encode_key` writes it), locked; waits up to
        `wait_ms` for a process repairing them now (then `lock_timed_out`)."""
        m = self.model
        await self.session.execute(
            select(func.set_config("lock_timeout", str(wait_ms), True)),
            execution_options=self.options,
        )
        statement = (
            select(m).where(m.entity == entity, m.key == key).order_by(m.id).with_for_update()
        )
        return (await self.session.scalars(statement, execution_options=self.options)).all()

    @staticmethod
    def lock_timed_out(exc: DBAPIError) -> bool:
        """`exc` is the lock wait of `lock_entry` running out (SQLSTATE 55P03), or a deadlock
        PostgreSQL broke (40P01: a batched delete that took the same rows in another order)."""
        orig = getattr(exc.orig, "__cause__", None) or exc.orig
        return getattr(orig, "sqlstate", None) in ("55P03", "40P01")

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


async def any_due(sessions: async_sessionmaker[AsyncSession], older_than_s: float) -> bool:
    """Whether some row is left for `older_than_s`, in one statement outside a transaction.
    The repair worker asks first: most ticks find nothing, and a transaction (BEGIN, the
    locking SELECT, COMMIT) on every tick of every process was most of what an idle platform
    cost (`make idle`)."""
    async with sessions() as session:
        await session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
        age = timedelta(seconds=older_than_s)
        due = await session.scalar(ANY_DUE, {"age": age}, execution_options=BACKGROUND)
        return bool(due)
