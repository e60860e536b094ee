"""PostgreSQL unreachable: 503 problem+json within the connect timeout, never a hang or 500;
what the cache already holds is still served."""

import asyncio
import time

import httpx

from orderflow.kit.embedded import free_port
from orderflow.kit.settings import Settings
from tests.clients import api
from tests.factories import assert_problem


async def test_unreachable_database_answers_503(
    settings: Settings, shop: httpx.AsyncClient
) -> None:
    cached = (await shop.get("/items/2")).json()
    dead = f"postgresql://postgres@127.0.0.1:{free_port()}/nowhere"
    broken = settings.model_copy(update={"shop_dsn": dead, "db_connect_timeout_s": 1.0})
    async with api("shop", broken) as down:
        started = time.monotonic()
        assert_problem(await down.get("/items/987654"), 503)
        body = {"client_id": 1, "lines": [{"item_id": 1, "quantity": 1}]}
        response = await down.post("/orders", json=body)
        assert_problem(response, 503)
        assert response.headers["Retry-After"] == "1"
        health = await down.get("/health")
        assert health.status_code == 503
        assert health.json()["shopdb"] == "down"
        assert time.monotonic() - started < 10
        assert (await down.get("/items/2")).json() == cached  # the cache still answers


async def test_a_database_that_cannot_serve_now_answers_503(settings: Settings) -> None:
    """PostgreSQL starting up or shutting down (a restart) refuses connections with SQLSTATE
    57P03: every read path answers 503, the lean one (kit/lean.py) as the ORM's."""
    server = await asyncio.start_server(_starting_up, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    starting = settings.model_copy(
        update={"shop_dsn": f"postgresql://postgres@127.0.0.1:{port}/shopdb", "redis_url": ""}
    )
    async with server, api("shop", starting) as down:
        for path in ("/orders/1", "/clients/1/orders", "/clients/1", "/items/1"):
            response = await down.get(path)
            assert_problem(response, 503)
            assert response.headers["Retry-After"] == "1"


async def _starting_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """A PostgreSQL that answers every connection as one starting up does."""
    while True:  # refuse SSL and GSS encryption, then answer the startup message
        length = int.from_bytes(await reader.readexactly(4), "big")
        code = int.from_bytes((await reader.readexactly(length - 4))[:4], "big")
        if code not in (80877103, 80877104):
            break
        writer.write(b"N")
    fields = b"SFATAL\0VFATAL\0C57P03\0Mthe database system is starting up\0\0"
    writer.write(b"E" + (len(fields) + 4).to_bytes(4, "big") + fields)
    await writer.drain()
    writer.close()
