"""One order followed through every process: placed in the Shop, confirmed in the CRM, relayed
into the MES, pushed onto a board, claimed and completed, relayed back. Its spans form one
trace, gathered by `/admin/traces` from every process, and they arrive at an OTLP endpoint."""

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from opentelemetry.instrumentation.utils import suppress_http_instrumentation

from orderflow.kit.settings import Settings
from orderflow.kit.tracing import journey_trace_id
from tests.clients import running, server
from tests.factories import new_order
from tests.otlp import Receiver, receiver
from tests.sse import parse

EXPECTED = {
    ("shop", "order placed"),
    ("crm", "order confirm"),
    ("relay", "relay order_confirmed"),
    ("mes", "board push"),
    ("mes", "order claim"),
    ("mes", "order complete"),
    ("relay", "relay in_production"),
    ("relay", "relay ready"),
}


@pytest.fixture(scope="module")
def otlp() -> Iterator[tuple[str, Receiver]]:
    with receiver() as found:
        yield found


@pytest.fixture(scope="module")
def traced(settings: Settings, otlp: tuple[str, Receiver]) -> Iterator[dict[str, str]]:
    """The platform as real processes, each exporting OTLP to the test's receiver."""
    env = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": otlp[0],
        "OTEL_BSP_SCHEDULE_DELAY": "200",
        "OTEL_TRACES_SAMPLER": "parentbased_always_on",
        "ORDERFLOW_RELAY_METRICS_PORT": "0",
    }
    with (
        server("shop", settings, env) as shop,
        server("crm", settings, env) as crm,
        server("mes", settings, env) as mes,
        running(["relay"], settings, env),
    ):
        yield {"shop": shop, "crm": crm, "mes": mes}


async def wait_status(url: str, order_id: int, status: str) -> None:
    async with httpx.AsyncClient(base_url=url) as http:
        for _ in range(100):
            response = await http.get(f"/orders/{order_id}")
            if response.status_code == 200 and response.json()["status"] == status:
                return
            await asyncio.sleep(0.1)
    raise AssertionError(f"order {order_id} never became {status} at {url}")


@contextlib.asynccontextmanager
async def board(mes: str) -> AsyncIterator[list[str]]:
    """The queue board's live feed, open in the background: yields the events it got."""
    seen: list[str] = []
    connected = asyncio.Event()

    async def listen() -> None:
        async with (
            httpx.AsyncClient(timeout=None) as http,
            http.stream("GET", f"{mes}/board/events") as response,
        ):
            async for event in parse(response.aiter_lines()):
                connected.set()
                seen.append(event.event)

    task = asyncio.create_task(listen())
    await asyncio.wait_for(connected.wait(), 10)
    try:
        yield seen
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def journey(urls: dict[str, str]) -> int:
    async with (
        httpx.AsyncClient(base_url=urls["shop"]) as shop,
        httpx.AsyncClient(base_url=urls["crm"]) as crm,
        httpx.AsyncClient(base_url=urls["mes"]) as mes,
        board(urls["mes"]) as events,
    ):
        order_id = int((await new_order(shop))["id"])
        assert (await crm.post(f"/orders/{order_id}/confirm")).status_code == 200
        await wait_status(urls["mes"], order_id, "queued")
        claimed = await mes.post(f"/orders/{order_id}/claim", json={"operator_id": 1})
        assert claimed.status_code == 200, claimed.text
        await wait_status(urls["shop"], order_id, "in_production")
        done = await mes.post(f"/orders/{order_id}/complete", json={"operator_id": 1})
        assert done.status_code == 200, done.text
        await wait_status(urls["shop"], order_id, "ready")
        for _ in range(50):
            if events.count("change") >= 3:  # queued, claimed, completed
                break
            await asyncio.sleep(0.1)
        assert events.count("change") >= 3, events
    return order_id


async def gathered(shop: str, trace_id: str) -> list[dict[str, Any]]:
    """The trace's spans from every process, once every expected step is among them."""
    spans: list[dict[str, Any]] = []
    async with httpx.AsyncClient(base_url=shop) as http:
        for _ in range(50):
            response = await http.get(f"/admin/traces/{trace_id}/spans")
            assert response.status_code == 200
            spans = response.json()["spans"]
            if {(s["service"], s["name"]) for s in spans} >= EXPECTED:
                return spans
            await asyncio.sleep(0.2)
    return spans


