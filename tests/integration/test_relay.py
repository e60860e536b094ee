"""The relay delivers every event once in effect, whatever dies in the middle."""

import asyncio
import dataclasses
import signal
import time
from unittest.mock import patch

import httpx
import pytest
from redis.asyncio import Redis
from sqlalchemy import delete, func, select

from orderflow.data.mesdb import Product, ProductionOrder, StatusHistory
from orderflow.data.shopdb import ShopOutbox
from orderflow.kit.deps import Sessions
from orderflow.kit.settings import Settings
from orderflow.kit.unit_of_work import UnitOfWork
from orderflow.production.caching import PRODUCTION_ORDER
from orderflow.production.products.repository import ProductRepository
from orderflow.relay.outbox import OutboxRepository, OutboxRow
from orderflow.relay.relay import Direction, drain, opened
from tests.cachecheck import cache_of
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

    async def apply_then_die(uow: UnitOfWork, event: OutboxRow) -> None:
        nonlocal applied
        if applied == 4:
            raise Crash  # after 4 events were applied in the MES, before its commit
        applied += 1
        await to_mes.apply(uow, event)

    dying = Direction("shop_to_mes", shop_sessions, ShopOutbox, to_mes.target, apply_then_die)
    with pytest.raises(Crash):
        await dying.deliver_batch(100)
    assert await unpublished(shop_sessions) == 10  # both rolled back: all will be redelivered
    async with mes_sessions() as session:
        present = await session.scalar(
            select(func.count()).select_from(ProductionOrder).where(ProductionOrder.id.in_(ids))
        )
    assert present == 0
    await drain(relay)
    assert await queued_once(mes_sessions, ids) == dict.fromkeys(ids, 1)


async def test_relay_dying_after_the_target_committed_redelivers_and_the_target_skips(
    shop: httpx.AsyncClient,
    crm: httpx.AsyncClient,
    shop_sessions: Sessions,
    mes_sessions: Sessions,
    mes: httpx.AsyncClient,
    redis: Redis,
    relay: list[Direction],
) -> None:
    """The MES committed the batch but the source never marked it published: the next
    delivery applies nothing twice, and the MES's cache holds every order at once (the upkeep of
    the committed batch ran although the source's transaction failed)."""
    await drain(relay)
    ids = await confirmed_orders(shop, crm, 5)
    to_mes = relay[0]

    class Outbox(OutboxRepository):
        async def mark_published(self, ids: list[int]) -> None:
            raise Crash

    with patch("orderflow.relay.relay.OutboxRepository", Outbox), pytest.raises(Crash):
        await to_mes.deliver_batch(100)
    cache = cache_of(mes)
    written = [await redis.get(cache.key_of(PRODUCTION_ORDER, oid)) for oid in ids]
    assert all(entry is not None and b'"queued"' in entry for entry in written)
    assert await unpublished(shop_sessions) == 5
    assert await queued_once(mes_sessions, ids) == dict.fromkeys(ids, 1)
    assert await drain(relay) == 5
    assert await queued_once(mes_sessions, ids) == dict.fromkeys(ids, 1)


async def test_a_batch_holding_an_order_twice_ends_in_its_last_state_in_the_database_and_cache(
    shop: httpx.AsyncClient,
    crm: httpx.AsyncClient,
    mes: httpx.AsyncClient,
    mes_sessions: Sessions,
    relay: list[Direction],
) -> None:
    """Confirmed then cancelled before the relay ran: one MES transaction queues the order
    and cancels it. The second step must see the first's row, not a copy the session kept."""
    await drain(relay)
    [oid] = await confirmed_orders(shop, crm, 1)
    assert (await crm.post(f"/orders/{oid}/cancel")).status_code == 200
    assert await relay[0].deliver_batch(100) == 2
    async with mes_sessions() as session:
        order = await session.get(ProductionOrder, oid)
    assert order is not None and (order.status, order.version) == ("cancelled", 2)
    cached = (await mes.get(f"/orders/{oid}")).json()
    assert (cached["status"], cached["version"]) == ("cancelled", 2)


async def test_two_relays_apply_one_orders_events_in_the_order_they_were_written(
    shop: httpx.AsyncClient,
    crm: httpx.AsyncClient,
    mes: httpx.AsyncClient,
    mes_sessions: Sessions,
    relay: list[Direction],
) -> None:
    """Confirmed, then cancelled. One relay holds the confirmation in its batch when another
    looks: the other must not deliver the cancel first (a cancel of an order the MES does not
    have changes nothing, and the confirmation would then queue a cancelled order). With rows
    taken by `SKIP LOCKED` it did: the order ended queued."""
    await drain(relay)
    [oid] = await confirmed_orders(shop, crm, 1)
    assert (await crm.post(f"/orders/{oid}/cancel")).status_code == 200
    to_mes = relay[0]
    holding, go_on = asyncio.Event(), asyncio.Event()

    async def slow(uow: UnitOfWork, event: OutboxRow) -> None:
        holding.set()
        await go_on.wait()
        await to_mes.apply(uow, event)

    first = asyncio.create_task(dataclasses.replace(to_mes, apply=slow).deliver_batch(1))
    await asyncio.wait_for(holding.wait(), 10)
    second = await to_mes.deliver_batch(100)  # another relay, meanwhile
    go_on.set()
    assert (await first, second) == (1, 0)
    assert await drain(relay) == 1  # the cancel, after the confirmation
    async with mes_sessions() as session:
        order = await session.get(ProductionOrder, oid)
    assert order is not None and order.status == "cancelled"
    assert (await mes.get(f"/orders/{oid}")).json()["status"] == "cancelled"


async def unpublished(shop_sessions: Sessions) -> int:
    async with shop_sessions() as session:
        count = await session.scalar(
            select(func.count()).select_from(ShopOutbox).where(ShopOutbox.published_at.is_(None))
        )
    return int(count or 0)


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
