"""`orderflow up --workers 2`: two processes of each API on its one port. The switch is applied
by every process before it answers, a near-cached item edited through the CRM is never served
old by either Shop worker, and `/metrics` adds up both workers."""

import asyncio
import re
import time
from collections.abc import Iterator

import httpx
import pytest

from orderflow.kit.embedded import EmbeddedRedis, free_port
from orderflow.kit.settings import Settings
from orderflow.service_cache.broadcast import Broadcast
from orderflow.service_cache.modes import CHANNEL
from tests.clients import running, wait_healthy

WORKERS = 2
PROCESSES = 3 * WORKERS + 1  # every worker of the Shop, CRM and MES, and the relay
ITEM = 5


@pytest.fixture(scope="module")
def platform(
    settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, str]]:
    """The platform on the test databases and a Redis of its own (whose broadcast registries
    hold nothing but this platform's processes)."""
    redis = EmbeddedRedis(tmp_path_factory.mktemp("workers-redis"), free_port())
    redis.start()
    ports = {service: free_port() for service in ("shop", "crm", "mes")}
    env = {f"ORDERFLOW_{service.upper()}_PORT": str(port) for service, port in ports.items()}
    env |= {"ORDERFLOW_RELAY_METRICS_PORT": "0", "ORDERFLOW_CACHE_ADMIT_AFTER": "0"}
    env["ORDERFLOW_DATA_DIR"] = str(tmp_path_factory.mktemp("workers-data"))
    live = settings.model_copy(update={"redis_url": redis.url})
    try:
        with running(["up", "--workers", str(WORKERS)], live, env) as proc:
            urls = {service: f"http://127.0.0.1:{port}" for service, port in ports.items()}
            for url in urls.values():
                wait_healthy(url, proc, timeout_s=90)  # type: ignore[arg-type]
            asyncio.run(every_process_listening(redis.url, timeout_s=60))
            yield urls
    finally:
        redis.stop()


async def ignore(_: str) -> None:
    return None


async def every_process_listening(redis_url: str, timeout_s: float) -> None:
    """Until every process registered as a receiver of the switch (each worker runs its own
    lifespan; /health answers once the first worker of an API has)."""
    probe = Broadcast(redis_url, CHANNEL, ignore)
    deadline = time.monotonic() + timeout_s
    try:
        while len(receivers := await probe.receivers()) < PROCESSES:
            assert time.monotonic() < deadline, f"only {receivers} listening"
            await asyncio.sleep(0.1)
    finally:
        await probe.stop()


def test_the_switch_is_applied_by_every_process_of_every_api(platform: dict[str, str]) -> None:
    try:
        for service, url in platform.items():
            switched = httpx.put(f"{url}/admin/cache", json={"mode": "off"}, timeout=10)
            assert switched.status_code == 200, switched.text
            assert switched.json()["applied_by"] == PROCESSES
            for other in platform.values():  # whichever worker answers: off, at once
                modes = httpx.get(f"{other}/admin/cache", timeout=10).json()["modes"]
                assert modes[service] == "off"
    finally:
        for url in platform.values():
            httpx.put(f"{url}/admin/cache", json={"mode": "on"}, timeout=10)
    for url in platform.values():
        switched = httpx.put(f"{url}/admin/cache", json={"orders": "write-through"}, timeout=10)
        assert switched.json()["applied_by"] == PROCESSES


async def read_item_many_times(shop: str, n: int = 40) -> list[dict[str, object]]:
    """`n` reads at once, each on a new connection, so both workers answer some."""
    limits = httpx.Limits(max_keepalive_connections=0)
    async with httpx.AsyncClient(base_url=shop, limits=limits, timeout=10) as client:
        replies = await asyncio.gather(*(client.get(f"/items/{ITEM}") for _ in range(n)))
    assert all(reply.status_code == 200 for reply in replies)
    return [reply.json() for reply in replies]


def test_an_item_edited_through_one_worker_is_never_served_old_by_another(
    platform: dict[str, str],
) -> None:
    shop, crm = platform["shop"], platform["crm"]
    for edit in range(5):
        seen = asyncio.run(read_item_many_times(shop))  # near-cached in both Shop workers
        assert len({(item["version"], item["name"]) for item in seen}) == 1
        item = seen[0]
        body = {k: item[k] for k in ("name", "category", "price", "description")}
        body["name"] = f"Edited {edit} {time.monotonic_ns()}"
        edited = httpx.put(f"{crm}/items/{ITEM}", json=body, timeout=10)
        assert edited.status_code == 200, edited.text
        after = asyncio.run(read_item_many_times(shop))
        stale = [
            i
            for i in after
            if (i["version"], i["name"]) != (edited.json()["version"], body["name"])
        ]
        assert not stale, f"{len(stale)} of {len(after)} reads after the edit were old: {stale[0]}"


def test_metrics_add_up_every_worker(platform: dict[str, str]) -> None:
    text = httpx.get(f"{platform['shop']}/metrics", timeout=10).text
    pids = set(re.findall(r'orderflow_cache_breaker_state\{[^}]*pid="(\d+)"', text))
    assert len(pids) >= WORKERS  # one series per worker: every worker's samples are there
    assert "orderflow_http_request_duration_seconds_count" in text
