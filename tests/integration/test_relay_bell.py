"""The relay's bell (`relay/bell.py`): an idle relay waits for PostgreSQL to announce an
outbox row instead of polling, and polls only while it cannot hear the announcements."""

import asyncio
import dataclasses
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import asyncpg
import httpx
from sqlalchemy import func, select

from orderflow.data.mesdb import ProductionOrder
from orderflow.kit.db import asyncpg_dsn
from orderflow.kit.deps import Sessions
from orderflow.kit.embedded import free_port
from orderflow.kit.settings import Settings
from orderflow.kit.unit_of_work import UnitOfWork
from orderflow.relay import bell as bells
from orderflow.relay.outbox import OutboxRow
from orderflow.relay.relay import TURN_RETRY_S, Direction, drain, run
from tests.factories import new_order

NEVER_S = 3600.0  # a poll that, within a test, never comes


class Counted:
    """A direction whose delivery passes are counted."""

    def __init__(self, way: Direction) -> None:
        self.way = way
        self.passes = 0

    async def deliver_batch(self, limit: int) -> int:
        self.passes += 1
        return await self.way.deliver_batch(limit)

    @property
    def standing_by(self) -> bool:
        return self.way.standing_by


@asynccontextmanager
async def relaying(
    ways: list[Direction], settings: Settings, quiet_s: float
) -> AsyncIterator[tuple[bells.Bell, list[Counted]]]:
    counted = [Counted(way) for way in ways]
    stop = asyncio.Event()
    async with bells.listening([settings.shop_dsn, settings.mes_dsn], longest_s=NEVER_S) as bell:
        await until(lambda: bell.live)
        task = asyncio.create_task(
            run(counted, stop, batch=100, idle_s=quiet_s, bell=bell)  # type: ignore[arg-type]
        )
        try:
            yield bell, counted
        finally:
            stop.set()
            await asyncio.wait_for(task, 10)


async def until(condition: Callable[[], bool], within_s: float = 15.0) -> None:
    deadline = time.monotonic() + within_s
    while not condition():
        assert time.monotonic() < deadline, "not within the time"
        await asyncio.sleep(0.02)


async def reaches_the_mes(mes_sessions: Sessions, order_id: int) -> None:
    deadline = time.monotonic() + 15
    while True:
        async with mes_sessions() as session:
            found = await session.scalar(
                select(func.count())
                .select_from(ProductionOrder)
                .where(ProductionOrder.id == order_id)
            )
        if found:
            return
        assert time.monotonic() < deadline, "the confirmed order never reached the MES"
        await asyncio.sleep(0.05)


async def confirmed_order(shop: httpx.AsyncClient, crm: httpx.AsyncClient) -> int:
    order_id = int((await new_order(shop))["id"])
    assert (await crm.post(f"/orders/{order_id}/confirm")).status_code == 200
    return order_id


async def test_an_idle_relay_does_not_poll_and_delivers_when_an_event_is_committed(
    shop: httpx.AsyncClient,
    crm: httpx.AsyncClient,
    settings: Settings,
    mes_sessions: Sessions,
    relay: list[Direction],
) -> None:
    await drain(relay)
    async with relaying(relay, settings, quiet_s=NEVER_S) as (_bell, counted):
        await until(lambda: all(way.passes >= 1 for way in counted))  # the first pass, idle
        passes = [way.passes for way in counted]
        await asyncio.sleep(1.0)  # a polling relay (every 50 ms) would have made 20 passes
        assert [way.passes for way in counted] == passes
        order_id = await confirmed_order(shop, crm)  # its outbox row rings the bell
        await reaches_the_mes(mes_sessions, order_id)
        await asyncio.sleep(0.3)  # the pass that delivered it has ended
        to_mes, to_shop = counted
        assert to_mes.passes > passes[0]
        assert to_shop.passes == passes[1]  # the MES database did not ring: not looked at


async def test_a_relay_standing_by_takes_the_turn_within_a_second_when_the_other_dies(
    shop: httpx.AsyncClient,
    crm: httpx.AsyncClient,
    settings: Settings,
    mes_sessions: Sessions,
    relay: list[Direction],
) -> None:
    """Another relay holds the outbox's turn and hangs mid-batch, then dies (its transaction,
    and the turn, go with it). This one, idle and rung by no new commit, delivers the batch
    it left within about a second, not at the next commit."""
    await drain(relay)
    order_id = await confirmed_order(shop, crm)
    holding = asyncio.Event()

    async def hung(uow: UnitOfWork, event: OutboxRow) -> None:
        holding.set()
        await asyncio.Event().wait()

    other = asyncio.create_task(dataclasses.replace(relay[0], apply=hung).deliver_batch(100))
    await asyncio.wait_for(holding.wait(), 10)
    async with relaying(relay, settings, quiet_s=NEVER_S) as (_bell, counted):
        await until(lambda: counted[0].standing_by)  # it found the other's turn taken
        await asyncio.sleep(2 * TURN_RETRY_S)
        assert counted[0].standing_by  # still the other relay's turn: this one waits
        other.cancel()  # the other relay dies
        died = time.monotonic()
        await reaches_the_mes(mes_sessions, order_id)
        assert time.monotonic() - died < 3 * TURN_RETRY_S
        assert not counted[0].standing_by


async def test_a_relay_whose_listening_connection_is_cut_listens_again_and_delivers(
    shop: httpx.AsyncClient,
    crm: httpx.AsyncClient,
    settings: Settings,
    mes_sessions: Sessions,
    relay: list[Direction],
) -> None:
    await drain(relay)
    async with relaying(relay, settings, quiet_s=0.05) as (bell, counted):
        lost = asyncio.Event()
        listener = bell.listeners[0]  # the Shop database's
        on_down = listener.on_down

        def noted_down() -> None:
            lost.set()
            on_down()

        listener.on_down = noted_down
        admin = await asyncpg.connect(asyncpg_dsn(settings.shop_dsn))
        try:
            await admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE application_name = $1",
                bells.NAME,
            )
        finally:
            await admin.close()
        await until(lost.is_set)
        await until(lambda: bell.live)  # listening again
        passes = sum(way.passes for way in counted)
        await asyncio.sleep(0.5)
        assert sum(way.passes for way in counted) == passes  # and no longer polling
        await reaches_the_mes(mes_sessions, await confirmed_order(shop, crm))


async def test_a_relay_that_cannot_listen_polls(settings: Settings, relay: list[Direction]) -> None:
    """A database whose announcements cannot be heard (here: a bell on a closed port) is
    polled every `quiet_s`, as before the bell."""
    await drain(relay)
    counted = [Counted(way) for way in relay]
    stop = asyncio.Event()
    deaf = f"postgresql://nobody@127.0.0.1:{free_port()}/none"
    async with bells.listening([settings.shop_dsn, deaf], longest_s=NEVER_S) as bell:
        task = asyncio.create_task(
            run(counted, stop, batch=100, idle_s=0.05, bell=bell)  # type: ignore[arg-type]
        )
        await asyncio.sleep(1.0)
        stop.set()
        await asyncio.wait_for(task, 10)
        assert not bell.live
    assert counted[0].passes >= 5  # about 20 at 50 ms; the machine may be slow
