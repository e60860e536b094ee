"""Cache upkeep is durable (issue 12, findings 1 and 2; docs/caching.md, rule 9).

A writer that dies between its commit and its cache writes, or whose cache writes fail and which
then idles, must not leave the cache old: a retry that takes a path doing no cache work (an
idempotent replay, a 409) re-applies what the journal says, and every API process repairs what
is left within the bound (repair after 1 s, a tick every 0.5 s: about 2 s).

A crash is simulated in-process: none of the write's Redis calls happen (`crashed_before_upkeep`),
as if the process had died right after its commit. tests/e2e/test_durable_upkeep.py kills a real
server at that moment (`ORDERFLOW_CRASH_AFTER_COMMIT`).
"""

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import httpx
import orjson
import pytest
from redis.asyncio import Redis

from orderflow.cache import CacheConnectionError
from orderflow.data.shopdb import ShopUpkeep
from orderflow.kit.deps import Sessions
from orderflow.kit.settings import Settings
from orderflow.production.events.stream import STREAM_KEY, EventStream
from orderflow.relay.relay import Direction, drain
from orderflow.service_cache.facade import ServiceCache
from orderflow.service_cache.journal import LOCK_WAIT_MS
from orderflow.service_cache.journal_rows import UpkeepRepository
from orderflow.service_cache.upkeep import encode_key
from tests.cachecheck import cache_of
from tests.clients import api
from tests.factories import new_client, new_item, new_order

BOUND_S = 5.0  # how long a test polls; the documented bound is about 2 s


