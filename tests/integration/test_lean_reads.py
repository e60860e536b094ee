"""What a cache miss reads (`OrderReads`, kit/lean.py): the same bytes as the ORM's writes put,
the same pages as the ORM's queries, and a pool that survives PostgreSQL closing its
connections (no pre-ping)."""

import asyncio
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from sqlalchemy import func, select

from orderflow.data.shopdb import Client, Order
from orderflow.kit.db import asyncpg_dsn
from orderflow.kit.deps import Sessions
from orderflow.kit.http import dumps
from orderflow.kit.settings import Settings
from orderflow.sales.clients.repository import ClientReads
from orderflow.sales.clients.schemas import client_dict, client_row_dict
from orderflow.sales.orders.repository import OrderReads, OrderRepository
from orderflow.sales.orders.schemas import order_dict, order_row_dict
from tests.clients import api


async def test_a_miss_loads_the_bytes_that_writes_put(shop_sessions: Sessions) -> None:
    """The write-through entries are `order_dict` of ORM entities; a miss must fill the very
    same bytes, or the ORDER entity's `version` must change."""
    async with shop_sessions() as session:
        orders = (await session.scalars(select(Order).order_by(Order.id))).all()
        lines = await OrderRepository(session).lines_of([o.id for o in orders])
    reads = OrderReads(shop_sessions)
    rows = {row["id"]: row for row in await reads.many([o.id for o in orders])}
    assert len(rows) == len(orders) > 100
    for order in orders:
        expected = dumps(order_dict(order, lines[order.id]))
        assert dumps(order_row_dict(rows[order.id])) == expected
    one = await reads.one(orders[0].id)
    assert one is not None
    assert dumps(order_row_dict(one)) == dumps(order_dict(orders[0], lines[orders[0].id]))
    assert await reads.one(987_654_321) is None


async def test_a_client_miss_loads_the_bytes_of_the_entity(shop_sessions: Sessions) -> None:
    async with shop_sessions() as session:
        clients = (await session.scalars(select(Client).order_by(Client.id))).all()
    assert clients
    reads = ClientReads(shop_sessions)
    for client in clients:
        row = await reads.one(client.id)
        assert row is not None
        assert dumps(client_row_dict(row)) == dumps(client_dict(client))
    assert await reads.one(987_654_321) is None


FILTERS = [
    {},
    {"status": "created"},
    {"status": "delivered"},
    {"client_id": 3},
    {"client_id": 3, "status": "delivered"},
    {"client_id": 987_654},
    {"created_from": -40},
    {"created_from": -40, "created_to": -5, "status": "confirmed"},
    {"created_to": -20},
]


@pytest.mark.parametrize(("limit", "offset"), [(20, 0), (7, 3), (50, 280)])
@pytest.mark.parametrize("filters", FILTERS, ids=lambda f: ",".join(f) or "all")
async def test_a_page_of_ids_is_the_orms(
    shop_sessions: Sessions, filters: dict[str, object], limit: int, offset: int
) -> None:
    now = datetime.now(UTC)
    args = {
        "status": filters.get("status"),
        "client_id": filters.get("client_id"),
        "created_from": _days(now, filters.get("created_from")),
        "created_to": _days(now, filters.get("created_to")),
    }
    where = [
        Order.status == args["status"] if args["status"] else None,
        Order.client_id == args["client_id"] if args["client_id"] else None,
        Order.created_at >= args["created_from"] if args["created_from"] else None,
        Order.created_at < args["created_to"] if args["created_to"] else None,
    ]
    conds = [w for w in where if w is not None]
    async with shop_sessions() as session:
        ids = await session.scalars(
            select(Order.id)
            .where(*conds)
            .order_by(Order.created_at.desc(), Order.id.desc())
            .limit(limit)
            .offset(offset)
        )
        total = await session.scalar(select(func.count()).select_from(Order).where(*conds))
    page = await OrderReads(shop_sessions).page_of_ids(**args, limit=limit, offset=offset)  # type: ignore[arg-type]
    assert page == (list(ids), total)


def _days(now: datetime, days: object) -> datetime | None:
    return now + timedelta(days=days) if isinstance(days, int) else None


async def test_connections_closed_by_postgresql_are_replaced(settings: Settings) -> None:
    """A restart (here: every backend of the service terminated) closes the pooled
    connections; without a pre-ping the pool drops them at checkout and answers as before."""
    uncached = settings.model_copy(update={"redis_url": ""})  # every read from PostgreSQL
    conn = await asyncpg.connect(asyncpg_dsn(settings.shop_dsn))
    try:
        order_id = await conn.fetchval("SELECT min(id) FROM orders")
    finally:
        await conn.close()
    async with api("shop", uncached) as shop:
        started = datetime.now(UTC)
        reads = [f"/orders/{order_id}", "/clients/1", "/clients/1/orders", "/items/1"]
        await asyncio.gather(*(shop.get(path) for path in reads * 4))  # several connections
        killed = await _terminate_backends_since(settings.shop_dsn, started)
        assert killed >= 1
        await asyncio.sleep(0.2)  # asyncpg reads the server's goodbye on the idle sockets
        for path in reads:
            assert (await shop.get(path)).status_code == 200, path
        answers = await asyncio.gather(*(shop.get(path) for path in reads * 4))
        assert [r.status_code for r in answers] == [200] * len(answers)


async def _terminate_backends_since(dsn: str, started: datetime) -> int:
    """Terminate the service's connections opened since `started` (not other tests')."""
    conn = await asyncpg.connect(asyncpg_dsn(dsn))
    try:
        killed = await conn.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND application_name = 'orderflow-shopdb' "
            "AND backend_start >= $1 AND pid <> pg_backend_pid()",
            started,
        )
        return int(killed)
    finally:
        await conn.close()
