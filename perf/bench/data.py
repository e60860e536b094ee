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
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import asyncpg

from orderflow import platform
from orderflow.kit.db import asyncpg_dsn
from orderflow.kit.settings import Settings
from orderflow.seed import Volumes, is_empty
from perf.common import databases, log

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


# The seed's layout: 2 since order ids carry their client's slot (`sales.caching.order_id`).
# A data set seeded before is left alone, not measured: a client's list page would not be
# on its client's shard, and the cluster's figures would be the old layout's.
SEED_LAYOUT = 2


def data_root(data_dir: Path, orders: int) -> Path:
    """Where the servers keep the data set of `orders` orders (seeded by this layout)."""
    return data_dir.resolve() / f"orders-{orders}-v{SEED_LAYOUT}"


@contextmanager
def servers(data_dir: Path, orders: int, *, reseed: bool) -> Iterator[Settings]:
    """Settings pointing at running, migrated, seeded servers; stopped on exit. ORDERFLOW_*
    variables are ignored: they must not point the bench elsewhere."""
    data_dir = data_root(data_dir, orders)
    with databases(data_dir, configured=False) as found:
        live = found.settings
        held = asyncio.run(_order_count(live.shop_dsn))
        if held is not None and held != orders:
            if not reseed:
                raise DataDirMismatch(
                    f"{data_dir} holds {held:,} orders, not {orders:,}: pass --reseed to drop "
                    "and seed it again, or another --data-dir"
                )
            log(f"dropping {held:,} orders to seed {orders:,}")
            asyncio.run(_recreate(live))
            platform.migrate(live)
            held = None
        if held is None:
            log(f"seeding {orders:,} orders into {data_dir}")
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