@contextmanager
def crashed_before_upkeep(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Inside: a write commits, then none of its cache writes, bumps or events happen, as if
    its process had died right after the commit (its answer is what the client never got)."""

    async def nothing(*_: Any, **__: Any) -> None:
        return None

    with monkeypatch.context() as patch:
        for name in ("put", "invalidate", "bump"):
            patch.setattr(ServiceCache, name, nothing)
        patch.setattr(EventStream, "publish", nothing)
        yield


@asynccontextmanager
async def apps(settings: Settings, *names: str, **updates: Any) -> AsyncIterator[list[Any]]:
    """Fresh in-process services (each its own process, as far as the cache can tell)."""
    own = settings.model_copy(update=updates)
    async with api(names[0], own) as first:  # type: ignore[arg-type]
        if len(names) == 1:
            yield [first]
        else:
            async with apps(settings, *names[1:], **updates) as rest:
                yield [first, *rest]


# Repairs by the background workers come late in these apps, so only a retry can repair in time.
NO_WORKER_IN_TIME = {"upkeep_repair_after_s": 60.0}


async def poll(check: Any, timeout_s: float = BOUND_S, seen: Any = None) -> float:
    """Seconds until `await check()` is true; fails after `timeout_s`, showing `seen()`."""
    started = time.monotonic()
    while not await check():
        last = seen() if seen is not None else None
        assert time.monotonic() - started < timeout_s, f"not repaired within the bound: {last}"
        await asyncio.sleep(0.05)
    return time.monotonic() - started


async def test_a_transition_retried_after_a_crash_shows_the_new_state(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with apps(settings, "shop", "crm", **NO_WORKER_IN_TIME) as (shop, crm):
        order = await new_order(shop)
        oid, cid = order["id"], order["client_id"]
        created = {"client_id": cid, "status": "created"}
        assert (await crm.get("/orders", params=created)).json()["total"] == 1  # cached view
        assert (await shop.get(f"/orders/{oid}")).json()["status"] == "created"

        with crashed_before_upkeep(monkeypatch):
            cancelled = await shop.post(f"/orders/{oid}/cancel")
        assert cancelled.status_code == 200
        assert (await shop.get(f"/orders/{oid}")).json()["status"] == "created"  # the crash

        retry = await crm.post(f"/orders/{oid}/cancel")
        assert retry.status_code == 409
        assert (await shop.get(f"/orders/{oid}")).json() == cancelled.json()
        assert (await crm.get(f"/orders/{oid}")).json() == cancelled.json()
        assert (await crm.get("/orders", params=created)).json()["total"] == 0


async def test_a_replayed_order_after_a_crash_is_in_the_clients_list(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with apps(settings, "shop", **NO_WORKER_IN_TIME) as (shop,):
        client = await new_client(shop)
        mine = f"/clients/{client['id']}/orders"
        assert (await shop.get(mine)).json() == {"items": [], "total": 0}  # cached, empty
        body = {"client_id": client["id"], "lines": [{"item_id": 3, "quantity": 1}]}
        key = {"Idempotency-Key": f"crash-{client['id']}"}

        with crashed_before_upkeep(monkeypatch):
            placed = await shop.post("/orders", json=body, headers=key)
        assert placed.status_code == 201
        assert (await shop.get(mine)).json()["total"] == 0  # the crash left the list old

        replay = await shop.post("/orders", json=body, headers=key)
        assert replay.status_code == 200 and replay.json() == placed.json()
        assert (await shop.get(mine)).json() == {"items": [placed.json()], "total": 1}
        assert (await shop.get(f"/orders/{placed.json()['id']}")).json() == placed.json()


async def queued_order(settings: Settings, relay: list[Direction]) -> int:
    async with apps(settings, "shop", "crm") as (shop, crm):
        order = await new_order(shop)
        assert (await crm.post(f"/orders/{order['id']}/confirm")).status_code == 200
    await drain(relay)
    return int(order["id"])


async def board(mes: httpx.AsyncClient, oid: int, operator: int) -> tuple[str, bool, int]:
    """What a board shows: the order's status, whether the operator's list has it, the queue."""
    status = (await mes.get(f"/orders/{oid}")).json()["status"]
    listed = (await mes.get("/orders", params={"operator_id": operator, "limit": 200})).json()
    queue = (await mes.get("/orders", params={"status": "queued", "limit": 1})).json()
    return status, oid in [o["id"] for o in listed["items"]], queue["total"]


async def test_an_mes_claim_retried_after_a_crash_shows_it_taken(
    settings: Settings, relay: list[Direction], monkeypatch: pytest.MonkeyPatch
) -> None:
    oid = await queued_order(settings, relay)
    async with apps(settings, "mes", **NO_WORKER_IN_TIME) as (mes,):
        status, listed, queued = await board(mes, oid, 7)  # all three cached now
        assert status == "queued" and not listed

        with crashed_before_upkeep(monkeypatch):
            claimed = await mes.post(f"/orders/{oid}/claim", json={"operator_id": 7})
        assert claimed.status_code == 200
        assert await board(mes, oid, 7) == (status, listed, queued)  # the crash: all old

        retry = await mes.post(f"/orders/{oid}/claim", json={"operator_id": 7})
        assert retry.status_code == 409 and retry.json()["holder"] == 7
        assert await board(mes, oid, 7) == ("in_progress", True, queued - 1)


async def claimed_events(redis: Redis, oid: int) -> list[dict[str, Any]]:
    rows = await redis.xrevrange(STREAM_KEY, "+", "-", count=200)
    events = [orjson.loads(fields[b"d"]) for _, fields in rows]
    return [e for e in events if e["order_id"] == oid and e["type"] == "claimed"]


async def test_an_mes_claim_whose_writer_died_reaches_every_board_within_the_bound(
    settings: Settings, relay: list[Direction], redis: Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    oid = await queued_order(settings, relay)
    async with apps(settings, "mes", "mes") as (writer, reader):
        status, listed, queued = await board(reader, oid, 8)
        assert status == "queued" and not listed
        with crashed_before_upkeep(monkeypatch):
            claimed = await writer.post(f"/orders/{oid}/claim", json={"operator_id": 8})
        assert claimed.status_code == 200

        shown: list[tuple[str, bool, int]] = []

        async def taken() -> bool:
            shown.append(await board(reader, oid, 8))
            return shown[-1] == ("in_progress", True, queued - 1)

        took = await poll(taken, seen=lambda: (shown[-1], "expected", queued - 1))
        await poll(lambda: _has_events(redis, oid))
        print(f"claim repaired in {took:.2f} s")
    assert len(await claimed_events(redis, oid)) == 1  # republished once, not per process


async def _has_events(redis: Redis, oid: int) -> bool:
    return bool(await claimed_events(redis, oid))


async def test_a_failed_tombstone_is_repaired_by_another_process(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Finding 2: the seller's edit answers 200, its tombstone failed, its process idles."""
    async with apps(settings, "crm", "shop") as (crm, shop):
        item = await new_item(crm)
        path = f"/items/{item['id']}"
        assert (await shop.get(path)).json() == item  # in Redis, and kept near in the Shop
        broken = cache_of(crm)

        async def refused(*_: Any, **__: Any) -> None:
            raise CacheConnectionError("a Redis blip at the worst moment")

        monkeypatch.setattr(broken._store, "invalidate", refused)  # this process only
        change = {"name": item["name"], "category": item["category"], "price": 99}
        edited = await crm.put(path, json=change)
        assert edited.status_code == 200
        assert broken.breaker_state == "open"  # the failure is this process's to remember

        async def new_price() -> bool:
            return bool((await shop.get(path)).json()["price"] == 99)

        took = await poll(new_price)
        print(f"edit repaired in {took:.2f} s")
        assert (await shop.get(path)).json() == edited.json()


async def test_a_retry_waits_for_a_repair_in_progress_but_not_forever(
    settings: Settings, shop_sessions: Sessions, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rows locked by a process repairing them: the 409 waits for it, at most LOCK_WAIT_MS."""
    async with apps(settings, "shop", **NO_WORKER_IN_TIME) as (shop,):
        order = await new_order(shop)
        with crashed_before_upkeep(monkeypatch):
            assert (await shop.post(f"/orders/{order['id']}/cancel")).status_code == 200
        async with shop_sessions() as session, session.begin():
            rows = UpkeepRepository(session, ShopUpkeep)
            assert await rows.lock_entry(
                "order", encode_key(order["id"]), wait_ms=0
            )  # the cancel (and more)
            started = time.monotonic()
            retry = await shop.post(f"/orders/{order['id']}/cancel")
            waited = time.monotonic() - started
        assert retry.status_code == 409
        assert LOCK_WAIT_MS / 1000 <= waited < LOCK_WAIT_MS / 1000 + 2
        retry = await shop.post(f"/orders/{order['id']}/cancel")  # nothing holds them now
        assert retry.status_code == 409
        assert (await shop.get(f"/orders/{order['id']}")).json()["status"] == "cancelled"
