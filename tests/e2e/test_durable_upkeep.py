"""A real server killed between its commit and its cache writes (`ORDERFLOW_CRASH_AFTER_COMMIT=1`:
`os._exit(137)`, as kill -9 at the worst moment): the write stands, the cache is repaired by a
retry or, within the bound, by the other processes (docs/caching.md, rule 9)."""

import asyncio
import time
from collections.abc import Iterator
from contextlib import contextmanager
from subprocess import Popen

import httpx
import pytest

from orderflow.kit.embedded import free_port
from orderflow.kit.settings import ServiceName, Settings
from orderflow.relay.relay import Direction, drain
from tests.clients import api, running, wait_healthy
from tests.factories import new_order

CRASH = {"ORDERFLOW_CRASH_AFTER_COMMIT": "1"}


@contextmanager
def crashing(service: ServiceName, settings: Settings) -> Iterator[tuple[str, Popen[bytes]]]:
    """A server that dies right after its first commit with cache upkeep."""
    port = free_port()
    with running(["serve", service, "--port", str(port)], settings, CRASH) as proc:
        url = f"http://127.0.0.1:{port}"
        wait_healthy(url, proc)
        yield url, proc


async def killed_by(url: str, path: str, **body: object) -> None:
    """POST that never gets an answer: the server dies first."""
    async with httpx.AsyncClient(timeout=10) as http:
        with pytest.raises(httpx.TransportError):
            await http.post(f"{url}{path}", json=body or None)


async def test_a_cancel_whose_server_died_after_the_commit(settings: Settings) -> None:
    async with api("shop", settings) as shop:
        order = await new_order(shop)
        path = f"/orders/{order['id']}"
        assert (await shop.get(path)).json()["status"] == "created"  # cached
        with crashing("shop", settings) as (url, proc):
            await killed_by(url, f"{path}/cancel")
            assert proc.wait(10) == 137
        retry = await shop.post(f"{path}/cancel")
        assert retry.status_code == 409
        assert (await shop.get(path)).json()["status"] == "cancelled"


async def test_a_claim_whose_server_died_is_on_every_board_within_the_bound(
    settings: Settings, relay: list[Direction]
) -> None:
    async with api("shop", settings) as shop, api("crm", settings) as crm:
        order = await new_order(shop)
        assert (await crm.post(f"/orders/{order['id']}/confirm")).status_code == 200
    await drain(relay)
    oid = order["id"]
    async with api("mes", settings) as mes:
        mine = {"operator_id": 9, "limit": 200}
        assert oid not in [o["id"] for o in (await mes.get("/orders", params=mine)).json()["items"]]
        with crashing("mes", settings) as (url, proc):
            await killed_by(url, f"/orders/{oid}/claim", operator_id=9)
            assert proc.wait(10) == 137
        started = time.monotonic()
        while oid not in [o["id"] for o in (await mes.get("/orders", params=mine)).json()["items"]]:
            assert time.monotonic() - started < 5.0, "the claim is not on the board"
            await asyncio.sleep(0.05)
        assert (await mes.get(f"/orders/{oid}")).json()["operator_id"] == 9
