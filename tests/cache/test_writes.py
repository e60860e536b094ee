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
    # The write revoked the reader's lease: its fill is refused before versions are compared.
    assert sample("orderflow_cache_fills_total", entity=entity.name, outcome="lease") == 1

    new = Loader(2, b'{"v":2}')
    assert await cache.get_or_load(entity, 7, new, TTL) == b'{"v":2}'
    assert new.calls == (1 if write == "invalidate" else 0)


async def test_put_is_compare_and_set_on_the_version(
    cache: Cache, entity: Entity, client: Redis, ns: str
) -> None:
    key = f"{ns}:item:v1:e0:{{7}}"
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
    key = f"{ns}:item:v1:e0:{{7}}"
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
    assert await client.get(f"{ns}:item:v1:e0:{{7}}") == b'6|{"v":6}'


async def test_delete(cache: Cache, entity: Entity, client: Redis, ns: str) -> None:
    await cache.put(entity, 7, 1, b'{"v":1}', TTL)
    assert await cache.delete(entity, 7)
    assert not await client.exists(f"{ns}:item:v1:e0:{{7}}")
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
    assert await client.get(f"{ns}:item:v1:e1:{{7}}") == b"2|"


async def test_a_read_in_a_moved_epoch_loads_without_filling_the_old_key(
    cache: Cache, entity: Entity, client: Redis, ns: str
) -> None:
    await cache.put(entity, 7, 1, b'{"v":1}', TTL)
    await client.incr(f"{ns}:epoch")
    loader = Loader(2, b'{"v":2}')
    assert await cache.get_or_load(entity, 7, loader, TTL) == b'{"v":2}'  # not the e0 value
    assert cache.epoch == 1
    assert await client.get(f"{ns}:item:v1:e0:{{7}}") == b'1|{"v":1}'
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
    await client.set(f"{ns}:item:v1:e1:{{7}}", b'1|{"v":"old"}', px=60_000)  # left from epoch 1
    await client.delete(f"{ns}:epoch")
    cache.breaker.trip(probe_now=True)  # an outage ends: the probe starts a new epoch
    new = Loader(2, b'{"v":"new"}')
    assert await cache.get_or_load(entity, 7, new, TTL) == b'{"v":"new"}'
    assert cache.epoch > 3


@pytest.mark.parametrize("gone", ["expired", "evicted"])
async def test_a_stale_fill_stays_out_once_the_tombstone_is_gone(
    cache: Cache, entity: Entity, client: Redis, ns: str, gone: str
) -> None:
    """Finding 4: a fill used to be refused only by a tombstone or entry still there. A
    tombstone expires after 60 s and is the first thing a volatile-* eviction drops; then the
    stale fill of a reader that loaded before the write landed. Now the write revokes its lease."""
    key = f"{ns}:item:v1:e0:{{7}}"
    old = Loader(1, b'{"v":1}', gated=True)
    reader = asyncio.create_task(cache.get_or_load(entity, 7, old, TTL))
    await old.entered.wait()  # loaded version 1 under its lease...
    assert await cache.invalidate(entity, 7, 2)  # ...version 2 committed, tombstoned...
    if gone == "expired":
        await client.pexpire(key, 1)
        await asyncio.sleep(0.01)
    else:
        await client.delete(key)
    assert not await client.exists(key)  # ...and the tombstone is gone before the fill
    old.gate.set()
    assert await reader == b'{"v":1}'
    assert await client.get(key) is None  # the stale value did not land
    new = Loader(2, b'{"v":2}')
    assert await cache.get_or_load(entity, 7, new, TTL) == b'{"v":2}'
    assert await client.get(key) == b'2|{"v":2}'


async def test_a_put_pinned_to_an_epoch_that_ended_writes_a_tombstone(
    cache: Cache, entity: Entity, client: Redis, ns: str
) -> None:
    """Finding 3: a write-through put racing an epoch bump used to carry its version into the
    new epoch, which has no history to refuse it. Writer A commits v3, writer B commits v4 and
    puts it; the epoch moves (an outage ended); A's delayed put must not land v3 there."""
    seen = cache.epoch  # what writer A saw before its commit
    assert await cache.put(entity, 7, 4, b'{"v":4}', TTL)  # writer B
    await client.incr(f"{ns}:epoch")  # an outage ends: a new, empty epoch
    assert await cache.put(entity, 7, 3, b'{"v":3}', TTL, seen_epoch=seen)
    new_key = f"{ns}:item:v1:e{seen + 1}:{{7}}"
    assert await client.get(new_key) == b"3|"  # a tombstone: "v3 was committed", no value
    assert sample("orderflow_cache_fills_total", entity=entity.name, outcome="epoch") == 1
    fresh = Loader(4, b'{"v":4}')
    assert await cache.get_or_load(entity, 7, fresh, TTL) == b'{"v":4}'
    assert fresh.calls == 1


async def test_a_put_in_the_epoch_it_saw_writes_its_value(
    cache: Cache, entity: Entity, client: Redis, ns: str
) -> None:
    assert await cache.put(entity, 7, 3, b'{"v":3}', TTL, seen_epoch=cache.epoch)
    assert await client.get(f"{ns}:item:v1:e0:{{7}}") == b'3|{"v":3}'


async def test_a_recheck_undoes_an_older_put_landed_after_an_eviction(
    cache: Cache, client: Redis, entity: Entity
) -> None:
    """Writer B put version 6, Redis evicted it, then writer A's late put of version 5 found
    nothing to compare with and landed. B's recheck, a moment later, tombstones version 6."""
    assert await cache.put(entity, "k", 6, b'{"v":6}', TTL)
    await client.delete(cache.key_of(entity, "k"))  # evicted
    assert await cache.put(entity, "k", 5, b'{"v":5}', TTL)  # A's put, late
    assert await cache.recheck([(entity, "k", 6), (entity, "other", 1)]) == [True, True]
    v6 = Loader(6, b'{"v":6}')
    assert await cache.get_or_load(entity, "k", v6, TTL) == b'{"v":6}'
    assert v6.calls == 1
    assert await cache.recheck([(entity, "k", 6)]) == [True]  # holds 6 now: nothing written
    assert await cache.get_or_load(entity, "k", v6, TTL) == b'{"v":6}'
    assert v6.calls == 1
    assert await client.get(cache.key_of(entity, "other")) is None  # nothing stale: left alone


async def test_a_recheck_refuses_no_reader_s_fill(cache: Cache, entity: Entity) -> None:
    """A reader that missed and holds the lease, loading, while the writer's recheck of a
    missing entry runs: its fill still lands (the recheck neither tombstones a missing entry nor
    revokes a lease), so the next read is a hit."""
    v1 = Loader(1, b'{"v":1}', gated=True)
    reading = asyncio.create_task(cache.get_or_load(entity, "new", v1, TTL))
    await v1.entered.wait()
    assert await cache.recheck([(entity, "new", 1)]) == [True]
    v1.gate.set()
    assert await reading == b'{"v":1}'
    assert await cache.get_or_load(entity, "new", v1, TTL) == b'{"v":1}'
    assert v1.calls == 1
