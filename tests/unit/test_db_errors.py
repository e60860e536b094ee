"""Which exceptions mean "PostgreSQL is unavailable" (503 with Retry-After), which mean "the
client sent a value PostgreSQL refuses" (422), and which are bugs (500).

The asyncpg errors are passed through SQLAlchemy's own asyncpg dialect translation, so the
tests see the very exception objects a request handler sees: a `sqlalchemy.exc.DBAPIError`
(or subclass) whose `orig` is the dialect's adapted error, caused by the asyncpg exception.
"""

import socket
from collections.abc import Callable
from typing import Any

import asyncpg
import httpx
import pytest
import redis.exceptions
from fastapi import FastAPI
from sqlalchemy.dialects.postgresql.asyncpg import (
    AsyncAdapt_asyncpg_connection,
    AsyncAdapt_asyncpg_dbapi,
)
from sqlalchemy.exc import DBAPIError, InterfaceError, NoResultFound, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from orderflow.kit.errors import install_handlers, is_bad_value, is_connection_error

PG = asyncpg.exceptions
DBAPI = AsyncAdapt_asyncpg_dbapi(asyncpg)


def through_sqlalchemy(error: Exception, *, invalidated: bool = False) -> BaseException:
    """What SQLAlchemy raises when asyncpg raises `error` during a statement."""
    try:
        AsyncAdapt_asyncpg_connection._handle_exception_no_connection(DBAPI, error)
    except DBAPI.Error as adapted:
        return DBAPIError.instance(
            "SELECT 1", {}, adapted, DBAPI.Error, connection_invalidated=invalidated
        )
    except type(error) as untranslated:  # not a DB-API error: SQLAlchemy lets it through as is
        return untranslated


def test_the_helper_builds_what_sqlalchemy_raises() -> None:
    wrapped = through_sqlalchemy(PG.UniqueViolationError("duplicate key"))
    assert type(wrapped).__name__ == "IntegrityError"
    assert isinstance(wrapped, DBAPIError)
    assert isinstance(wrapped.orig.__cause__, PG.UniqueViolationError)
    refused = ConnectionRefusedError(111, "Connection refused")
    assert through_sqlalchemy(refused) is refused


UNAVAILABLE: list[tuple[str, Callable[[], BaseException]]] = [
    ("connection refused", lambda: ConnectionRefusedError(111, "Connection refused")),
    ("connection reset", lambda: ConnectionResetError(104, "Connection reset by peer")),
    ("network unreachable", lambda: OSError(101, "Network is unreachable")),
    ("host name not resolved", lambda: socket.gaierror(-2, "Name or service not known")),
    ("connect timeout", lambda: TimeoutError()),
    ("pool exhausted", lambda: PoolTimeoutError("QueuePool limit of size 10 reached")),
    ("sqlalchemy operational", lambda: OperationalError("SELECT 1", {}, Exception("down"))),
    ("sqlalchemy interface", lambda: InterfaceError("SELECT 1", {}, Exception("closed"))),
    (
        "connection closed under a statement",
        lambda: through_sqlalchemy(PG.InterfaceError("connection is closed")),
    ),
    (
        "connection lost (wrapped)",
        lambda: through_sqlalchemy(PG.ConnectionDoesNotExistError("connection was closed")),
    ),
    ("connection lost (bare asyncpg)", lambda: PG.ConnectionDoesNotExistError("closed")),
    ("connection failure (bare asyncpg)", lambda: PG.ConnectionFailureError("failure")),
    (
        "server starting up",
        lambda: through_sqlalchemy(PG.CannotConnectNowError("the database system is starting")),
    ),
    (
        "server shutting down",
        lambda: through_sqlalchemy(PG.AdminShutdownError("terminating connection")),
    ),
    (
        "statement timeout",
        lambda: through_sqlalchemy(PG.QueryCanceledError("canceling statement due to timeout")),
    ),
    (
        "any error after which SQLAlchemy invalidated the connection",
        lambda: through_sqlalchemy(PG.PostgresError("boom"), invalidated=True),
    ),
]

NOT_UNAVAILABLE: list[tuple[str, Callable[[], BaseException]]] = [
    ("unique violation", lambda: through_sqlalchemy(PG.UniqueViolationError("duplicate"))),
    ("foreign key", lambda: through_sqlalchemy(PG.ForeignKeyViolationError("no such item"))),
    ("syntax error", lambda: through_sqlalchemy(PG.PostgresSyntaxError("syntax error"))),
    ("deadlock", lambda: through_sqlalchemy(PG.DeadlockDetectedError("deadlock detected"))),
    ("serialization", lambda: through_sqlalchemy(PG.SerializationError("could not serialize"))),
    ("NUL in text", lambda: through_sqlalchemy(PG.CharacterNotInRepertoireError("0x00"))),
    ("wrong password", lambda: through_sqlalchemy(PG.InvalidPasswordError("auth failed"))),
    ("plain DBAPIError", lambda: DBAPIError("SELECT 1", {}, Exception("x"))),
    ("no row", lambda: NoResultFound()),
    ("a bug", lambda: KeyError("id")),
    ("a value error", lambda: ValueError("bad")),
    ("redis down", lambda: redis.exceptions.ConnectionError("Redis refused")),
]


