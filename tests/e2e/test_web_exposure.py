"""What one client can do to a real uvicorn process (kit/server.py, kit/security.py): no
banner and the security headers on streams too; a replay from the oldest id answers a bounded
snapshot (or `resync`), never the whole stream; live feeds are capped per process (503 with
Retry-After); a head too large gets 431; connections that drip partial heads are closed after
`header_timeout_s`, so they cannot hold the concurrency limit and starve other clients."""

import asyncio
import time
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from redis.asyncio import Redis

from orderflow.kit.settings import Settings
from orderflow.production.events.stream import STREAM_KEY, EventStream
from orderflow.relay.relay import Direction
from tests.clients import server
from tests.e2e.test_boards import queue_orders
from tests.sse import Event, parse

REPLAY_MAX = 5
FEEDS = 2
LIMIT = 8
HEAD_TIMEOUT_S = 1.0
ENV = {
    "ORDERFLOW_SSE_REPLAY_MAX": str(REPLAY_MAX),
    "ORDERFLOW_SSE_MAX_SUBSCRIBERS": str(FEEDS),
    "ORDERFLOW_LIMIT_CONCURRENCY": str(LIMIT),
    "ORDERFLOW_HEADER_TIMEOUT_S": str(HEAD_TIMEOUT_S),
    "ORDERFLOW_MAX_HEADER_BYTES": "8192",
}


@pytest.fixture(scope="module")
def mes_url(settings: Settings) -> Iterator[str]:
    with server("mes", settings, ENV) as url:
        yield url


def port_of(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


def assert_guarded(headers: httpx.Headers) -> None:
    assert "server" not in headers  # no `server: uvicorn`
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
    assert headers["x-content-type-options"] == "nosniff"


async def first_events(
    url: str, path: str, last_event_id: str | None, count: int = 1
) -> tuple[httpx.Headers, list[Event], int]:
    """The first `count` events with data, the answer's headers and the bytes read."""
    headers = {"Last-Event-ID": last_event_id} if last_event_id else {}
    found: list[Event] = []
    read = 0
    async with (
        httpx.AsyncClient(timeout=10) as http,
        http.stream("GET", f"{url}{path}", headers=headers) as response,
    ):
        assert response.status_code == 200

        async def lines() -> AsyncIterator[str]:
            nonlocal read
            async for line in response.aiter_lines():
                read += len(line) + 1
                yield line

        async for event in parse(lines()):
            if event.data:
                found.append(event)
                if len(found) == count:
                    break
        return response.headers, found, read


async def published(redis: Redis, order_id: int, count: int) -> list[str]:
    """`count` events of one order (versions no write uses), their stream ids."""
    stream = EventStream(redis)
    base = 1_000_000 + int(time.time() * 1000) % 1_000_000 * 100
    ids = []
    for n in range(count):
        order = {"id": order_id, "operator_id": None, "version": base + n, "status": "queued"}
        stream_id = await stream.publish("queued", order)
        assert stream_id is not None
        ids.append(stream_id)
    return ids


async def test_no_banner_and_the_headers_on_streams_too(mes_url: str) -> None:
    async with httpx.AsyncClient(base_url=mes_url) as http:
        for path in ("/health", "/", "/static/board.js", "/metrics", "/orders/987654321"):
            assert_guarded((await http.get(path)).headers)
        for path in ("/events", "/board/events"):
            async with http.stream("GET", path) as stream:
                assert stream.status_code == 200
                assert stream.headers["content-type"].startswith("text/event-stream")
                assert_guarded(stream.headers)


async def test_a_replay_from_the_oldest_id_answers_a_bounded_snapshot(
    mes_url: str, redis: Redis, settings: Settings, relay: list[Direction]
) -> None:
    (order_id,) = await queue_orders(settings, relay, 1)
    ids = await published(redis, order_id, REPLAY_MAX + 5)
    oldest = (await redis.xrange(STREAM_KEY, "-", "+", count=1))[0][0].decode()
    # /events: a resync, not the events after the oldest one
    _, (event,), _ = await first_events(mes_url, "/events", oldest)
    assert event.event == "resync"
    # /board/events: a snapshot of the board, not a fragment per order since the oldest
    _, (snapshot,), read = await first_events(mes_url, "/board/events", oldest)
    assert snapshot.event == "snapshot" and 'id="queue"' in snapshot.data
    assert read < 200_000
    # within the bound, what was missed is replayed
    _, replayed, _ = await first_events(mes_url, "/events", ids[-3], count=2)
    assert [e.id for e in replayed] == ids[-2:]
    assert all(e.event == "queued" for e in replayed)
    _, (change,), _ = await first_events(mes_url, "/board/events", ids[-3])
    assert change.event == "change" and change.id == ids[-1]
    assert f'id="q-{order_id}"' in change.data


async def test_live_feeds_are_capped_per_process(mes_url: str) -> None:
    async with httpx.AsyncClient(base_url=mes_url, timeout=10) as http:
        opened = [http.stream("GET", "/events") for _ in range(FEEDS)]
        held = [await feed.__aenter__() for feed in opened]
        try:
            assert all(r.status_code == 200 for r in held)
            for path in ("/events", "/board/events"):
                refused = await http.get(path)
                assert refused.status_code == 503, refused.text
                assert refused.headers["retry-after"]
                assert refused.headers["content-type"].startswith(
                    ("application/problem+json", "text/html")
                )
            assert (await http.get("/health")).status_code == 200  # the rest serves on
        finally:
            for feed in opened:
                await feed.__aexit__(None, None, None)
        # a closed feed frees its place
        async with asyncio.timeout(10):
            while True:
                async with http.stream("GET", "/events") as again:
                    if again.status_code == 200:
                        break
                await asyncio.sleep(0.1)


async def head_of(reader: asyncio.StreamReader) -> bytes:
    """What the server answered before it closed the connection."""
    return await asyncio.wait_for(reader.read(), HEAD_TIMEOUT_S + 5)


async def test_an_oversized_head_gets_431_and_the_server_serves_on(mes_url: str) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port_of(mes_url))
    head = b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: " + b"a" * 65_536 + b"\r\n\r\n"
    writer.write(head)
    await writer.drain()
    answer = await head_of(reader)
    writer.close()
    assert answer.startswith(b"HTTP/1.1 431 ")
    async with httpx.AsyncClient(base_url=mes_url) as http:
        fits = await http.get("/health", headers={"X-Fits": "a" * 6000})
        assert fits.status_code == 200


