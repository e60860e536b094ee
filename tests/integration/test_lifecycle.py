"""One order's whole life through HTTP, with the relay carrying the hand-offs."""

import httpx

from orderflow.kit.deps import Sessions
from orderflow.relay.relay import Direction, drain
from tests.factories import new_order


async def test_order_goes_from_created_to_delivered(
    shop: httpx.AsyncClient,
    crm: httpx.AsyncClient,
    mes: httpx.AsyncClient,
    shop_sessions: Sessions,
    mes_sessions: Sessions,
    relay: list[Direction],
) -> None:
    order = await new_order(shop, lines=[{"item_id": 3, "quantity": 1}], key="life-1")
    oid = order["id"]
    await crm.post(f"/orders/{oid}/confirm")
    assert await drain(relay) >= 1
    assert (await mes.get(f"/orders/{oid}")).json()["status"] == "queued"

    await mes.post(f"/orders/{oid}/claim", json={"operator_id": 7})
    await drain(relay)
    assert (await shop.get(f"/orders/{oid}")).json()["status"] == "in_production"

    await mes.post(f"/orders/{oid}/complete", json={"operator_id": 7})
    await drain(relay)
    assert (await shop.get(f"/orders/{oid}")).json()["status"] == "ready"

    assert (await crm.post(f"/orders/{oid}/ship")).json()["status"] == "shipped"
    final = (await crm.post(f"/orders/{oid}/deliver")).json()
    assert final["status"] == "delivered" and final["version"] == 6
    assert (await shop.get(f"/orders/{oid}")).json() == final


async def test_cancelling_a_confirmed_order_cancels_its_production(
    shop: httpx.AsyncClient,
    crm: httpx.AsyncClient,
    mes: httpx.AsyncClient,
    shop_sessions: Sessions,
    mes_sessions: Sessions,
    relay: list[Direction],
) -> None:
    oid = (await new_order(shop))["id"]
    await crm.post(f"/orders/{oid}/confirm")
    await drain(relay)
    await shop.post(f"/orders/{oid}/cancel")
    await drain(relay)
    assert (await mes.get(f"/orders/{oid}")).json()["status"] == "cancelled"
    assert (await mes.post(f"/orders/{oid}/claim", json={"operator_id": 1})).status_code == 409


async def test_production_events_never_move_an_order_backwards(
    shop: httpx.AsyncClient,
    crm: httpx.AsyncClient,
    mes: httpx.AsyncClient,
    shop_sessions: Sessions,
    mes_sessions: Sessions,
    relay: list[Direction],
) -> None:
    oid = (await new_order(shop))["id"]
    await crm.post(f"/orders/{oid}/confirm")
    await drain(relay)
    await mes.post(f"/orders/{oid}/claim", json={"operator_id": 4})
    await mes.post(f"/orders/{oid}/release", json={"operator_id": 4})
    await mes.post(f"/orders/{oid}/claim", json={"operator_id": 5})
    await mes.post(f"/orders/{oid}/complete", json={"operator_id": 5})
    await drain(relay)  # in_production twice, then ready
    order = (await shop.get(f"/orders/{oid}")).json()
    assert order["status"] == "ready" and order["version"] == 4
