"""Admission on second sight: a key's first read skips Redis, its second is cached."""

import orjson
from redis.asyncio import Redis

from orderflow.cache import Cache, Entity, Listing
from orderflow.cache.admission import Doorkeeper
from tests.cache.conftest import TTL, Loader, sample


def test_a_key_is_admitted_on_its_second_sight() -> None:
    door = Doorkeeper(capacity=3)
    assert not door.admit(("order", 1))
    assert door.admit(("order", 1))
    door.saw(("order", 2))  # written by this process
    assert door.admit(("order", 2))


def test_the_doorkeeper_forgets_the_older_generation() -> None:
    door = Doorkeeper(capacity=2)
    assert not door.admit(1)
    assert not door.admit(2)  # the first generation is full: it becomes the older one
    assert door.admit(1)  # still remembered, in the older generation
    assert not door.admit(3)
    assert not door.admit(4)  # full again: generation {1, 2} is forgotten
    assert not door.admit(2)


def test_capacity_zero_admits_everything() -> None:
    door = Doorkeeper(capacity=0)
    assert all(door.admit(n) for n in (1, 1, 2))


async def test_a_first_read_skips_redis_and_the_second_is_cached(
    client: Redis, ns: str, entity: Entity
) -> None:
    cache = Cache(client, ns, timeout_s=1.0, admit_after=1000)
    loader = Loader(1, b'{"id":7}')
    for _ in range(3):
        assert await cache.get_or_load(entity, 7, loader, TTL) == b'{"id":7}'
    assert loader.calls == 2  # first sight, then the miss that filled
    results = {
        r: sample("orderflow_cache_requests_total", entity=entity.name, result=r)
        for r in ("first_sight", "miss", "hit")
    }
    assert results == {"first_sight": 1, "miss": 1, "hit": 1}
    assert sample("orderflow_cache_latency_seconds_count", entity=entity.name, op="lookup") == 2


async def test_a_put_admits_its_key(client: Redis, ns: str, entity: Entity) -> None:
    cache = Cache(client, ns, timeout_s=1.0, admit_after=1000)
    assert await cache.put(entity, 7, 1, b'{"id":7}', TTL)
    loader = Loader(1, b'{"id":7}')
    assert await cache.get_or_load(entity, 7, loader, TTL) == b'{"id":7}'
    assert loader.calls == 0


async def test_a_listing_seen_first_reads_the_database_only(client: Redis, ns: str) -> None:
    cache = Cache(client, ns, timeout_s=1.0, admit_after=1000)
    listing = Listing(Entity("page_adm", prefix="page"), TTL, Entity("o_adm", prefix="o"), TTL)
    view = Loader(0, orjson.dumps({"ids": [1, 2]}))

    async def members(ids: list[int]) -> dict[int, tuple[int | None, bytes]]:
        return {id_: (1, b"{}") for id_ in ids}

    for _ in range(3):
        found = await cache.get_or_load_listing(listing, 1, ["f"], view, members)
        assert found == ({"ids": [1, 2]}, [b"{}", b"{}"])
    assert view.calls == 2
    assert sample("orderflow_cache_requests_total", entity="o_adm", result="first_sight") == 2
    assert sample("orderflow_cache_requests_total", entity="page_adm", result="hit") == 1
