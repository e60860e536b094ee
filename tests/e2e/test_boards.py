"""Operators never take the same order, and every board sees each claim at once, exactly once.

Two MES processes share PostgreSQL and Redis; operators and boards are spread over both.
"""

import asyncio
import random
from collections import Counter, defaultdict
from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy import func, select

from orderflow.data.mesdb import Assignment, ProductionOrder
from orderflow.kit.deps import Sessions
from orderflow.kit.settings import Settings
from orderflow.relay.relay import Direction, drain
from tests.clients import api, server
from tests.sse import Board

FAST_HEARTBEAT = {"ORDERFLOW_SSE_HEARTBEAT_S": "0.5"}


@pytest.fixture(scope="module")
def mes_pair(settings: Settings) -> Iterator[tuple[str, str]]:
    with server("mes", settings, FAST_HEARTBEAT) as a, server("mes", settings, FAST_HEARTBEAT) as b:
        yield a, b


async def queue_orders(settings: Settings, relay: list[Direction], n: int) -> list[int]:
    async with api("shop", settings) as shop, api("crm", settings) as crm:
        client = (
            await shop.post("/clients", json={"name": "B", "email": f"b{random.random()}@x.io"})
        ).json()
        body = {"client_id": client["id"], "lines": [{"item_id": 4, "quantity": 1}]}
        ids = [(await shop.post("/orders", json=body)).json()["id"] for _ in range(n)]
        for oid in ids:
            await crm.post(f"/orders/{oid}/confirm")
    await drain(relay)
    return ids


@pytest.mark.timeout(300)  # 5,000 claim attempts on two cores
async def test_operators_race_for_orders_across_two_processes(
    mes_pair: tuple[str, str],
    settings: Settings,
    shop_sessions: Sessions,
    mes_sessions: Sessions,
    relay: list[Direction],
) -> None:
    ids = await queue_orders(settings, relay, 100)
    results: dict[int, list[tuple[int, int]]] = defaultdict(list)
    boards = [Board(mes_pair[0]), Board(mes_pair[1]), Board(mes_pair[1])]
    for board in boards:
        await board.__aenter__()
    try:
        async with httpx.AsyncClient(timeout=60, limits=httpx.Limits(max_connections=100)) as http:

            async def operator(op: int) -> None:
                rng = random.Random(op)
                for oid in rng.sample(ids, len(ids)):
                    url = mes_pair[op % 2]
                    response = await http.post(
                        f"{url}/orders/{oid}/claim", json={"operator_id": op}
                    )
                    results[oid].append((op, response.status_code))
                    if response.status_code == 409:
                        assert response.json()["holder"] is not None

            await asyncio.gather(*(operator(op) for op in range(1, 51)))
        for board in boards:
            await board.wait_for(len(ids))
    finally:
        for board in boards:
            await board.__aexit__()

    winners = {oid: [op for op, status in tries if status == 200] for oid, tries in results.items()}
    assert all(len(w) == 1 for w in winners.values()), "an order had two holders or none"
    assert all(Counter(s for _, s in tries) == {200: 1, 409: 49} for tries in results.values())
    async with mes_sessions() as session:
        rows = await session.execute(
            select(ProductionOrder.id, ProductionOrder.operator_id).where(
                ProductionOrder.id.in_(ids)
            )
        )
        holders = {oid: op for oid, op in rows}
        assignments = await session.scalar(
            select(func.count()).select_from(Assignment).where(Assignment.order_id.in_(ids))
        )
    assert holders == {oid: w[0] for oid, w in winners.items()}
    assert assignments == len(ids)
    for board in boards:
        claims = [e.json() for e in board.events if e.event == "claimed"]
        assert sorted(c["order_id"] for c in claims) == sorted(ids)  # each exactly once
        assert {c["order_id"]: c["operator_id"] for c in claims} == holders
        assert [e.id for e in board.events] == sorted((e.id for e in board.events), key=stream_key)


def stream_key(stream_id: str | None) -> tuple[int, int]:
    ms, _, seq = (stream_id or "0-0").partition("-")
    return int(ms), int(seq)


async def test_reconnecting_board_misses_nothing(
    mes_pair: tuple[str, str],
    settings: Settings,
    shop_sessions: Sessions,
    mes_sessions: Sessions,
    relay: list[Direction],
) -> None:
    a, b = mes_pair
    ids = await queue_orders(settings, relay, 4)
    async with httpx.AsyncClient() as http:
        async with Board(b) as board:
            await http.post(f"{a}/orders/{ids[0]}/claim", json={"operator_id": 1})
            (first,) = await board.wait_for(1)
            await board.wait_for_comments(2)  # the subscription note, then a heartbeat
        await http.post(f"{a}/orders/{ids[1]}/claim", json={"operator_id": 2})
        await http.post(f"{a}/orders/{ids[1]}/release", json={"operator_id": 2})
        await http.post(f"{b}/orders/{ids[2]}/claim", json={"operator_id": 3})
        async with Board(a, last_event_id=first.id) as again:
            await http.post(f"{b}/orders/{ids[3]}/claim", json={"operator_id": 4})
            events = await again.wait_for(4)
    assert [(e.event, e.json()["order_id"]) for e in events] == [
        ("claimed", ids[1]),
        ("released", ids[1]),
        ("claimed", ids[2]),
        ("claimed", ids[3]),
    ]
    expected = {"type": "claimed", "order_id": ids[0], "operator_id": 1, "version": 2}
    assert first.json() == {**expected, "status": "in_progress"}


async def test_a_gap_too_old_to_replay_asks_for_resync(mes_pair: tuple[str, str]) -> None:
    async with Board(mes_pair[0], last_event_id="1-0") as board:
        (event,) = await board.wait_for(1)
    assert event.event == "resync"


async def test_malformed_last_event_id_is_refused(mes_pair: tuple[str, str]) -> None:
    async with httpx.AsyncClient() as http:
        response = await http.get(f"{mes_pair[0]}/events", headers={"Last-Event-ID": "x; FLUSHALL"})
    assert response.status_code == 422


async def test_board_read_right_after_a_claim_shows_it_taken(
    mes_pair: tuple[str, str],
    settings: Settings,
    shop_sessions: Sessions,
    mes_sessions: Sessions,
    relay: list[Direction],
) -> None:
    a, b = mes_pair
    ids = await queue_orders(settings, relay, 5)
    async with httpx.AsyncClient() as http:
        for n, oid in enumerate(ids):
            claimed = await http.post(f"{a}/orders/{oid}/claim", json={"operator_id": 10 + n})
            assert claimed.status_code == 200
            queue = (
                await http.get(f"{b}/orders", params={"status": "queued", "limit": 200})
            ).json()
            assert oid not in [o["id"] for o in queue["items"]]
            mine = (await http.get(f"{b}/orders", params={"operator_id": 10 + n})).json()
            assert oid in [o["id"] for o in mine["items"]]
            assert (await http.get(f"{b}/orders/{oid}")).json()["operator_id"] == 10 + n
