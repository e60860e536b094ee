"""Round trips to Redis, counted on the wire: what a hit, a miss and a cold page cost.

    a plain hit 1, a plain miss 2 (the lookup that misses takes the lease; the fill carries it
    and releases it), a view miss 2, a cold listing page 3, a write 1.

Counted by a connection class that counts what it sends: a pipeline is one send. The scripts
are loaded first, so that no NOSCRIPT retry is counted.
"""

from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
from redis.asyncio import Connection, ConnectionPool, Redis

from orderflow.cache import Cache, Entity, Listing
from tests.cache.conftest import TTL, Loader


class CountingConnection(Connection):
    sent = 0

    async def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        CountingConnection.sent += 1
        await super().send_packed_command(command, check_health)


@pytest.fixture
async def counted(redis_url: str, ns: str) -> AsyncIterator[Cache]:
    pool = ConnectionPool.from_url(redis_url, connection_class=CountingConnection)
    redis = Redis(connection_pool=pool)
    cache = Cache(redis, ns, timeout_s=1.0)
    warm = Entity("warm")  # loads every script once
    await cache.get_or_load(warm, 1, Loader(1, b"{}"), TTL)
    await cache.get_or_load_many(warm, [2], _many, TTL)
    await cache.get_or_load_listing(_listing("warm"), 1, ["f"], _page(3), _members)
    await cache.put(warm, 1, 2, b"{}", TTL)
    await cache.invalidate(warm, 1, 3)
    await cache.bump(["f"])
    await cache.get_or_load(warm, 9, Loader(None, b"{}"), TTL)  # not cached: the lease released
    yield cache
    await redis.aclose()


async def trips(call: Any) -> int:
    before = CountingConnection.sent
    await call
    return CountingConnection.sent - before


async def test_a_plain_read_costs_one_trip_on_a_hit_and_two_on_a_miss(
    counted: Cache, entity: Entity
) -> None:
    assert await trips(counted.get_or_load(entity, 7, Loader(1, b"{}"), TTL)) == 2
    assert await trips(counted.get_or_load(entity, 7, Loader(1, b"{}"), TTL)) == 1


async def test_a_loader_error_costs_two(counted: Cache, entity: Entity) -> None:
    async def gone() -> tuple[int | None, bytes]:
        raise LookupError("row 7")

    before = CountingConnection.sent
    with pytest.raises(LookupError):
        await counted.get_or_load(entity, 7, gone, TTL)
    assert CountingConnection.sent - before == 2  # the lookup, the lease given back


async def test_a_view_costs_two_cold_and_one_warm(counted: Cache, entity: Entity) -> None:
    view = Loader(0, b'{"n":1}')
    assert await trips(counted.get_or_load_view(entity, 1, ["a", "b"], view, TTL)) == 2
    assert await trips(counted.get_or_load_view(entity, 1, ["a", "b"], view, TTL)) == 1


async def test_a_cold_listing_page_costs_three(counted: Cache) -> None:
    listing = _listing("cold")
    read = counted.get_or_load_listing(listing, 1, ["f"], _page(1, 2, 3), _members)
    assert await trips(read) == 3  # the view; its fill and the members' lookup; their fills
    read = counted.get_or_load_listing(listing, 1, ["f"], _page(1, 2, 3), _members)
    assert await trips(read) == 1


async def test_a_page_whose_members_were_evicted_costs_two(counted: Cache) -> None:
    listing = _listing("evicted")
    await counted.get_or_load_listing(listing, 1, ["f"], _page(1, 2), _members)
    assert await counted.delete(listing.members, 2)
    read = counted.get_or_load_listing(listing, 1, ["f"], _page(1, 2), _members)
    assert await trips(read) == 2  # the view and member 1, member 2 leased; its fill


async def test_a_batch_costs_two_cold_and_one_warm(counted: Cache, entity: Entity) -> None:
    assert await trips(counted.get_or_load_many(entity, [1, 2, 3], _many, TTL)) == 2
    assert await trips(counted.get_or_load_many(entity, [1, 2, 3], _many, TTL)) == 1


async def test_a_write_costs_one(counted: Cache, entity: Entity) -> None:
    assert await trips(counted.put(entity, 1, 1, b"{}", TTL, seen_epoch=counted.epoch)) == 1
    assert await trips(counted.invalidate(entity, 1, 2)) == 1
    assert await trips(counted.bump(["a", "b"])) == 1


def _listing(tag: str) -> Listing:
    return Listing(Entity(f"page_{tag}", prefix="page"), TTL, Entity(f"o_{tag}", prefix="o"), TTL)


def _page(*ids: int) -> Loader:
    return Loader(0, orjson.dumps({"ids": list(ids)}))


async def _members(ids: list[int]) -> dict[int, tuple[int | None, bytes]]:
    return {id_: (1, b'{"id":%d}' % id_) for id_ in ids}


async def _many(indexes: list[int]) -> dict[int, tuple[int | None, bytes]]:
    return {i: (1, b"{}") for i in indexes}
