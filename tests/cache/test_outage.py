"""Redis down, slow or back: requests never fail, and nothing from before an outage is served.

Each test runs its own redis-server, which it stops or pauses (SIGSTOP keeps its data).
"""

import asyncio
import signal
import time
from collections.abc import AsyncIterator, Awaitable, Iterator
from contextlib import contextmanager
from typing import TypeVar

import pytest
from redis.asyncio import Redis

from orderflow.cache import Cache, CircuitBreaker, Entity
from orderflow.kit.embedded import EmbeddedRedis
from tests.cache.conftest import TTL, Loader, connect, sample

T = TypeVar("T")
TIMEOUT_S = 0.1
RESET_S = 1.0  # long enough that a slow failed read cannot let the probe through


@pytest.fixture
async def private_client(private_redis: EmbeddedRedis) -> AsyncIterator[Redis]:
    client = connect(private_redis.url)
    yield client
    await client.aclose()


@pytest.fixture
async def fragile(private_client: Redis, ns: str) -> Cache:
    await private_client.set(f"{ns}:epoch", 0)
    breaker = CircuitBreaker(failure_threshold=3, reset_after_s=RESET_S)
    return Cache(private_client, ns, timeout_s=TIMEOUT_S, breaker=breaker)


@contextmanager
def paused(server: EmbeddedRedis) -> Iterator[None]:
    assert server.proc is not None
    server.proc.send_signal(signal.SIGSTOP)
    try:
        yield
    finally:
        server.proc.send_signal(signal.SIGCONT)


async def timed(call: Awaitable[T]) -> tuple[T, float]:
    started = time.perf_counter()
    result = await call
    return result, time.perf_counter() - started


async def test_redis_stopped_then_restarted(
    fragile: Cache, private_redis: EmbeddedRedis, entity: Entity
) -> None:
    private_redis.stop()
    loader = Loader(1, b'{"v":1}')
    for _ in range(3):
        value, took = await timed(fragile.get_or_load(entity, 7, loader, TTL))
        assert value == b'{"v":1}'
        # At most one timeout, not redis-py's retries or a connect timeout (2 s); the slack is
        # the scheduling of a shared 2-core machine (0.23 s seen once in CI).
        assert took < TIMEOUT_S + 0.25
    assert fragile.breaker.state == "open"
    assert sample("orderflow_cache_breaker_state", namespace=fragile.namespace) == 2
    assert await fragile.health() == "degraded: breaker open"
    connection_errors = sample(
        "orderflow_cache_errors_total", entity=entity.name, op="lookup", kind="connection"
    )

    for _ in range(20):  # fast, and Redis is not even tried
        value, took = await timed(fragile.get_or_load(entity, 7, loader, TTL))
        assert value == b'{"v":1}'
        assert took < 0.02
    assert connection_errors == sample(
        "orderflow_cache_errors_total", entity=entity.name, op="lookup", kind="connection"
    )
    assert (
        sample("orderflow_cache_errors_total", entity=entity.name, op="lookup", kind="unavailable")
        == 20
    )
    assert loader.calls == 23

    before = fragile.epoch
    private_redis.start()
    await asyncio.sleep(RESET_S)
    assert await fragile.get_or_load(entity, 7, loader, TTL) == b'{"v":1}'
    assert fragile.breaker.state == "closed"
    assert fragile.epoch > before  # the probe started the (empty) server on a never-used epoch
    assert sample("orderflow_cache_breaker_state", namespace=fragile.namespace) == 0
    assert await fragile.health() == "ok"


async def test_after_a_partition_no_pre_outage_entry_is_served(
    fragile: Cache, private_redis: EmbeddedRedis, private_client: Redis, entity: Entity, ns: str
) -> None:
    v1, v2 = Loader(1, b'{"v":1}'), Loader(2, b'{"v":2}')
    for key in ("a", "b"):
        await fragile.get_or_load(entity, key, v1, TTL)
    before = fragile.epoch
    with paused(private_redis):
        # Writer 1 commits v2 of "a"; its put and the fallback tombstone time out: the breaker
        # trips at once, though only two calls failed (threshold 3).
        stored, took = await timed(fragile.put(entity, "a", 2, b'{"v":2}', TTL))
        assert stored is False
        assert took < 2 * TIMEOUT_S + 0.08
        assert fragile.breaker.state == "open"
        # Writer 2 commits v2 of "b" while the breaker is open: nothing reaches Redis.
        assert not await fragile.put(entity, "b", 2, b'{"v":2}', TTL)
        # Reads meanwhile go straight to the database.
        value, took = await timed(fragile.get_or_load(entity, "a", v2, TTL))
        assert (value, took < 0.02) == (b'{"v":2}', True)

    old_b = f"{ns}:item:v1:e{before}:{{b}}"
    assert await private_client.get(old_b) == b'1|{"v":1}'  # survived the pause
    await asyncio.sleep(RESET_S)
    for key in ("a", "b"):
        assert await fragile.get_or_load(entity, key, v2, TTL) == b'{"v":2}'
    assert fragile.breaker.state == "closed"
    assert fragile.epoch == before + 1
    assert v2.calls == 3


async def test_a_slow_redis_costs_one_timeout_per_call(
    fragile: Cache, private_redis: EmbeddedRedis, entity: Entity
) -> None:
    loader = Loader(1, b"{}")
    with paused(private_redis):
        value, took = await timed(fragile.get_or_load(entity, 7, loader, TTL))
    assert value == b"{}"
    assert TIMEOUT_S <= took < TIMEOUT_S + 0.08
    assert (
        sample("orderflow_cache_errors_total", entity=entity.name, op="lookup", kind="timeout") == 1
    )


async def test_health_alone_heals_the_breaker(fragile: Cache, private_redis: EmbeddedRedis) -> None:
    before = fragile.epoch
    fragile.breaker.trip()
    assert await fragile.health() == "degraded: breaker open"
    await asyncio.sleep(RESET_S)
    assert await fragile.health() == "ok"
    assert fragile.epoch == before + 1


async def test_writes_rejected_during_the_probe_leave_recovery_to_it(
    fragile: Cache, entity: Entity
) -> None:
    """Finding 5: a write rejected while the half-open probe was in flight used to re-open the
    breaker, so the probe's success closed nothing, and under write load every probe's epoch
    bump was followed by another: several flushes of the namespace for one outage."""
    before = fragile.epoch
    fragile.breaker.trip(probe_now=True)
    probe = fragile.breaker.admit()  # a probe is in flight (a read or /health)
    assert fragile.breaker.state == "half_open"
    for n in range(10):  # writes committed meanwhile are rejected, not tried
        assert not await fragile.put(entity, n, 2, b'{"v":2}', TTL)
        assert not await fragile.invalidate(entity, n, 2)
        assert not await fragile.bump(["orders"])
    assert fragile.breaker.state == "half_open"
    assert probe is not None
    fragile.breaker.succeeded(probe)
    assert fragile.breaker.state == "closed"
    await fragile.get_or_load(entity, 1, Loader(2, b'{"v":2}'), TTL)
    assert fragile.epoch == before  # no further bump: that probe was the only one needed
