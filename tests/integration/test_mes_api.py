"""MES endpoints: the board, claims, release and completion by the holder only."""

import httpx
from redis.asyncio import Redis
from sqlalchemy import text

from orderflow.kit.deps import Sessions
from orderflow.kit.http import dumps
from orderflow.production.caching import PRODUCTION_ORDER
from orderflow.relay.relay import Direction, drain
from tests.cachecheck import cache_of
from tests.factories import assert_problem, new_order


async def queued_order(
    shop: httpx.AsyncClient, crm: httpx.AsyncClient, relay: list[Direction]
) -> int:
    order = await new_order(shop)
    assert (await crm.post(f"/orders/{order['id']}/confirm")).status_code == 200
    await drain(relay)
    return int(order["id"])


async def test_confirmed_order_is_queued_once(
    shop: httpx.AsyncClient,
    crm: httpx.AsyncClient,
    mes: httpx.AsyncClient,
    shop_sessions: Sessions,
    mes_sessions: Sessions,
    relay: list[Direction],
) -> None:
    oid = await queued_order(shop, crm, relay)
    production = (await mes.get(f"/orders/{oid}")).json()
    assert production["status"] == "queued" and production["operator_id"] is None
    assert production["lines"] == [{"item_id": 1, "quantity": 2}]
    queue = (await mes.get("/orders", params={"status": "queued", "limit": 200})).json()
    assert oid in [o["id"] for o in queue["items"]] or queue["total"] > 200


async def test_claim_release_complete_by_the_holder(
    shop: httpx.AsyncClient,
    crm: httpx.AsyncClient,
    mes: httpx.AsyncClient,
    shop_sessions: Sessions,
    mes_sessions: Sessions,
    relay: list[Direction],
) -> None:
    oid = await queued_order(shop, crm, relay)
    claimed = (await mes.post(f"/orders/{oid}/claim", json={"operator_id": 1})).json()
    assert claimed["status"] == "in_progress" and claimed["operator_id"] == 1
    taken = assert_problem(await mes.post(f"/orders/{oid}/claim", json={"operator_id": 2}), 409)
    assert taken["holder"] == 1 and "operator 1" in taken["detail"]
    mine = (
        await mes.get("/orders", params={"operator_id": 1, "status": "in_progress", "limit": 200})
    ).json()
    assert oid in [o["id"] for o in mine["items"]]

    for verb in ("release", "complete"):
        refused = assert_problem(
            await mes.post(f"/orders/{oid}/{verb}", json={"operator_id": 2}), 409
        )
        assert refused["holder"] == 1
    stale = {"operator_id": 1, "version": claimed["version"] - 1}
    assert_problem(await mes.post(f"/orders/{oid}/release", json=stale), 409)
    assert (await mes.get(f"/orders/{oid}")).json() == claimed

    fenced = {"operator_id": 1, "version": claimed["version"]}
    released = (await mes.post(f"/orders/{oid}/release", json=fenced)).json()
    assert released["status"] == "queued" and released["operator_id"] is None
    assert_problem(await mes.post(f"/orders/{oid}/complete", json={"operator_id": 1}), 409)
    await mes.post(f"/orders/{oid}/claim", json={"operator_id": 2})
    done = (await mes.post(f"/orders/{oid}/complete", json={"operator_id": 2})).json()
    assert done["status"] == "done" and done["operator_id"] == 2
    assert_problem(await mes.post(f"/orders/{oid}/claim", json={"operator_id": 3}), 409)


