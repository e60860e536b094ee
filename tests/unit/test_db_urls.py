"""DSN handling: plain PostgreSQL DSNs in, asyncpg's and SQLAlchemy's forms out."""

import pytest

from orderflow.kit.db import asyncpg_dsn, sqlalchemy_url

TAIL = "user:p%40ss@db.example:5432/shopdb?sslmode=require"


@pytest.mark.parametrize("scheme", ["postgresql://", "postgres://", "postgresql+asyncpg://"])
def test_every_postgresql_spelling_is_accepted(scheme: str) -> None:
    assert sqlalchemy_url(scheme + TAIL) == "postgresql+asyncpg://" + TAIL
    assert asyncpg_dsn(scheme + TAIL) == "postgresql://" + TAIL


def test_the_rest_of_the_dsn_is_kept_as_is() -> None:
    dsn = "postgresql://u@/shopdb?host=/run/postgresql&application_name=x"
    assert sqlalchemy_url(dsn).removeprefix("postgresql+asyncpg://") == dsn.removeprefix(
        "postgresql://"
    )


def test_conversions_are_idempotent() -> None:
    url = sqlalchemy_url("postgres://" + TAIL)
    assert sqlalchemy_url(url) == url
    dsn = asyncpg_dsn(url)
    assert asyncpg_dsn(dsn) == dsn


@pytest.mark.parametrize(
    "dsn",
    [
        "",
        "mysql://u@h/db",
        "redis://localhost:6379/0",
        "postgresql+psycopg://u@h/db",  # another driver: not silently swapped for asyncpg
        "POSTGRESQL://u@h/db",
        " postgresql://u@h/db",
        "db.example:5432/shopdb",
    ],
)
def test_anything_else_is_refused(dsn: str) -> None:
    with pytest.raises(ValueError, match="not a PostgreSQL DSN"):
        sqlalchemy_url(dsn)
    with pytest.raises(ValueError, match="not a PostgreSQL DSN"):
        asyncpg_dsn(dsn)
