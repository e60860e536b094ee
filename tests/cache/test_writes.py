"""Write-through, invalidation and the no-stale-overwrite rule, against a real Redis."""

import asyncio

import pytest
from redis.asyncio import Redis

from orderflow.cache import Cache, Entity
from tests.cache.conftest import TTL, Loader, sample


@pytest.mark.parametrize("write", ["invalidate", "put"])
async def test_a_fill_that_read_before_a_commit_cannot_overwrite_it(
    cache: Cache, entity: Entity, write: str
) -> None:
    old = Loader(1, b'{"v":1}', gated=True)
    reader = asyncio.create_task(cache.get_or_load(entity, 7, old, TTL))
    await old.entered.wait()  # the reader has loaded version 1 from the database...

    # ...and a writer commits version 2 before the reader's fill reaches Redis.
    if write == "put":
        assert await cache.put(entity, 7, 2, b'{"v":2}', TTL)
    else:
        assert await cache.invalidate(entity, 7, 2)
    old.gate.set()
    assert await reader == b'{"v":1}'  # what it read, but not cached
    assert sample("orderflow_cache_fills_total", entity=entity.name, outcome="stale") == 1

    new = Loader(2, b'{"v":2}')
    assert await cache.get_or_load(entity, 7, new, TTL) == b'{"v":2}'
    assert new.calls == (1 if write == "invalidate" else 0)


async def test_put_is_compare_and_set_on_the_version(
    cache: Cache, entity: Entity, client: Redis, ns: str
) -> None:
    key = f"{ns}:item:v1:e0:7"
    assert await cache.put(entity, 7, 2, b'{"v":2}', TTL)
    assert await cache.put(entity, 7, 1, b'{"v":1}', TTL)  # the cache holds a newer one: fine
    assert await client.get(key) == b'2|{"v":2}'
    assert await cache.put(entity, 7, 3, b'{"v":3}', TTL)
    assert await client.get(key) == b'3|{"v":3}'
    loader = Loader(1, b'{"v":1}')
    assert await cache.get_or_load(entity, 7, loader, TTL) == b'{"v":3}'
    assert loader.calls == 0


async def test_invalidate_leaves_a_tombstone_that_only_fresh_fills_replace(
    cache: Cache, entity: Entity, client: Redis, ns: str
) -> None:
    key = f"{ns}:item:v1:e0:7"
    assert await cache.put(entity, 7, 4, b'{"v":4}', TTL)
    assert await cache.invalidate(entity, 7, 5)
    assert await client.get(key) == b"5|"
    assert 0 < await client.pttl(key) <= 60_000

    stale = Loader(4, b'{"v":4}')  # e.g. read from a lagging replica
    assert await cache.get_or_load(entity, 7, stale, TTL) == b'{"v":4}'
    assert await client.get(key) == b"5|"
    fresh = Loader(5, b'{"v":5}')
    assert await cache.get_or_load(entity, 7, fresh, TTL) == b'{"v":5}'
    assert await cache.get_or_load(entity, 7, fresh, TTL) == b'{"v":5}'
    assert fresh.calls == 1
    assert sample("orderflow_cache_invalidations_total", entity=entity.name) == 1


async def test_invalidate_never_replaces_a_newer_value(
    cache: Cache, entity: Entity, client: Redis, ns: str
) -> None:
    assert await cache.put(entity, 7, 6, b'{"v":6}', TTL)
    assert await cache.invalidate(entity, 7, 5)
    assert await client.get(f"{ns}:item:v1:e0:7") == b'6|{"v":6}'


async def test_delete(cache: Cache, entity: Entity, client: Redis, ns: str) -> None:
    await cache.put(entity, 7, 1, b'{"v":1}', TTL)
    assert await cache.delete(entity, 7)
    assert not await client.exists(f"{ns}:item:v1:e0:7")
    loader = Loader(1, b'{"v":1}')
    await cache.get_or_load(entity, 7, loader, TTL)
    assert loader.calls == 1


async def test_client_keys_carry_the_client_hash_tag(cache: Cache, client: Redis, ns: str) -> None:
    order = Entity("order_t", prefix="order", client_tagged=True)
    await cache.put(order, (42, 1001), 1, b'{"id":1001}', TTL)
    assert await client.get(f"{ns}:order:v1:e0:{{c:42}}:1001") == b'1|{"id":1001}'


async def test_writes_follow_an_epoch_moved_by_another_process(
    cache: Cache, entity: Entity, client: Redis, ns: str
) -> None:
    await cache.put(entity, 7, 1, b'{"v":1}', TTL)
    await client.incr(f"{ns}:epoch")  # another process healed and bumped
    assert await cache.invalidate(entity, 7, 2)
    assert cache.epoch == 1
    assert await client.get(f"{ns}:item:v1:e1:7") == b"2|"


async def test_a_read_in_a_moved_epoch_loads_without_filling_the_old_key(
    cache: Cache, entity: Entity, client: Redis, ns: str
) -> None:
    await cache.put(entity, 7, 1, b'{"v":1}', TTL)
    await client.incr(f"{ns}:epoch")
    loader = Loader(2, b'{"v":2}')
    assert await cache.get_or_load(entity, 7, loader, TTL) == b'{"v":2}'  # not the e0 value
    assert cache.epoch == 1
    assert await client.get(f"{ns}:item:v1:e0:7") == b'1|{"v":1}'
    await cache.get_or_load(entity, 7, loader, TTL)  # now in e1: a miss that fills
    await cache.get_or_load(entity, 7, loader, TTL)  # and a hit
    assert loader.calls == 2


async def test_a_fill_never_crosses_into_a_new_epoch(
    cache: Cache, entity: Entity, client: Redis, ns: str
) -> None:
    old = Loader(1, b'{"v":1}', gated=True)
    reader = asyncio.create_task(cache.get_or_load(entity, 7, old, TTL))
    await old.entered.wait()  # looked up in epoch 0, now loading...
    await client.incr(f"{ns}:epoch")  # ...while a healed process starts epoch 1
    old.gate.set()
    assert await reader == b'{"v":1}'
    assert sample("orderflow_cache_fills_total", entity=entity.name, outcome="epoch") == 1
    assert cache.epoch == 1
    assert await client.keys(f"{ns}:item:*") == []


async def test_a_lost_epoch_never_comes_back_to_an_old_number(
    cache: Cache, entity: Entity, client: Redis, ns: str
) -> None:
    """An eviction or an empty restart loses the epoch key: the next epoch must be one never
    used before, or an entry left from that earlier epoch would be served again."""
    await client.set(f"{ns}:epoch", 3)  # the namespace lived through epochs 0 to 3
    await client.set(f"{ns}:item:v1:e1:7", b'1|{"v":"old"}', px=60_000)  # left from epoch 1
    await client.delete(f"{ns}:epoch")
    cache.breaker.trip(probe_now=True)  # an outage ends: the probe starts a new epoch
    new = Loader(2, b'{"v":"new"}')
    assert await cache.get_or_load(entity, 7, new, TTL) == b'{"v":"new"}'
    assert cache.epoch > 3