async def test_one_order_is_one_trace_across_every_process(
    traced: dict[str, str], otlp: tuple[str, Receiver]
) -> None:
    order_id = await journey(traced)
    trace_id = journey_trace_id(order_id)

    spans = await gathered(traced["shop"], trace_id)
    steps = {(s["service"], s["name"]) for s in spans}
    assert steps >= EXPECTED, f"missing: {EXPECTED - steps}"
    assert {"shop", "crm", "relay", "mes"} <= {s["service"] for s in spans}
    # the cache's decisions on the spans, per service, without the key's value
    cached = [s for s in spans if "cache.outcome" in s["attributes"]]
    outcomes = {(s["service"], s["attributes"]["cache.outcome"]) for s in cached}
    assert {service for service, _ in outcomes} >= {"shop", "crm", "mes", "relay"}, outcomes
    assert all(s["attributes"]["cache.key_kind"] in ("id", "name", "families") or
               s["attributes"]["cache.key_kind"].startswith("query") for s in cached)  # fmt: skip
    board_reads = [s for s in cached if s["service"] == "mes" and s["name"].startswith("cache ")]
    assert any(s["attributes"]["cache.outcome"] in ("hit", "miss") for s in board_reads)
    # the relay's delivery continues the confirming request's trace, linked to its batch
    delivery = next(s for s in spans if s["name"] == "relay order_confirmed")
    assert delivery["links"] and delivery["attributes"]["orderflow.order_id"] == order_id
    assert all(s["attributes"].get("orderflow.order_id", order_id) == order_id for s in spans)

    # the list finds it by order id
    async with httpx.AsyncClient(base_url=traced["crm"]) as http:
        page = await http.get("/admin/traces", params={"order": order_id})
    assert page.status_code == 200 and trace_id in page.text

    # and an OTLP endpoint got the same spans
    exported: set[tuple[str, str]] = set()
    for _ in range(50):
        exported = {(s["service"], s["name"]) for s in otlp[1].of_trace(trace_id)}
        if exported >= EXPECTED:
            break
        await asyncio.sleep(0.2)
    assert exported >= EXPECTED, f"not exported: {EXPECTED - exported}"
    services = {s["resource_service"] for s in otlp[1].of_trace(trace_id)}
    assert services == {"shop", "crm", "mes", "relay"}


async def test_trace_pages_refuse_bad_input_in_words(traced: dict[str, str]) -> None:
    async with httpx.AsyncClient(base_url=traced["mes"]) as http:
        bad_order = await http.get("/admin/traces", params={"order": "12x"})
        bad_trace = await http.get("/admin/traces/not-a-trace")
        unknown = await http.get(f"/admin/traces/{'0' * 31}1")
    assert bad_order.status_code == 422 and "order" in bad_order.text
    assert bad_trace.status_code == 422 and "trace_id" in bad_trace.text
    assert unknown.status_code == 404 and "no process keeps" in unknown.text


def test_otel_sdk_disabled_turns_tracing_off(settings: Settings) -> None:
    with server("mes", settings, {"OTEL_SDK_DISABLED": "true"}) as mes:
        claimed = httpx.post(f"{mes}/orders/999999999/claim", json={"operator_id": 1})
        page = httpx.get(f"{mes}/admin/traces", params={"order": 999999999})
    assert claimed.status_code == 404  # the service works as before
    assert page.status_code == 200 and "Tracing is off" in page.text
    assert "No trace of order 999999999" in page.text


async def test_at_a_ratio_a_request_is_traced_whole_or_not_at_all(settings: Settings) -> None:
    """At `parentbased_traceidratio` 0.5: the Shop's requests that the sampler keeps have their
    Redis calls and statements under them; those it drops leave no span at all (the gate
    suppressed the instrumentations); a request whose parent says "not sampled" neither; and an
    order's journey that is sampled inside a dropped request still gets its statements."""
    with receiver() as (endpoint, found):
        env = {
            "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
            "OTEL_BSP_SCHEDULE_DELAY": "100",
            "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
            "OTEL_TRACES_SAMPLER_ARG": "0.5",
        }
        unsampled = [f"{n:032x}" for n in range(1, 11)]
        # No `traceparent` from this process: an earlier in-process app instrumented httpx here,
        # and its unsampled context would make the server drop every request (as it should).
        with server("shop", settings, env) as shop, suppress_http_instrumentation():
            async with httpx.AsyncClient(base_url=shop) as http:
                orders = [int((await new_order(http))["id"]) for _ in range(40)]
                for _ in range(60):
                    assert (await http.get(f"/orders/{orders[0]}")).status_code == 200
                for trace_id in unsampled:
                    parent = {"traceparent": f"00-{trace_id}-{'1' * 16}-00"}
                    assert (
                        await http.get(f"/orders/{orders[0]}", headers=parent)
                    ).status_code == 200
            spans = await exported(found)
    reads = {s["trace_id"] for s in spans if s["name"] == "GET /orders/{order_id}"}
    names = sorted({s["name"] for s in spans})
    assert 10 < len(reads) < 50, f"{len(reads)} reads kept; spans named {names}"  # about 30
    under = {s["trace_id"] for s in spans if "redis" in s["scope"] or "sqlalchemy" in s["scope"]}
    servers = {s["trace_id"] for s in spans if s["server"]}
    journeys = {journey_trace_id(order_id) for order_id in orders}
    assert reads <= under  # a kept request is whole
    assert under <= servers | journeys  # nothing of a dropped request was recorded
    assert not {s["trace_id"] for s in spans} & set(unsampled)
    # A journey's step links to the request that took it, unless that request was dropped.
    steps = [s for s in spans if s["name"] == "order placed"]
    assert any(not s["links"] for s in steps), "no journey was sampled in a dropped placement"
    assert {s["trace_id"] for s in steps} <= under  # each journey kept has its statements


async def exported(found: Receiver, quiet_s: float = 1.5, within_s: float = 30) -> list[Any]:
    """The receiver's spans once no more arrived for `quiet_s` (the exporter's last batches
    sent, on a machine that may be slow), `within_s` at most."""
    deadline = time.monotonic() + within_s
    count, since = -1, time.monotonic()
    while time.monotonic() < deadline:
        if len(found.spans) != count:
            count, since = len(found.spans), time.monotonic()
        elif count > 0 and time.monotonic() - since >= quiet_s:
            break
        await asyncio.sleep(0.1)
    return list(found.spans)
