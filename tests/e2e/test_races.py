"""Many concurrent clients against real uvicorn processes on loopback."""

import asyncio
import uuid
from collections import Counter

import httpx
from sqlalchemy import func, select

from orderflow.data.mesdb import Assignment
from orderflow.data.shopdb import Order
from orderflow.kit.deps import Sessions
from orderflow.relay.relay import Direction, drain

CLAIMANTS = 30


async def test_claim_race_has_exactly_one_winner(
    shop_url: str,
    crm_url: str,
    mes_url: str,
    shop_sessions: Sessions,
    mes_sessions: Sessions,
    relay: list[Direction],
) -> None:
    async with httpx.AsyncClient(timeout=30) as http:
        client = (
            await http.post(
                f"{shop_url}/clients", json={"name": "R", "email": f"{uuid.uuid4().hex}@x.io"}
            )
        ).json()
        body = {"client_id": client["id"], "lines": [{"item_id": 1, "quantity": 1}]}
        oid = (await http.post(f"{shop_url}/orders", json=body)).json()["id"]
        await http.post(f"{crm_url}/orders/{oid}/confirm")
        await drain(relay)

        async def claim(operator: int) -> httpx.Response:
            return await http.post(f"{mes_url}/orders/{oid}/claim", json={"operator_id": operator})

        responses = await asyncio.gather(*(claim(op) for op in range(1, CLAIMANTS + 1)))
    statuses = Counter(r.status_code for r in responses)
    assert statuses == {200: 1, 409: CLAIMANTS - 1}
    winner = next(r.json()["operator_id"] for r in responses if r.status_code == 200)
    assert all(r.json()["holder"] == winner for r in responses if r.status_code == 409)
    async with mes_sessions() as session:
        holders = await session.scalar(
            select(func.count()).select_from(Assignment).where(Assignment.order_id == oid)
        )
    assert holders == 1


async def test_concurrent_repeats_of_one_key_make_one_order(
    shop_url: str, shop_sessions: Sessions
) -> None:
    key = f"race-{uuid.uuid4().hex}"
    async with httpx.AsyncClient(timeout=30) as http:
        client = (
            await http.post(
                f"{shop_url}/clients", json={"name": "I", "email": f"{uuid.uuid4().hex}@x.io"}
            )
        ).json()
        body = {"client_id": client["id"], "lines": [{"item_id": 2, "quantity": 4}]}
        responses = await asyncio.gather(
            *(
                http.post(f"{shop_url}/orders", json=body, headers={"Idempotency-Key": key})
                for _ in range(25)
            )
        )
    assert Counter(r.status_code for r in responses) == {201: 1, 200: 24}
    assert len({r.json()["id"] for r in responses}) == 1
    async with shop_sessions() as session:
        count = await session.scalar(
            select(func.count()).select_from(Order).where(Order.client_id == client["id"])
        )
    assert count == 1
