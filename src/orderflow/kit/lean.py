"""Lean reads: one statement on a pooled connection, outside any transaction, without the ORM.

What a cache miss pays to PostgreSQL. A read through a `UnitOfWork` costs a session, BEGIN, the
ORM's statements, COMMIT, and (while the pool pinged) a BEGIN, `;` and ROLLBACK more: six to
eight round trips and milliseconds of Python for one order. A single statement needs no
transaction (it reads one snapshot), and asyncpg's own `fetch` prepares it once per connection.

    rows = await fetch(sales.sessions, "SELECT ... WHERE id = $1", order_id)

The connection is the engine's own pool's (its size, its wait timeout, its connect arguments,
its statement timeout), checked out, used and checked in inside one greenlet: each hop between
asyncio and SQLAlchemy's greenlets costs about as much as the statement itself, and the usual
`engine.connect()` / `execute()` / `close()` makes three. A failure that leaves PostgreSQL
unreachable answers 503 (`Unavailable`), and a connection it closed is dropped from the pool.
"""

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
from sqlalchemy import Engine
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.util import await_only, greenlet_spawn

from orderflow.kit import metrics
from orderflow.kit.errors import Unavailable, is_connection_error
from orderflow.kit.unit_of_work import Sessions

log = logging.getLogger(__name__)

LABEL = "orderflow_database"  # the engine's execution option naming its `database` (kit/db.py)

Query = Callable[[asyncpg.Connection], Awaitable[Any]]


async def fetch(sessions: Sessions, sql: str, *args: Any) -> list[asyncpg.Record]:
    """Every row of one statement, on a connection of `sessions`' engine."""
    rows: list[asyncpg.Record] = await run(sessions, lambda conn: conn.fetch(sql, *args))
    return rows


async def fetchrow(sessions: Sessions, sql: str, *args: Any) -> asyncpg.Record | None:
    """The first row of one statement (None: no row)."""
    row: asyncpg.Record | None = await run(sessions, lambda conn: conn.fetchrow(sql, *args))
    return row


class Params(list[Any]):
    """The positional parameters of a statement built piece by piece: `param(value)` keeps the
    value and answers its placeholder (`$1`, `$2`, ...)."""

    def __call__(self, value: Any) -> str:
        self.append(value)
        return f"${len(self)}"


async def fetch_page(sessions: Sessions, sql: str, args: Params) -> tuple[list[int], int]:
    """A list's page: `sql` selects `ids` (an array) and `total` in one row, as two
    subqueries of one statement."""
    row = await fetchrow(sessions, sql, *args)
    assert row is not None  # a SELECT of two subqueries always answers one row
    return list(row["ids"]), int(row["total"])


async def run(sessions: Sessions, query: Query) -> Any:
    """`query(connection)`: one statement on a raw asyncpg connection of the pool."""
    engine = engine_of(sessions)
    counter = metrics.DB_QUERIES.labels(database=engine.get_execution_options().get(LABEL, ""))
    return await greenlet_spawn(_run, engine.sync_engine, query, counter)


def engine_of(sessions: Sessions) -> AsyncEngine:
    engine = sessions.kw.get("bind")
    if not isinstance(engine, AsyncEngine):
        raise TypeError(f"the session factory is bound to {engine!r}, not an AsyncEngine")
    return engine


def _run(engine: Engine, query: Query, counter: Any) -> Any:
    """In a greenlet: check out (the pool drops connections asyncpg knows are closed, see
    `kit.db`), run, check in."""
    try:
        pooled = engine.raw_connection()
    except engine.dialect.loaded_dbapi.Error as exc:  # unwrapped: that is `Connection`'s job
        if not is_connection_error(exc.__cause__ or exc):
            raise  # not a server that cannot serve now (a wrong database name: a 500)
        log.warning("database unavailable: %r", exc)  # starting up, shutting down, too many
        raise Unavailable("the database is unreachable") from exc
    try:
        conn: asyncpg.Connection = pooled.driver_connection
        counter.inc()
        try:
            return await_only(query(conn))
        except Exception as exc:
            if conn.is_closed():  # PostgreSQL went away: a fresh connection next time
                pooled.invalidate(exc)
            elif not is_connection_error(exc):
                raise  # a wrong statement: the caller's error; the connection is fine
            log.warning("database unavailable: %r", exc)
            raise Unavailable("the database is unreachable") from exc
    finally:
        pooled.close()
