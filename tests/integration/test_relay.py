"""The relay delivers every event once in effect, whatever dies in the middle."""

import asyncio
import signal
import time

import httpx
import pytest
from sqlalchemy import delete, func, select

from orderflow.data.mesdb import Product, ProductionOrder, StatusHistory
from orderflow.data.shopdb import ShopOutbox
from orderflow.kit.deps import Sessions
from orderflow.kit.settings import Settings
from orderflow.production.products.repository import ProductRepository
from orderflow.relay.outbox import OutboxRow
from orderflow.relay.relay import Direction, drain, opened
from tests.clients import running
from tests.factories import new_order


class Crash(Exception):
    pass


async def confirmed_orders(shop: httpx.AsyncClient, crm: httpx.AsyncClient, n: int) -> list[int]:
    ids = [(await new_order(shop))["id"] for _ in range(n)]
    for oid in ids:
        assert (await crm.post(f"/orders/{oid}/confirm")).status_code == 200
    return ids


async def queued_once(mes_sessions: Sessions, ids: list[int]) -> dict[int, int]:
    """How many times each order entered the queue (history rows) — must be 1 each."""
    async with mes_sessions() as session:
        rows = await session.execute(
            select(StatusHistory.order_id, func.count())
            .where(StatusHistory.order_id.in_(ids), StatusHistory.to_status == "queued")
            .group_by(StatusHistory.order_id)
        )
        counts = {order_id: n for order_id, n in rows}
        present = await session.scalar(
            select(func.count()).select_from(ProductionOrder).where(ProductionOrder.id.in_(ids))
        )
    assert present == len(ids)
    return counts


async def test_relay_dying_mid_batch_loses_and_duplicates_nothing(
    shop: httpx.AsyncClient,
    crm: httpx.AsyncClient,
    shop_sessions: Sessions,
    mes_sessions: Sessions,
    relay: list[Direction],
) -> None:
    await drain(relay)
    ids = await confirmed_orders(shop, crm, 10)
    applied = 0

    to_mes = relay[0]

    async def apply_then_die(event: OutboxRow) -> None:
        nonlocal applied
        if applied == 4:
            raise Crash  # after 4 events reached the MES, before the batch is marked published
        applied += 1
        await to_mes.apply(event)

    dying = Direction("shop_to_mes", shop_sessions, ShopOutbox, apply_then_die)
    with pytest.raises(Crash):
        await dying.deliver_batch(100)
    async with shop_sessions() as session:
        unpublished = await session.scalar(
            select(func.count()).select_from(ShopOutbox).where(ShopOutbox.published_at.is_(None))
        )
    assert unpublished == 10  # the batch rolled back: all will be redelivered
    await drain(relay)
    assert await queued_once(mes_sessions, ids) == dict.fromkeys(ids, 1)


async def test_relay_process_killed_repeatedly_under_load(
    shop: httpx.AsyncClient,
    crm: httpx.AsyncClient,
    settings: Settings,
    shop_sessions: Sessions,
    mes_sessions: Sessions,
    relay: list[Direction],
) -> None:
    await drain(relay)
    ids: list[int] = []
    for _ in range(6):  # SIGKILL the real relay process while confirms keep arriving
        with running(["relay"], settings) as relay:
            ids += await confirmed_orders(shop, crm, 8)
            await asyncio.sleep(0.3)
            relay.send_signal(signal.SIGKILL)
            relay.wait()
    with running(["relay"], settings):
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            async with mes_sessions() as session:
                count = await session.scalar(
                    select(func.count())
                    .select_from(ProductionOrder)
                    .where(ProductionOrder.id.in_(ids))
                )
            if count == len(ids):
                break
            await asyncio.sleep(0.1)
    assert await queued_once(mes_sessions, ids) == dict.fromkeys(ids, 1)


async def test_queued_orders_carry_item_names_and_the_relay_names_older_ones_as_it_starts(
    shop: httpx.AsyncClient,
    crm: httpx.AsyncClient,
    settings: Settings,
    mes_sessions: Sessions,
    relay: list[Direction],
) -> None:
    [oid] = await confirmed_orders(shop, crm, 1)
    await drain(relay)
    lines = (await shop.get(f"/orders/{oid}")).json()["lines"]
    expected = {
        ln["item_id"]: (await shop.get(f"/items/{ln['item_id']}")).json()["name"] for ln in lines
    }
    async with mes_sessions() as session:
        assert await ProductRepository(session).names(expected) == expected
    async with mes_sessions() as session, session.begin():  # as if queued before mesdb_0005
        await session.execute(delete(Product).where(Product.item_id.in_(list(expected))))
    async with opened(settings):  # a relay starting
        pass
    async with mes_sessions() as session:
        assert await ProductRepository(session).names(expected) == expected