async def test_slow_heads_cannot_starve_other_clients(mes_url: str) -> None:
    """One client opens as many connections as the process takes and drips their heads; each
    is answered 408 and closed within `header_timeout_s`; another client is served by then."""
    port = port_of(mes_url)
    conns = [await asyncio.open_connection("127.0.0.1", port) for _ in range(LIMIT)]
    for _, writer in conns:
        writer.write(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n")

    async def drip() -> None:
        for _ in range(100):
            for _, writer in conns:
                if not writer.is_closing():
                    writer.write(b"X-Slow: 1\r\n")
            await asyncio.sleep(0.1)

    dripping = asyncio.create_task(drip())
    started = time.monotonic()
    try:
        served_after = None
        async with httpx.AsyncClient(base_url=mes_url, timeout=5) as http:
            while time.monotonic() - started < HEAD_TIMEOUT_S + 5:
                response = await http.get("/health", headers={"connection": "close"})
                if response.status_code == 200:
                    served_after = time.monotonic() - started
                    break
                assert response.status_code == 503  # the concurrency limit, for a moment
                await asyncio.sleep(0.05)
        assert served_after is not None and served_after < HEAD_TIMEOUT_S + 3, served_after
        answers = await asyncio.gather(*(head_of(reader) for reader, _ in conns))
        assert all(answer.startswith(b"HTTP/1.1 408 ") for answer in answers), answers
        assert time.monotonic() - started < HEAD_TIMEOUT_S + 5
    finally:
        dripping.cancel()
        for _, writer in conns:
            writer.close()


async def test_a_connection_that_sends_nothing_is_closed(mes_url: str) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port_of(mes_url))
    started = time.monotonic()
    assert await head_of(reader) == b""  # closed quietly: nothing was asked
    assert time.monotonic() - started < HEAD_TIMEOUT_S + 3
    writer.close()
