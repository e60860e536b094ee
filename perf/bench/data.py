"""The bench's own PostgreSQL and Redis: embedded, under --data-dir, seeded once and reused.

The servers listen on free loopback ports, so that a bench can run beside `make run`, the
tests or another bench. Seeding 1M orders takes a minute and a half; the data dir keeps them
for the next run, one subdirectory per order count (`orders-1000000/`, `orders-20000/`), so
that a quick run does not cost the big run its data. A database holding another order count
than its directory says is refused (or, with `reseed=True`, dropped and seeded again): a
report must say how many orders it ran on.
"""

from __future__ import annotations

import asyncio
import os
import platform as py_platform
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path
from typing import Any

import asyncpg
from redis import Redis

from orderflow import platform
from orderflow.kit.db import asyncpg_dsn
from orderflow.kit.embedded import free_port
from orderflow.kit.settings import Settings
from orderflow.seed import Volumes, is_empty

PACKAGES: tuple[str, ...] = (
    "fastapi",
    "starlette",
    "uvicorn",
    "uvloop",
    "httptools",
    "redis",
    "hiredis",
)
PACKAGES += ("cashews", "sqlalchemy", "asyncpg", "orjson", "prometheus-client")


class DataDirMismatch(SystemExit):
    """The data dir holds another order count than asked for."""


def data_root(data_dir: Path, orders: int) -> Path:
    """Where the servers keep the data set of `orders` orders."""
    return data_dir.resolve() / f"orders-{orders}"


@contextmanager
def servers(data_dir: Path, orders: int, *, reseed: bool) -> Iterator[Settings]:
    """Settings pointing at running, migrated, seeded servers; stopped on exit."""
    data_dir = data_root(data_dir, orders)
    wanted = Settings(
        shop_dsn="",  # explicit: ORDERFLOW_* variables must not point the bench elsewhere
        mes_dsn="",
        redis_url="",
        data_dir=data_dir,
        embedded_pg_port=free_port(),
        embedded_redis_port=free_port(),
    )
    with platform.servers(wanted) as live:
        platform.migrate(live)
        held = asyncio.run(_order_count(live.shop_dsn))
        if held is not None and held != orders:
            if not reseed:
                raise DataDirMismatch(
                    f"{data_dir} holds {held:,} orders, not {orders:,}: pass --reseed to drop "
                    "and seed it again, or another --data-dir"
                )
            print(f"dropping {held:,} orders to seed {orders:,}", flush=True)
            asyncio.run(_recreate(live))
            platform.migrate(live)
            held = None
        if held is None:
            print(f"seeding {orders:,} orders into {data_dir}", flush=True)
            platform.load(live, Volumes(orders=orders))
        yield live


async def _order_count(shop_dsn: str) -> int | None:
    """How many orders ShopDB holds; None when it was never seeded."""
    if await is_empty(shop_dsn):
        return None
    conn = await asyncpg.connect(asyncpg_dsn(shop_dsn))
    try:
        return int(await conn.fetchval("SELECT count(*) FROM orders"))
    finally:
        await conn.close()


async def _recreate(live: Settings) -> None:
    admin = await asyncpg.connect(asyncpg_dsn(live.shop_dsn.rsplit("/", 1)[0] + "/postgres"))
    try:
        for db in ("shopdb", "mesdb"):
            await admin.execute(f'DROP DATABASE "{db}" WITH (FORCE)')
            await admin.execute(f'CREATE DATABASE "{db}"')
    finally:
        await admin.close()


def machine(live: Settings) -> dict[str, Any]:
    """What the report's header says about the machine and the software under test."""
    return {
        "nproc": os.cpu_count(),
        "cpu": _proc_field("/proc/cpuinfo", "model name") or py_platform.processor(),
        "ram_gib": round(int(_proc_field("/proc/meminfo", "MemTotal").split()[0]) / 2**20, 1),
        "kernel": py_platform.release(),
        "python": py_platform.python_version(),
        "postgresql": asyncio.run(_pg_version(live.shop_dsn)),
        "redis": str(Redis.from_url(live.redis_url).info("server")["redis_version"]),
        "packages": {name: metadata.version(name) for name in PACKAGES},
    }


def _proc_field(path: str, name: str) -> str:
    try:
        with open(path) as f:
            for line in f:
                if line.startswith(name):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return ""


async def _pg_version(dsn: str) -> str:
    conn = await asyncpg.connect(asyncpg_dsn(dsn))
    try:
        return str(await conn.fetchval("SHOW server_version"))
    finally:
        await conn.close()
