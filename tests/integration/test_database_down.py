"""PostgreSQL unreachable: 503 problem+json within the connect timeout, never a hang or 500;
what the cache already holds is still served."""

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