@pytest.mark.parametrize(("case", "make"), UNAVAILABLE, ids=[c for c, _ in UNAVAILABLE])
def test_postgresql_unavailable(case: str, make: Callable[[], BaseException]) -> None:
    assert is_connection_error(make())


@pytest.mark.parametrize(("case", "make"), NOT_UNAVAILABLE, ids=[c for c, _ in NOT_UNAVAILABLE])
def test_not_an_outage(case: str, make: Callable[[], BaseException]) -> None:
    assert not is_connection_error(make())


@pytest.mark.parametrize(
    "error",
    [
        PG.CharacterNotInRepertoireError("invalid byte sequence for encoding UTF8: 0x00"),
        PG.DatetimeFieldOverflowError("date/time field value out of range"),
        PG.InvalidTextRepresentationError("invalid input syntax"),
        PG.DataError("invalid input for query argument $1"),  # asyncpg's own encoding check
    ],
    ids=lambda e: type(e).__name__,
)
def test_values_postgresql_refuses(error: Exception) -> None:
    assert is_bad_value(through_sqlalchemy(error))


@pytest.mark.parametrize(
    "error",
    [
        through_sqlalchemy(PG.UniqueViolationError("duplicate")),
        through_sqlalchemy(PG.QueryCanceledError("timeout")),
        ConnectionRefusedError(111, "refused"),
        ValueError("not from PostgreSQL"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_other_errors_are_no_bad_value(error: BaseException) -> None:
    assert not is_bad_value(error)


# ---- the answer a request gets --------------------------------------------------------------


def app_raising(error: BaseException) -> FastAPI:
    app = FastAPI()
    install_handlers(app)

    @app.get("/boom")
    async def boom() -> dict[str, Any]:
        raise error

    return app


async def answer(error: BaseException) -> httpx.Response:
    # Starlette re-raises what only the catch-all handler answered: keep the response instead
    transport = httpx.ASGITransport(app=app_raising(error), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://unit") as client:
        return await client.get("/boom")


@pytest.mark.parametrize(("case", "make"), UNAVAILABLE, ids=[c for c, _ in UNAVAILABLE])
async def test_an_outage_answers_503_with_retry_after(
    case: str, make: Callable[[], BaseException]
) -> None:
    response = await answer(make())
    assert response.status_code == 503
    assert response.headers["retry-after"] == "1"
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["detail"] == "the database is unreachable"


async def test_a_refused_value_answers_422() -> None:
    response = await answer(through_sqlalchemy(PG.CharacterNotInRepertoireError("0x00")))
    assert response.status_code == 422
    assert "retry-after" not in response.headers


@pytest.mark.parametrize(
    "error",
    [
        through_sqlalchemy(PG.UniqueViolationError("duplicate")),
        through_sqlalchemy(PG.PostgresSyntaxError("syntax error")),
        KeyError("id"),
    ],
    ids=lambda e: type(e).__name__,
)
async def test_anything_else_answers_500_without_retry_after(error: BaseException) -> None:
    response = await answer(error)
    assert response.status_code == 500
    assert "retry-after" not in response.headers
    assert "duplicate" not in response.text and "syntax" not in response.text  # nothing leaks


@pytest.mark.parametrize(
    "error",
    [
        PG.TooManyConnectionsError("sorry, too many clients already"),  # 53300, at connect
        PG.ConnectionFailureError("connection failure"),  # 08006
        PG.ClientCannotConnectError("cannot connect"),  # 08001
        PG.ConnectionRejectionError("rejected"),  # 08004
        PG.CrashShutdownError("the server crashed"),  # 57P02
        PG.AdminShutdownError("terminating connection due to administrator command"),  # 57P01
        PG.CannotConnectNowError("the database system is starting up"),  # 57P03
        # 25006: a write on a server that became a standby (a failover under way)
        PG.ReadOnlySQLTransactionError("cannot execute INSERT in a read-only transaction"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_a_server_that_cannot_serve_now_is_unavailable_wrapped_or_not(error: Exception) -> None:
    """By SQLSTATE (classes 08 and 53, 57P01-57P03, 25006), whether or not SQLAlchemy wrapped it and
    whether or not it marked the connection invalidated: a 503 to retry, never a 500."""
    assert is_connection_error(error)
    assert is_connection_error(through_sqlalchemy(error))