async def test_mes_errors(
    mes: httpx.AsyncClient,
    shop: httpx.AsyncClient,
    crm: httpx.AsyncClient,
    shop_sessions: Sessions,
    mes_sessions: Sessions,
    relay: list[Direction],
) -> None:
    oid = await queued_order(shop, crm, relay)
    assert_problem(
        await mes.post(f"/orders/{oid}/claim", json={"operator_id": 99999}), 422, "operator_id"
    )
    assert_problem(await mes.post(f"/orders/{oid}/claim", json={}), 422, "operator_id")
    assert_problem(
        await mes.post(f"/orders/{oid}/claim", json={"operator_id": -1}), 422, "operator_id"
    )
    assert (await mes.get(f"/orders/{oid}")).json()["status"] == "queued"
    assert_problem(await mes.post("/orders/99999999/claim", json={"operator_id": 1}), 404)
    assert_problem(await mes.post("/orders/99999999/release", json={"operator_id": 1}), 404)
    assert_problem(await mes.get("/orders/99999999"), 404)
    assert_problem(await mes.get("/orders", params={"status": "taken"}), 422, "status")


async def test_board_totals_match_a_count_over_every_production_order(
    shop: httpx.AsyncClient,
    crm: httpx.AsyncClient,
    mes: httpx.AsyncClient,
    mes_sessions: Sessions,
    relay: list[Direction],
) -> None:
    """The counter table the triggers keep equals counting, after queueing and a claim."""
    first, _ = [await queued_order(shop, crm, relay) for _ in range(2)]
    assert (await mes.post(f"/orders/{first}/claim", json={"operator_id": 1})).status_code == 200
    async with mes_sessions() as session:
        rows = await session.execute(
            text("SELECT status, count(*) FROM production_orders GROUP BY status")
        )
        counted = dict(rows.all())
    for status, n in counted.items():
        board = (await mes.get("/orders", params={"status": status, "limit": 1})).json()
        assert board["total"] == n, status
    assert (await mes.get("/orders", params={"limit": 1})).json()["total"] == sum(counted.values())


async def test_the_mes_writes_through_whatever_the_orders_switch_says(
    shop: httpx.AsyncClient,
    crm: httpx.AsyncClient,
    mes: httpx.AsyncClient,
    relay: list[Direction],
    redis: Redis,
) -> None:
    """The orders' `cache-aside` mode is the Shop's and the CRM's: a claim still writes the
    production order's new value through (operators accept no delay), not a tombstone."""
    oid = await queued_order(shop, crm, relay)
    try:
        assert (await crm.put("/admin/cache", json={"orders": "cache-aside"})).status_code == 200
        claimed = (await mes.post(f"/orders/{oid}/claim", json={"operator_id": 3})).json()
        key = cache_of(mes).key_of(PRODUCTION_ORDER, oid)
        assert await redis.get(key) == f"{claimed['version']}|".encode() + dumps(claimed)
    finally:
        await crm.put("/admin/cache", json={"orders": "write-through"})


async def test_the_uncached_reads_give_what_the_cache_holds_and_an_operators_list_newest_first(
    shop: httpx.AsyncClient,
    crm: httpx.AsyncClient,
    mes: httpx.AsyncClient,
    relay: list[Direction],
) -> None:
    """The single statements behind the cache (`production/orders/lean_reads.py`) answer what
    the written-through entries hold; an operator's list shows their latest claim first."""
    first, second = [await queued_order(shop, crm, relay) for _ in range(2)]
    for oid in (second, first):
        assert (await mes.post(f"/orders/{oid}/claim", json={"operator_id": 5})).status_code == 200
    mine = {"operator_id": 5, "status": "in_progress", "limit": 2}
    cached = [(await mes.get(f"/orders/{oid}")).json() for oid in (first, second)]
    cached_list = (await mes.get("/orders", params=mine)).json()
    try:
        assert (await mes.put("/admin/cache", json={"mode": "off"})).status_code == 200
        assert [(await mes.get(f"/orders/{oid}")).json() for oid in (first, second)] == cached
        uncached_list = (await mes.get("/orders", params=mine)).json()
        assert [o["id"] for o in uncached_list["items"]] == [first, second]
        assert uncached_list == cached_list
        assert cached[0]["lines"] == [{"item_id": 1, "quantity": 2}]
    finally:
        await mes.put("/admin/cache", json={"mode": "on"})
