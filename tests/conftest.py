"""Real PostgreSQL and Redis for the whole test session.

With ORDERFLOW_TEST_PG_URL (a server the tests may create databases on) and
ORDERFLOW_TEST_REDIS_URL set, those servers are used; otherwise the session starts an
embedded PostgreSQL and redis-server in a temporary directory and stops them at the end.
Tests that need a Redis Cluster get one the same way: ORDERFLOW_TEST_REDIS_CLUSTER_URL (any
node of a cluster), or else an embedded cluster of 3 masters and 3 replicas.
"""

import asyncio
import os
import subprocess
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest
from redis.asyncio import Redis
from rich.progress import Progress
from sqlalchemy.ext.asyncio import AsyncEngine

from orderflow.data.migrations import upgrade
from orderflow.kit.db import asyncpg_dsn, create_engine, session_factory
from orderflow.kit.deps import Sessions
from orderflow.kit.embedded import (
    EmbeddedPostgres,
    EmbeddedRedis,
    free_port,
    free_port_range,
    redis_binaries,
)
from orderflow.kit.embedded_cluster import EmbeddedRedisCluster
from orderflow.kit.redis import create_cluster
from orderflow.kit.settings import Settings
from orderflow.relay.relay import Direction, opened
from orderflow.seed import Volumes, seed

TEST_VOLUMES = Volumes(items=60, categories=6, clients=40, orders=300, operators=60)


class PgServer:
    """An admin DSN to create databases on; `embedded` is set when we started it."""

    def __init__(self, admin_dsn: str, embedded: EmbeddedPostgres | None) -> None:
        self.admin_dsn = admin_dsn
        self.embedded = embedded

    def dsn(self, database: str) -> str:
        base, _, _ = self.admin_dsn.rpartition("/")
        return f"{base}/{database}"

    async def create_database(self, name: str) -> str:
        conn = await asyncpg.connect(asyncpg_dsn(self.admin_dsn))
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()
        return self.dsn(name)


@pytest.fixture(scope="session")
def pg_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PgServer]:
    if url := os.environ.get("ORDERFLOW_TEST_PG_URL"):
        yield PgServer(url, None)
        return
    pg = EmbeddedPostgres(tmp_path_factory.mktemp("pg") / "data", free_port(), durable=False)
    pg.start()
    try:
        yield PgServer(pg.dsn("postgres"), pg)
    finally:
        pg.stop()


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedRedis | None]:
    """The embedded redis-server, or None when ORDERFLOW_TEST_REDIS_URL names one."""
    if os.environ.get("ORDERFLOW_TEST_REDIS_URL"):
        yield None
        return
    redis = EmbeddedRedis(tmp_path_factory.mktemp("redis"), free_port())
    redis.start()
    try:
        yield redis
    finally:
        redis.stop()


# `ORDERFLOW_TEST_ON_CLUSTER=1` runs the platform's tests on the Redis Cluster (`redis_cluster`):
# `make test` runs the caching rules, the claim race and the short fault suite so, once more.
ON_CLUSTER = os.environ.get("ORDERFLOW_TEST_ON_CLUSTER") == "1"


def pytest_report_header() -> str:
    """Which embedded server the session starts (ORDERFLOW_EMBEDDED_REDIS: redis or valkey)."""
    server, _ = redis_binaries()
    version = subprocess.run([server, "--version"], capture_output=True, text=True).stdout
    return f"embedded server: {version.strip() or server}"


@pytest.fixture(scope="session")
def redis_url(request: pytest.FixtureRequest) -> str:
    """The Redis the platform under test uses: one node, or a cluster (`ON_CLUSTER`)."""
    if ON_CLUSTER:
        return str(request.getfixturevalue("redis_cluster_url"))
    server = request.getfixturevalue("redis_server")
    return server.url if server else os.environ["ORDERFLOW_TEST_REDIS_URL"]


@pytest.fixture(scope="session")
def redis_cluster(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[EmbeddedRedisCluster | None]:
    """An embedded Redis Cluster (3 masters, 3 replicas, started on first use), or None when
    ORDERFLOW_TEST_REDIS_CLUSTER_URL names one. Tests that kill nodes restore it before
    they end, since the session shares it."""
    if os.environ.get("ORDERFLOW_TEST_REDIS_CLUSTER_URL"):
        yield None
        return
    cluster = EmbeddedRedisCluster(tmp_path_factory.mktemp("redis-cluster"), free_port_range(6))
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="session")
def redis_cluster_url(redis_cluster: EmbeddedRedisCluster | None) -> str:
    """Any node of the test cluster: a cluster client finds the others from it."""
    return redis_cluster.url if redis_cluster else os.environ["ORDERFLOW_TEST_REDIS_CLUSTER_URL"]


@pytest.fixture(scope="session")
async def databases(pg_server: PgServer) -> tuple[str, str]:
    """Fresh, migrated and seeded ShopDB and MES db for this session."""
    return await fresh_databases(pg_server)


async def fresh_databases(pg_server: PgServer) -> tuple[str, str]:
    """A ShopDB and a MES db of their own, migrated and seeded with TEST_VOLUMES."""
    suffix = uuid.uuid4().hex[:8]
    shop = await pg_server.create_database(f"shopdb_test_{suffix}")
    mes = await pg_server.create_database(f"mesdb_test_{suffix}")
    await asyncio.to_thread(upgrade, "shopdb", shop)
    await asyncio.to_thread(upgrade, "mesdb", mes)
    with Progress(disable=True) as progress:
        await seed(shop, mes, TEST_VOLUMES, progress=progress)
    return shop, mes


@pytest.fixture(scope="session")
def settings(
    databases: tuple[str, str], redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Settings:
    shop, mes = databases
    return Settings(
        shop_dsn=shop,
        mes_dsn=mes,
        redis_url=redis_url,
        redis_cluster=ON_CLUSTER,
        data_dir=tmp_path_factory.mktemp("data"),
        db_statement_timeout_s=10,
        # These tests check what the cache does on a read, from the first read on: every key is
        # admitted. Admission on second sight has its own tests (tests/cache/test_admission.py).
        cache_admit_after=0,
        # The in-process clients' base URLs (tests/clients.py, Schemathesis' testserver).
        allowed_hosts="shop,crm,mes,test,testserver",
    )


@pytest.fixture(scope="session")
async def engines(settings: Settings) -> AsyncIterator[dict[str, AsyncEngine]]:
    found = {
        "shopdb": create_engine(settings.shop_dsn, settings, database="shopdb"),
        "mesdb": create_engine(settings.mes_dsn, settings, database="mesdb"),
    }
    yield found
    for engine in found.values():
        await engine.dispose()


@pytest.fixture(scope="session")
def shop_sessions(engines: dict[str, AsyncEngine]) -> Sessions:
    return session_factory(engines["shopdb"])


@pytest.fixture(scope="session")
def mes_sessions(engines: dict[str, AsyncEngine]) -> Sessions:
    return session_factory(engines["mesdb"])


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    """A client of the Redis under test (on a cluster, a cluster client: same commands)."""
    client = create_cluster(redis_url) if ON_CLUSTER else Redis.from_url(redis_url)
    yield client  # type: ignore[misc]
    await client.aclose()


def repo_root() -> Path:
    return Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
async def relay(settings: Settings) -> AsyncIterator[list[Direction]]:
    """The relay's two directions, with the caches and event stream they update after commit."""
    async with opened(settings) as ways:
        yield ways
