"""Engines and session factories (transactions are `kit.unit_of_work.UnitOfWork`'s)."""

from typing import Any

from sqlalchemy import event
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import ConnectionPoolEntry

from orderflow.kit import metrics
from orderflow.kit.settings import Settings


def sqlalchemy_url(dsn: str) -> str:
    """Accept plain `postgresql://` DSNs and point SQLAlchemy at asyncpg."""
    for prefix in ("postgresql+asyncpg://", "postgresql://", "postgres://"):
        if dsn.startswith(prefix):
            return "postgresql+asyncpg://" + dsn[len(prefix) :]
    raise ValueError(f"not a PostgreSQL DSN: {dsn!r}")


def asyncpg_dsn(dsn: str) -> str:
    return "postgresql://" + sqlalchemy_url(dsn).removeprefix("postgresql+asyncpg://")


def create_engine(dsn: str, settings: Settings, *, database: str) -> AsyncEngine:
    """The pool of one database. No `pool_pre_ping`: it cost three round trips (BEGIN, `;`,
    ROLLBACK) on every checkout, more than the read it guarded. A connection that PostgreSQL
    closed (a restart, a terminated backend) is known closed to asyncpg, and `_drop_closed`
    replaces it at checkout for free; one that died unnoticed fails its statement, which
    answers 503 (`kit.errors`), and SQLAlchemy then invalidates the pool's connections.

    Up to twice `db_pool_size` connections, opened as the load needs them and then kept: an
    overflow connection, closed whenever it came back to a pool with `db_pool_size` idle,
    made a steady load above that size reconnect (and prepare its statements again) every
    few requests, doubling the CPU of a read. PostgreSQL must allow that many either way."""
    engine = create_async_engine(
        sqlalchemy_url(dsn),
        pool_size=2 * settings.db_pool_size,
        max_overflow=0,
        pool_timeout=settings.db_connect_timeout_s,
        connect_args={
            "timeout": settings.db_connect_timeout_s,
            "command_timeout": settings.db_statement_timeout_s,
            "server_settings": {"application_name": f"orderflow-{database}"},
        },
        execution_options={"orderflow_database": database},  # the metrics' label (kit/lean.py)
    )
    _count_queries(engine, database)
    event.listen(engine.sync_engine, "checkout", _drop_closed)
    return engine


def _drop_closed(dbapi_connection: Any, record: ConnectionPoolEntry, proxy: Any) -> None:
    """At checkout: a connection asyncpg saw closed is dropped (the pool connects afresh)."""
    driver = record.driver_connection
    if driver is not None and driver.is_closed():
        raise DisconnectionError("closed by the server while pooled")


BACKGROUND = {"orderflow_background": True}  # execution options: not a request's statement


def _count_queries(engine: AsyncEngine, database: str) -> None:
    counter = metrics.DB_QUERIES.labels(database=database)
    background = metrics.UPKEEP_QUERIES.labels(database=database)

    @event.listens_for(engine.sync_engine, "before_cursor_execute")
    def _before(*args: Any) -> None:
        context = args[4]
        if context is not None and context.execution_options.get("orderflow_background"):
            background.inc()
        else:
            counter.inc()


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)
