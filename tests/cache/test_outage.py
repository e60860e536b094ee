"""Redis down, slow or back: requests never fail; after an outage the writes Redis missed are
replayed before it is read again, so nothing older than them is served, and nothing else is lost:
the cache is as warm as before. The epoch moves only when the server lost data.

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
from orderflow.cache.layout import ONE_NODE
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
        # One failed call, not redis-py's retries or its connect timeout (2 s): counted below.
        assert took < 1.5
    assert fragile.breaker.state == "open"
    assert sample("orderflow_cache_breaker_state", namespace=fragile.namespace) == 2
    assert await fragile.health() == "degraded: breaker open"
    connection_errors = sample(
        "orderflow_cache_errors_total", entity=entity.name, op="lookup", kind="connection"
    )

    for _ in range(20):  # Redis is not even tried: no connection error more, 20 rejections
        assert await fragile.get_or_load(entity, 7, loader, TTL) == b'{"v":1}'
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


async def test_after_a_partition_the_missed_writes_are_replayed_and_the_rest_stays_warm(
    fragile: Cache, private_redis: EmbeddedRedis, private_client: Redis, entity: Entity, ns: str
) -> None:
    """What the service's upkeep journal does, in small: the writes that failed are kept, and
    the breaker's probe re-applies them before Redis is read again. No epoch moves: "c", which
    no write touched, is still a hit after the outage."""
    missed: list[tuple[str, int]] = []  # the journal: (key, committed version) not applied

    async def replay() -> None:
        for key, version in missed:
            assert await fragile.invalidate(entity, key, version)  # passes the breaker

    fragile.recovery.add(replay)
    v1, v2 = Loader(1, b'{"v":1}'), Loader(2, b'{"v":2}')
    for key in ("a", "b", "c"):
        await fragile.get_or_load(entity, key, v1, TTL)
    before = fragile.epoch
    with paused(private_redis):
        # Writer 1 commits v2 of "a"; its put and the fallback tombstone time out: the breaker
        # trips at once, though only two calls failed (threshold 3).
        timeouts = sample(
            "orderflow_cache_errors_total", entity=entity.name, op="put", kind="timeout"
        )
        assert await fragile.put(entity, "a", 2, b'{"v":2}', TTL) is False
        missed.append(("a", 2))
        assert fragile.breaker.state == "open"
        # two calls failed: the put, and the tombstone in its stead
        put_timeouts = sample(
            "orderflow_cache_errors_total", entity=entity.name, op="put", kind="timeout"
        )
        assert put_timeouts == timeouts + 1
        assert (
            sample(
                "orderflow_cache_errors_total", entity=entity.name, op="invalidate", kind="timeout"
            )
            >= 1
        )
        # Writer 2 commits v2 of "b" while the breaker is open: nothing reaches Redis.
        assert not await fragile.put(entity, "b", 2, b'{"v":2}', TTL)
        missed.append(("b", 2))
        # Reads meanwhile go straight to the database, without trying Redis.
        assert await fragile.get_or_load(entity, "a", v2, TTL) == b'{"v":2}'
        unavailable = sample(
            "orderflow_cache_errors_total", entity=entity.name, op="lookup", kind="unavailable"
        )
        assert unavailable == 1

    old_b = f"{ns}:item:v1:e{before}:{{b}}"
    assert await private_client.get(old_b) == b'1|{"v":1}'  # survived the pause
    await asyncio.sleep(RESET_S)
    for key in ("a", "b"):
        assert await fragile.get_or_load(entity, key, v2, TTL) == b'{"v":2}'
    assert fragile.breaker.state == "closed"
    assert fragile.epoch == before  # Redis lost nothing
    assert v2.calls == 3  # the read during the pause, then a and b once each
    assert await fragile.get_or_load(entity, "c", v2, TTL) == b'{"v":1}'  # still cached


async def test_a_failing_recovery_keeps_the_breaker_open(fragile: Cache, entity: Entity) -> None:
    """A replay that cannot run (its database is down) must not let Redis be read: the old
    entries it would have tombstoned are still there."""

    async def replay() -> None:
        raise ConnectionRefusedError("the journal's database is down")

    fragile.recovery.add(replay)
    await fragile.get_or_load(entity, "a", Loader(1, b'{"v":1}'), TTL)
    fragile.trip(probe_now=True)
    v2 = Loader(2, b'{"v":2}')
    assert await fragile.get_or_load(entity, "a", v2, TTL) == b'{"v":2}'  # the probe failed
    assert fragile.breaker.state == "open"
    assert (
        sample("orderflow_cache_errors_total", entity=entity.name, op="lookup", kind="recovery")
        == 1
    )


async def test_a_server_that_lost_data_moves_the_epoch_once_for_every_process(
    fragile: Cache, private_client: Redis, private_redis: EmbeddedRedis, entity: Entity, ns: str
) -> None:
    """A restart that kept a snapshot, or a promoted replica, serves under another run id than
    the one marked: the first probe to see it moves the epoch; another process's probe of the
    same event finds the mark set and moves nothing. (The snapshot is the one `SAVE` takes; a
    restart loads it whatever `--save` says.)"""
    await fragile.start()
    other = Cache(private_client, ns, timeout_s=TIMEOUT_S)
    await other.start()
    loader = Loader(1, b'{"v":1}')
    await fragile.get_or_load(entity, "a", loader, TTL)
    before = fragile.epoch
    await private_client.save()
    private_redis.stop()
    private_redis.start()  # the same data, under another run id
    await private_client.connection_pool.disconnect()  # its old connections are dead
    for cache in (fragile, other):
        cache.trip(probe_now=True)
        await cache.get_or_load(entity, "a", loader, TTL)
    assert fragile.epoch == other.epoch == before + 1  # moved once, not once per process
    assert loader.calls == 3  # both went to the database: nothing of the old server's is served
    await other.get_or_load(entity, "a", loader, TTL)  # a miss in the new epoch, filled
    assert await fragile.get_or_load(entity, "a", loader, TTL) == b'{"v":1}'
    assert loader.calls == 4  # a hit: the new epoch is warm again


async def test_a_server_behind_its_caller_moves_the_epoch_past_the_caller(
    fragile: Cache, private_client: Redis, entity: Entity, ns: str
) -> None:
    """A server whose epoch is below what a process believes (on a cluster: writes taken by a
    restarted old master before it learnt it was demoted, then lost) lacks writes that process
    made: its server check moves the epoch past the belief, as every other script does, and
    never takes the process back to the older epoch, whose entries may be the pre-write ones."""
    await private_client.set(f"{ns}:epoch", 95)
    await fragile.start()
    await fragile.get_or_load(entity, "a", Loader(1, b'{"v":1}'), TTL)  # cached in epoch 95
    await private_client.set(f"{ns}:epoch", 100)  # moved (on the server that then lost it)
    edited = Loader(2, b'{"v":2}')
    assert await fragile.get_or_load(entity, "a", edited, TTL) == b'{"v":2}'
    assert fragile.epoch == 100
    await private_client.set(f"{ns}:epoch", 95)  # the server that lags, its v1 still there
    await private_client.set(f"{ns}:epoch:server", await _run_id(private_client))  # checked
    await fragile.recovery.check(ONE_NODE)  # what every breaker probe does first
    assert await fragile.get_or_load(entity, "a", edited, TTL) == b'{"v":2}'
    assert fragile.epoch == 101
    assert int(await private_client.get(f"{ns}:epoch")) == 101


async def _run_id(client: Redis) -> str:
    return str((await client.info("server"))["run_id"])


async def test_a_slow_redis_costs_one_timeout_per_call(
    fragile: Cache, private_redis: EmbeddedRedis, entity: Entity
) -> None:
    loader = Loader(1, b"{}")
    with paused(private_redis):
        value, took = await timed(fragile.get_or_load(entity, 7, loader, TTL))
    assert value == b"{}"
    assert TIMEOUT_S <= took < 1.5  # the timeout, once: not retries, nor a hang
    assert (
        sample("orderflow_cache_errors_total", entity=entity.name, op="lookup", kind="timeout") == 1
    )


async def test_health_alone_heals_the_breaker(fragile: Cache, private_redis: EmbeddedRedis) -> None:
    before = fragile.epoch
    fragile.breaker.trip()
    assert await fragile.health() == "degraded: breaker open"
    await asyncio.sleep(RESET_S)
    assert await fragile.health() == "ok"
    assert fragile.epoch == before  # an outage that lost nothing moves no epoch


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


async def test_a_write_during_the_probe_waits_for_it_and_lands(
    fragile: Cache, private_client: Redis, entity: Entity
) -> None:
    """The probe's replay may have read the journal before a write's row was committed: a write
    refused while the probe is in flight would be missing once the breaker closes. So it waits
    for the probe's outcome, then goes to Redis."""
    replaying, replayed = asyncio.Event(), asyncio.Event()

    async def replay() -> None:
        replaying.set()
        await replayed.wait()

    fragile.recovery.add(replay)
    await fragile.get_or_load(entity, "a", Loader(1, b'{"v":1}'), TTL)
    fragile.trip(probe_now=True)
    probe = asyncio.create_task(fragile.get_or_load(entity, "b", Loader(1, b'{"v":1}'), TTL))
    await replaying.wait()  # the probe is in flight
    assert fragile.breaker.state == "half_open"
    write = asyncio.create_task(fragile.put(entity, "a", 2, b'{"v":2}', TTL))
    await asyncio.sleep(0.05)
    assert not write.done()  # waiting for the probe, not refused
    replayed.set()
    await probe
    assert await write is True
    assert await private_client.get(fragile.key_of(entity, "a")) == b'2|{"v":2}'
