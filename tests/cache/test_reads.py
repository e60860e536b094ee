"""Cache-aside reads against a real Redis: hits, loader errors, single flight, leases."""

import asyncio

import pytest
from redis.asyncio import Redis

from orderflow.cache import Cache, Entity
from tests.cache.conftest import TTL, Loader, connect, sample


class NotFound(Exception):
    pass


async def test_second_read_is_a_hit(cache: Cache, entity: Entity) -> None:
    loader = Loader(3, b'{"id":7}')
    assert await cache.get_or_load(entity, 7, loader, TTL) == b'{"id":7}'
    assert await cache.get_or_load(entity, 7, loader, TTL) == b'{"id":7}'
    assert loader.calls == 1
    name = entity.name
    assert sample("orderflow_cache_requests_total", entity=name, result="miss") == 1
    assert sample("orderflow_cache_requests_total", entity=name, result="hit") == 1
    assert sample("orderflow_cache_loads_total", entity=name) == 1
    assert sample("orderflow_cache_fills_total", entity=name, outcome="stored") == 1
    # one lookup each time (the miss's also took the lease), one fill (which released it)
    assert sample("orderflow_cache_latency_seconds_count", entity=name, op="lookup") == 2
    assert sample("orderflow_cache_latency_seconds_count", entity=name, op="fill") == 1
    assert sample("orderflow_cache_latency_seconds_count", entity=name, op="release") == 0


async def test_entries_are_versioned_json_with_a_ttl(
    cache: Cache, entity: Entity, client: Redis, ns: str
) -> None:
    await cache.get_or_load(entity, 7, Loader(3, b'{"id":7}'), TTL)
    key = f"{ns}:item:v1:e0:{{7}}"
    assert await client.get(key) == b'3|{"id":7}'
    assert 50_000 < await client.pttl(key) <= 60_000
    assert not await client.exists(f"lease:{key}")  # released after the fill


async def test_a_loader_error_reaches_the_caller_and_is_not_cached(
    cache: Cache, entity: Entity
) -> None:
    calls = 0

    async def missing() -> tuple[int | None, bytes]:
        nonlocal calls
        calls += 1
        raise NotFound("item 7")

    for _ in range(2):
        with pytest.raises(NotFound, match="item 7"):
            await cache.get_or_load(entity, 7, missing, TTL)
    assert calls == 2


async def test_version_none_means_do_not_cache(cache: Cache, entity: Entity) -> None:
    loader = Loader(None, b"{}")
    await cache.get_or_load(entity, 7, loader, TTL)
    await cache.get_or_load(entity, 7, loader, TTL)
    assert loader.calls == 2


async def test_stampede_in_one_process_loads_once(cache: Cache, entity: Entity) -> None:
    loader = Loader(1, b'{"hot":true}', gated=True)
    readers = [asyncio.create_task(cache.get_or_load(entity, 1, loader, TTL)) for _ in range(200)]
    await loader.entered.wait()
    await asyncio.sleep(0.01)
    loader.gate.set()
    assert set(await asyncio.gather(*readers)) == {b'{"hot":true}'}
    assert loader.calls == 1


async def test_stampede_across_processes_loads_once(
    redis_url: str, ns: str, entity: Entity
) -> None:
    clients = [connect(redis_url), connect(redis_url)]  # two "processes"
    try:
        # 100 cold readers per process open their connections at once: allow for that.
        caches = [Cache(c, ns, wait_ms=2_000, timeout_s=1.0) for c in clients]
        loader = Loader(1, b'{"hot":true}', gated=True)
        readers = [
            asyncio.create_task(cache.get_or_load(entity, 1, loader, TTL))
            for _ in range(100)
            for cache in caches
        ]
        await loader.entered.wait()
        await asyncio.sleep(0.05)  # both processes have looked up; the loser polls the lease
        loader.gate.set()
        assert set(await asyncio.gather(*readers)) == {b'{"hot":true}'}
        assert loader.calls == 1
        assert sample("orderflow_cache_requests_total", entity=entity.name, result="hit") == 100
    finally:
        for c in clients:
            await c.aclose()


async def test_a_lease_holder_that_never_fills_costs_others_only_wait_ms(
    cache: Cache, entity: Entity, client: Redis, ns: str
) -> None:
    key = f"{ns}:item:v1:e0:{{9}}"
    await client.set(f"lease:{key}", "someone-who-crashed", px=60_000)
    quick = Cache(client, ns, wait_ms=50)
    loader = Loader(1, b"{}")
    started = asyncio.get_running_loop().time()
    assert await quick.get_or_load(entity, 9, loader, TTL) == b"{}"
    assert 0.05 <= asyncio.get_running_loop().time() - started < 0.5
    assert await client.get(key) is None  # not filled: only the lease's holder may fill


async def test_an_exhausted_pool_falls_back_without_opening_the_breaker(
    redis_url: str, ns: str, entity: Entity
) -> None:
    small = Redis.from_url(redis_url, socket_timeout=2, retry=None, max_connections=2)
    try:
        cache = Cache(small, ns, timeout_s=1.0)
        loader = Loader(1, b'{"v":1}')
        reads = [cache.get_or_load(entity, n, loader, TTL) for n in range(20)]
        assert set(await asyncio.gather(*reads)) == {b'{"v":1}'}
        assert cache.breaker.state == "closed"
        assert sample("orderflow_cache_errors_total", entity=entity.name, op="lookup", kind="busy")
    finally:
        await small.aclose()


async def test_latecomers_wait_for_this_process_s_own_slow_load(
    client: Redis, ns: str, entity: Entity
) -> None:
    """Readers arriving once the load started find its lease still held: no write came
    between it and them (a write revokes the lease), so they share the load, past `wait_ms`."""
    cache = Cache(client, ns, timeout_s=1.0, wait_ms=50)
    loader = Loader(1, b'{"slow":true}', gated=True)
    first = asyncio.create_task(cache.get_or_load(entity, 1, loader, TTL))
    await loader.entered.wait()  # loading: newcomers find its lease
    late = [asyncio.create_task(cache.get_or_load(entity, 1, loader, TTL)) for _ in range(50)]
    lookups = ("orderflow_cache_latency_seconds_count", {"entity": entity.name, "op": "lookup"})
    async with asyncio.timeout(10):  # every newcomer has looked up (a busy machine is slower)
        while sample(lookups[0], **lookups[1]) < 51:
            await asyncio.sleep(0.01)
    await asyncio.sleep(0.2)  # then four times wait_ms
    loader.gate.set()
    assert set(await asyncio.gather(first, *late)) == {b'{"slow":true}'}
    assert loader.calls == 1
    assert sample("orderflow_cache_requests_total", entity=entity.name, result="miss") == 51


async def test_waiters_on_a_cancelled_load_look_up_again(cache: Cache, entity: Entity) -> None:
    """A lease holder cancelled mid-load (its client went away) gives the lease back; the
    callers of this process waiting on its load do not fail: one of them loads instead."""
    first = Loader(1, b'{"v":1}', gated=True)
    holder = asyncio.create_task(cache.get_or_load(entity, 1, first, TTL))
    await first.entered.wait()
    second = Loader(1, b'{"v":1}')
    waiters = [asyncio.create_task(cache.get_or_load(entity, 1, second, TTL)) for _ in range(20)]
    await asyncio.sleep(0.05)  # they found the lease held and wait on its load
    holder.cancel()
    assert set(await asyncio.gather(*waiters)) == {b'{"v":1}'}
    assert second.calls == 1
    with pytest.raises(asyncio.CancelledError):
        await holder
