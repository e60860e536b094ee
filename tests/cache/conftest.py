"""Fixtures for the cache layer's tests: a real Redis, a fresh namespace and entity per test."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from prometheus_client import REGISTRY
from redis.asyncio import Redis

from orderflow.cache import Cache, Entity, FixedTTL
from orderflow.kit.embedded import EmbeddedRedis, free_port

TTL = FixedTTL(60)


def connect(url: str) -> Redis:
    """A client like the platform's: short timeouts, no hidden retries (the breaker decides)."""
    return Redis.from_url(
        url, socket_timeout=2, socket_connect_timeout=2, retry=None, max_connections=512
    )


def sample(metric: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(metric, labels) or 0.0


class Loader:
    """A loader that counts its calls and can be held at a gate until the test opens it."""

    def __init__(self, version: int | None, payload: bytes, *, gated: bool = False) -> None:
        self.version, self.payload = version, payload
        self.calls = 0
        self.entered = asyncio.Event()
        self.gate = asyncio.Event()
        if not gated:
            self.gate.set()

    async def __call__(self) -> tuple[int | None, bytes]:
        self.calls += 1
        self.entered.set()
        await self.gate.wait()
        return self.version, self.payload


@pytest.fixture
async def client(redis_url: str) -> AsyncIterator[Redis]:
    redis = connect(redis_url)
    yield redis
    await redis.aclose()


@pytest.fixture
async def ns(client: Redis) -> str:
    """A fresh namespace whose epoch starts at 0, so tests can name its keys (`...:e0:...`).
    (Left missing, a namespace's epoch starts from the server's clock: see `lua_epochs.FRESH`.)"""
    namespace = f"t{uuid.uuid4().hex[:12]}"
    await client.set(f"{namespace}:epoch", 0)
    return namespace


@pytest.fixture
def entity() -> Entity:
    """A fresh entity name per test keeps the metric samples of tests apart."""
    return Entity(f"item_{uuid.uuid4().hex[:8]}", prefix="item")


@pytest.fixture
def cache(client: Redis, ns: str) -> Cache:
    return Cache(client, ns, timeout_s=1.0)


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[EmbeddedRedis]:
    """A redis-server of this test's own, for tests that stop or pause it."""
    server = EmbeddedRedis(tmp_path, free_port())
    server.start()
    try:
        yield server
    finally:
        server.stop()
