"""The claims' data: a seeded database, N operators, Q fresh queued production orders, and
afterwards what PostgreSQL says about each of them."""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg
from rich.progress import Progress

from orderflow.kit.db import asyncpg_dsn
from orderflow.kit.settings import Settings
from orderflow.seed import Volumes, is_empty, seed
from perf.common import log

FIRST_BENCH_ID = 10**12  # far above any Shop order id: bench orders never shadow real ones


@dataclass(frozen=True)
class Dataset:
    operator_ids: list[int]
    order_ids: list[int]


@dataclass(frozen=True)
class Held:
    """One bench order as PostgreSQL has it after the claims."""

    order_id: int
    status: str
    operator_id: int | None
    assignments: int


async def prepare(settings: Settings, operators: int, orders: int) -> Dataset:
    """Seed when empty, make sure `operators` exist, queue `orders` fresh orders."""
    if await is_empty(settings.shop_dsn):
        volumes = Volumes(
            items=100, categories=10, clients=100, orders=1000, operators=max(operators, 20)
        )
        log(f"seeding a small data set: {volumes}")
        with Progress(disable=True) as progress:
            await seed(settings.shop_dsn, settings.mes_dsn, volumes, progress=progress)
    conn = await asyncpg.connect(asyncpg_dsn(settings.mes_dsn))
    try:
        return Dataset(await ensure_operators(conn, operators), await queue_orders(conn, orders))
    finally:
        await conn.close()


async def ensure_operators(conn: asyncpg.Connection, count: int) -> list[int]:
    """The first `count` operators, adding some when a configured database has fewer."""
    ids = [
        r["id"] for r in await conn.fetch("SELECT id FROM operators ORDER BY id LIMIT $1", count)
    ]
    if len(ids) < count:
        added = await conn.fetch(
            "INSERT INTO operators (name) SELECT 'Bench operator ' || g "
            "FROM generate_series(1, $1) AS g RETURNING id",
            count - len(ids),
        )
        ids += [r["id"] for r in added]
    return ids


async def queue_orders(conn: asyncpg.Connection, count: int) -> list[int]:
    """`count` queued production orders in one statement; ids above everything there."""
    async with conn.transaction():
        top = await conn.fetchval("SELECT coalesce(max(id), 0) FROM production_orders")
        first = max(int(top) + 1, FIRST_BENCH_ID)
        await conn.execute(
            "INSERT INTO production_orders (id, status, lines) "
            "SELECT g, 'queued', '[{\"item_id\": 1, \"quantity\": 1}]'::jsonb "
            "FROM generate_series($1::bigint, $2::bigint) AS g",
            first,
            first + count - 1,
        )
    await conn.execute("ANALYZE production_orders")
    return list(range(first, first + count))


async def held_orders(mes_dsn: str, order_ids: list[int]) -> list[Held]:
    """Each bench order with its status, holder and number of assignments."""
    conn = await asyncpg.connect(asyncpg_dsn(mes_dsn))
    try:
        rows = await conn.fetch(
            "SELECT po.id, po.status, po.operator_id, count(a.id) AS assignments "
            "FROM production_orders po LEFT JOIN assignments a ON a.order_id = po.id "
            "WHERE po.id = ANY($1::bigint[]) GROUP BY po.id",
            order_ids,
        )
    finally:
        await conn.close()
    return [Held(r["id"], r["status"], r["operator_id"], int(r["assignments"])) for r in rows]
