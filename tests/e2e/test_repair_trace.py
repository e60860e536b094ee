"""A repair from the journal is a span of the trace of the write that owed it.

Its own module, so that no other process of the session serves this ShopDB meanwhile: every
Shop and CRM process repairs the rows of its database, and one alive from another test (the
module-scoped platform of test_tracing.py) repaired this test's row against its own Redis, its
span sent to its own receiver; the test then missed it (2 runs in about 8)."""

import asyncio
from pathlib import Path
from typing import Any

import httpx

from orderflow.kit.embedded import EmbeddedRedis, free_port
from orderflow.kit.settings import Settings
from orderflow.kit.tracing import journey_trace_id
from tests.clients import server
from tests.factories import new_client
from tests.otlp import receiver

WITHIN_S = 30.0


async def test_a_repair_from_the_journal_is_a_span_of_the_write_s_trace(
    settings: Settings, tmp_path: Path
) -> None:
    """An order placed while the Shop's Redis is down leaves its upkeep to the journal (the
    answer says `Orderflow-Upkeep: deferred`); once Redis is back, the Shop repairs it (its
    probe's replay or its worker) and the repair is a span of that order's journey."""
    redis = EmbeddedRedis(tmp_path, free_port())
    redis.start()
    own = settings.model_copy(update={"redis_url": redis.url, "redis_cluster": False})
    env = {"OTEL_BSP_SCHEDULE_DELAY": "100", "OTEL_TRACES_SAMPLER": "parentbased_always_on"}
    try:
        with receiver() as (endpoint, found), server("shop", own, env | otlp(endpoint)) as shop:
            async with httpx.AsyncClient(base_url=shop) as http:
                client = await new_client(http)
                redis.stop()
                order = {"client_id": client["id"], "lines": [{"item_id": 1, "quantity": 1}]}
                placed = await http.post("/orders", json=order)
                assert placed.status_code == 201, placed.text
                assert placed.headers["orderflow-upkeep"] == "deferred"
                redis.start()
                trace_id = journey_trace_id(placed.json()["id"])
                repairs = await repaired(http, found.of_trace, trace_id)
        names = sorted({s["name"] for s in found.of_trace(trace_id)})
        assert repairs, f"no applied repair on the order's trace in {WITHIN_S} s, only {names}"
        assert all(s["attributes"]["cache.entity"] == "order" for s in repairs)
    finally:
        redis.stop()


def otlp(endpoint: str) -> dict[str, str]:
    return {"OTEL_EXPORTER_OTLP_ENDPOINT": endpoint}


async def repaired(http: httpx.AsyncClient, of_trace: Any, trace_id: str) -> list[Any]:
    """The trace's repair spans that applied (a try while Redis was still starting may have
    failed first), once one arrived (`WITHIN_S` at most)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WITHIN_S
    while loop.time() < deadline:
        repairs = [s for s in of_trace(trace_id) if s["name"] == "cache repair order"]
        if applied := [s for s in repairs if s["attributes"]["cache.outcome"] == "applied"]:
            return applied
        await http.get("/health")  # lets a due probe through (its replay)
        await asyncio.sleep(0.1)
    return []
