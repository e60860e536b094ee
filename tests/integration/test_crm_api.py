"""CRM endpoints: views over all clients' orders, transitions, catalogue edits."""

from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import text

from orderflow.kit.deps import Sessions
from tests.factories import assert_problem, new_client, new_item, new_order


async def test_list_by_status_client_and_dates(
    shop: httpx.AsyncClient, crm: httpx.AsyncClient
) -> None:
    client = await new_client(shop)
    orders = [await new_order(shop, client_id=client["id"]) for _ in range(3)]
    by_client = (await crm.get("/orders", params={"client_id": client["id"]})).json()
    assert [o["id"] for o in by_client["items"]] == [o["id"] for o in reversed(orders)]
    assert by_client["total"] == 3
    created = (await crm.get("/orders", params={"status": "created", "limit": 200})).json()
    assert created["total"] >= 3 and all(o["status"] == "created" for o in created["items"])
    start = datetime.fromisoformat(orders[0]["created_at"])
    window = {
        "created_from": start.isoformat(),
        "created_to": (start + timedelta(hours=1)).isoformat(),
    }
    in_window = (await crm.get("/orders", params={**window, "client_id": client["id"]})).json()
    assert in_window["total"] == 3
    past = {"created_to": start.isoformat(), "client_id": client["id"]}
    assert (await crm.get("/orders", params=past)).json()["total"] == 0


async def test_list_paginates(crm: httpx.AsyncClient) -> None:
    first = (await crm.get("/orders", params={"limit": 10})).json()
    second = (await crm.get("/orders", params={"limit": 10, "offset": 10})).json()
    assert len(first["items"]) == 10 and len(second["items"]) == 10
    assert not {o["id"] for o in first["items"]} & {o["id"] for o in second["items"]}
    assert first["total"] == second["total"] >= 300


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"status": "lost"}, "status"),
        ({"client_id": "x"}, "client_id"),
        ({"created_from": "yesterday"}, "created_from"),
        ({"created_from": "2026-01-01T00:00:00"}, "created_from"),  # no timezone
        (
            {"created_from": "2026-02-01T00:00:00Z", "created_to": "2026-01-01T00:00:00Z"},
            "created_from",
        ),
        ({"limit": 10_000}, "limit"),
    ],
)
async def test_list_refuses_bad_filters(
    crm: httpx.AsyncClient, params: dict[str, str], field: str
) -> None:
    assert_problem(await crm.get("/orders", params=params), 422, field)


async def test_stats_count_every_status(shop: httpx.AsyncClient, crm: httpx.AsyncClient) -> None:
    before = (await crm.get("/orders/stats")).json()
    assert set(before["counts"]) == {
        "created", "confirmed", "in_production", "ready", "shipped", "delivered", "cancelled"
    }  # fmt: skip
    assert before["total"] == sum(before["counts"].values())
    await new_order(shop)
    after = (await crm.get("/orders/stats")).json()
    assert after["counts"]["created"] == before["counts"]["created"] + 1


async def test_transitions_follow_the_lifecycle(
    shop: httpx.AsyncClient, crm: httpx.AsyncClient
) -> None:
    order = await new_order(shop)
    oid = order["id"]
    for action in ("ship", "deliver"):
        refused = assert_problem(await crm.post(f"/orders/{oid}/{action}"), 409)
        assert refused["order_status"] == "created"
    confirmed = (await crm.post(f"/orders/{oid}/confirm")).json()
    assert confirmed["status"] == "confirmed" and confirmed["version"] == 2
    assert_problem(await crm.post(f"/orders/{oid}/confirm"), 409)
    assert (await crm.get(f"/orders/{oid}")).json() == confirmed
    cancelled = (await crm.post(f"/orders/{oid}/cancel")).json()
    assert cancelled["status"] == "cancelled"
    assert_problem(await crm.post(f"/orders/{oid}/confirm"), 409)
    assert (await shop.get(f"/orders/{oid}")).json()["version"] == 3
    for action in ("confirm", "ship", "deliver", "cancel"):
        assert_problem(await crm.post(f"/orders/99999999/{action}"), 404)


async def test_sellers_create_and_edit_items(
    shop: httpx.AsyncClient, crm: httpx.AsyncClient
) -> None:
    item = await new_item(crm, price=999)
    assert (await shop.get(f"/items/{item['id']}")).json() == item
    body = {"name": "Renamed", "category": "Tests", "price": 1500, "description": "new"}
    edited = (await crm.put(f"/items/{item['id']}", json=body)).json()
    assert edited["price"] == 1500 and edited["version"] == item["version"] + 1
    assert (await shop.get(f"/items/{item['id']}")).json() == edited
    assert_problem(await crm.put("/items/99999999", json=body), 404)
    assert_problem(await crm.post("/items", json={**body, "price": -1}), 422, "price")
    assert_problem(await crm.post("/items", json={**body, "name": ""}), 422, "name")
    assert (await shop.get(f"/items/{item['id']}")).json() == edited


async def test_timestamps_are_timezone_aware(crm: httpx.AsyncClient) -> None:
    order = (await crm.get("/orders", params={"limit": 1})).json()["items"][0]
    assert datetime.fromisoformat(order["created_at"]).tzinfo is not None
    assert datetime.fromisoformat(order["created_at"]) <= datetime.now(UTC)


async def test_counts_and_list_totals_match_a_count_over_every_order(
    shop: httpx.AsyncClient, crm: httpx.AsyncClient, shop_sessions: Sessions
) -> None:
    """The counter table the triggers keep equals counting the orders, after creations,
    transitions and a cancellation, and a multi-row update."""
    orders = [await new_order(shop) for _ in range(3)]
    await crm.post(f"/orders/{orders[0]['id']}/confirm")
    await shop.post(f"/orders/{orders[1]['id']}/cancel")
    async with shop_sessions() as session, session.begin():
        ids = [orders[2]["id"], orders[0]["id"]]
        await session.execute(  # two rows in one statement, from two statuses
            text("UPDATE orders SET status = 'cancelled' WHERE id = ANY(:ids)"), {"ids": ids}
        )
    async with shop_sessions() as session:
        rows = await session.execute(text("SELECT status, count(*) FROM orders GROUP BY status"))
        counted = dict(rows.all())
    stats = (await crm.get("/orders/stats")).json()
    assert {s: n for s, n in stats["counts"].items() if n} == counted
    for status, n in counted.items():
        listed = (await crm.get("/orders", params={"status": status, "limit": 1})).json()
        assert listed["total"] == n
    assert (await crm.get("/orders", params={"limit": 1})).json()["total"] == sum(counted.values())
