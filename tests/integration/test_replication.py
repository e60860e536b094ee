"""`kit.replication.replicated` against a real PostgreSQL: at once without synchronous
replication; with a synchronous standby named that never confirms, TimeoutError (the answer is
503) instead of an acknowledgement of a state a failover could lose. The fence with a real
standby, before and after a failover, is `make multihost`'s (tests/multihost)."""

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine

from orderflow.kit.db import sqlalchemy_url
from orderflow.kit.embedded import EmbeddedPostgres, free_port
from orderflow.kit.replication import replicated


@pytest.fixture(scope="module")
def lone_pg(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedPostgres]:
    """A server of its own: naming a synchronous standby would stall every other test's commits."""
    pg = EmbeddedPostgres(
        Path(tmp_path_factory.mktemp("pg-sync")) / "data", free_port(), durable=False
    )
    pg.start()
    try:
        yield pg
    finally:
        pg.stop()


@pytest.fixture
async def session(lone_pg: EmbeddedPostgres) -> AsyncIterator[AsyncSession]:
    engine = create_async_engine(sqlalchemy_url(lone_pg.dsn("postgres")))
    try:
        async with async_sessionmaker(engine)() as session, session.begin():
            yield session
    finally:
        await engine.dispose()


async def _standby_names(pg: EmbeddedPostgres, names: str) -> None:
    engine = create_async_engine(sqlalchemy_url(pg.dsn("postgres")), isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            await conn.exec_driver_sql(f"ALTER SYSTEM SET synchronous_standby_names = '{names}'")
            await conn.exec_driver_sql("SELECT pg_reload_conf()")
    finally:
        await engine.dispose()


async def test_without_synchronous_replication_it_returns_at_once(session: AsyncSession) -> None:
    await replicated(session, wait_s=0.0)


async def test_a_standby_that_never_confirms_times_out(lone_pg: EmbeddedPostgres) -> None:
    await _standby_names(lone_pg, "a_standby_that_is_not_there")
    try:
        engine = create_async_engine(sqlalchemy_url(lone_pg.dsn("postgres")))
        try:
            async with async_sessionmaker(engine)() as session, session.begin():
                with pytest.raises(TimeoutError, match="not on a synchronous standby"):
                    await replicated(session, wait_s=0.2)
        finally:
            await engine.dispose()
    finally:
        await _standby_names(lone_pg, "")
