"""PostgreSQL announces orders placed and changed (shopdb_0005); a process's listener hands
them to the followers of that client, ends them when it loses PostgreSQL, and listens again."""

import asyncio

import httpx
from sqlalchemy import text

from orderflow.kit.deps import Sessions
from orderflow.kit.settings import Settings
from orderflow.sales.orders.changes import NAME, Change, listening
from tests.factories import new_client, new_order


async def wait_live(changes: object, timeout_s: float = 10) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not getattr(changes, "live", False):
        assert asyncio.get_running_loop().time() < deadline, "not listening"
        await asyncio.sleep(0.05)


async def test_a_follower_hears_its_clients_orders_only_and_is_ended_on_a_lost_connection(
    settings: Settings, shop: httpx.AsyncClient, crm: httpx.AsyncClient, shop_sessions: Sessions
) -> None:
    me, other = (await new_client(shop))["id"], (await new_client(shop))["id"]
    async with listening(settings.shop_dsn) as changes:
        await wait_live(changes)
        with changes.follow(me) as queue:
            await new_order(shop, client_id=other)
            placed = await new_order(shop, client_id=me)
            heard = await asyncio.wait_for(queue.get(), 5)
            assert heard == Change(me, placed["id"], 1)
            await crm.post(f"/orders/{placed['id']}/confirm")
            assert await asyncio.wait_for(queue.get(), 5) == Change(me, placed["id"], 2)
            assert queue.empty()

            async with shop_sessions() as session:  # PostgreSQL drops the listener
                await session.execute(
                    text(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                        " WHERE application_name = :name"
                    ),
                    {"name": NAME},
                )
            assert await asyncio.wait_for(queue.get(), 10) is None  # the page polls meanwhile
        await wait_live(changes)  # and listens again
        with changes.follow(me) as queue:
            await crm.post(f"/orders/{placed['id']}/cancel")
            assert await asyncio.wait_for(queue.get(), 5) == Change(me, placed["id"], 3)
