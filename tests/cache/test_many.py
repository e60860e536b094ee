"""Batch cache-aside reads (`get_or_load_many`): the bodies behind a list view."""

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence

import pytest
from redis.asyncio import Redis

from orderflow.cache import Cache, Entity, Key
from orderflow.kit.embedded import EmbeddedRedis, free_port
from tests.cache.conftest import TTL, connect, sample

Row = tuple[int | None, bytes]


class BatchLoader:
    """Loads `rows[key]` for the indexes it is given, and records them, one list per call.

    `during`, if set, runs inside the load: a writer committing while the reader is in the
    database."""

    def __init__(
        self,
        keys: Sequence[Key],
        rows: dict[Key, Row],
        during: Callable[[], Awaitable[object]] | None = None,
    ) -> None:
        self.keys, self.rows, self.during = keys, rows, during
        self.calls: list[list[int]] = []

    async def __call__(self, indexes: list[int]) -> dict[int, Row]:
        self.calls.append(indexes)
        if self.during is not None:
            await self.during()
        return {i: self.rows[self.keys[i]] for i in indexes if self.keys[i] in self.rows}


def body(key: Key, version: int = 1) -> bytes:
    return b'{"id":%b,"v":%d}' % (str(key).encode(), version)


def rows_of(keys: Sequence[Key], version: int = 1) -> dict[Key, Row]:
    return {key: (version, body(key, version)) for key in keys}


async def command_calls(client: Redis) -> dict[str, int]:
    """How often the server has run each command (its own private server: nobody else's)."""
    stats = await client.info("commandstats")
    return {name.removeprefix("cmdstat_"): int(s["calls"]) for name, s in stats.items()}


def requests(entity: Entity, result: str) -> float:
    return sample("orderflow_cache_requests_total", entity=entity.name, result=result)


@pytest.fixture
async def private_client(private_redis: EmbeddedRedis) -> AsyncIterator[Redis]:
    client = connect(private_redis.url)
    yield client
    await client.aclose()


async def test_all_hits_come_from_one_round_trip_after_a_first_load(
    private_client: Redis, ns: str, entity: Entity
) -> None:
    await private_client.set(f"{ns}:epoch", 0)
    cache = Cache(private_client, ns, timeout_s=1.0)
    keys = [3, 1, 2]
    loader = BatchLoader(keys, rows_of(keys))
    expected = [body(3), body(1), body(2)]
    assert await cache.get_or_load_many(entity, keys, loader, TTL) == expected
    assert loader.calls == [[0, 1, 2]]
    assert await private_client.get(f"{ns}:item:v1:e0:{{1}}") == b"1|" + body(1)

    before = await command_calls(private_client)
    assert await cache.get_or_load_many(entity, keys, loader, TTL) == expected
    after = await command_calls(private_client)
    calls = {name: n - before.get(name, 0) for name, n in after.items() if n != before.get(name)}
    # One EVALSHA, whose GETs (the epoch, three entries) run inside Redis; and our first INFO.
    assert calls == {"evalsha": 1, "get": 4, "info": 1}
    assert len(loader.calls) == 1
    assert (requests(entity, "miss"), requests(entity, "hit")) == (3, 3)
    assert sample("orderflow_cache_loads_total", entity=entity.name) == 1
    assert sample("orderflow_cache_fills_total", entity=entity.name, outcome="stored") == 3
    latency = "orderflow_cache_latency_seconds_count"
    assert sample(latency, entity=entity.name, op="lookup_many") == 2
    assert sample(latency, entity=entity.name, op="fill_many") == 1


async def test_partial_hits_load_only_the_misses(
    cache: Cache, client: Redis, entity: Entity
) -> None:
    await cache.put(entity, "b", 1, body("b"), TTL)
    await cache.put(entity, "d", 1, body("d"), TTL)
    keys = ["a", "b", "c", "d"]
    loader = BatchLoader(keys, rows_of(keys))
    assert await cache.get_or_load_many(entity, keys, loader, TTL) == [body(k) for k in keys]
    assert loader.calls == [[0, 2]]
    assert (requests(entity, "miss"), requests(entity, "hit")) == (2, 2)
    assert sample("orderflow_cache_loads_total", entity=entity.name) == 1

    assert await cache.get_or_load_many(entity, keys, loader, TTL) == [body(k) for k in keys]
    assert len(loader.calls) == 1  # the misses were filled


async def test_a_tombstone_is_a_miss_and_a_stale_load_overwrites_nothing(
    cache: Cache, client: Redis, ns: str, entity: Entity
) -> None:
    await cache.put(entity, 1, 1, body(1), TTL)
    assert await cache.invalidate(entity, 1, 2)  # version 2 of row 1 is committed
    await cache.put(entity, 3, 1, body(3), TTL)
    keys = [1, 2, 3]

    async def writer_commits_v5_of_row_2() -> None:
        assert await cache.put(entity, 2, 5, body(2, 5), TTL)

    # Read from a lagging replica: row 1 at version 1, row 2 at version 4.
    stale: dict[Key, Row] = {1: (1, body(1)), 2: (4, body(2, 4))}
    loader = BatchLoader(keys, stale, during=writer_commits_v5_of_row_2)
    assert await cache.get_or_load_many(entity, keys, loader, TTL) == [body(1), body(2, 4), body(3)]
    assert loader.calls == [[0, 1]]
    assert (requests(entity, "miss"), requests(entity, "hit")) == (2, 1)
    # row 1's fill is older than its tombstone; row 2's lease was revoked by the writer's put
    assert sample("orderflow_cache_fills_total", entity=entity.name, outcome="stale") == 1
    assert sample("orderflow_cache_fills_total", entity=entity.name, outcome="lease") == 1
    assert await client.get(f"{ns}:item:v1:e0:{{1}}") == b"2|"
    assert await client.get(f"{ns}:item:v1:e0:{{2}}") == b"5|" + body(2, 5)

    fresh = BatchLoader(keys, {1: (2, body(1, 2))})
    assert await cache.get_or_load_many(entity, keys, fresh, TTL) == [
        body(1, 2),
        body(2, 5),
        body(3),
    ]
    assert fresh.calls == [[0]]  # the tombstone announced version 2: that one may be filled
    assert await client.get(f"{ns}:item:v1:e0:{{1}}") == b"2|" + body(1, 2)


async def test_an_epoch_move_makes_all_misses_and_fills_nothing(
    cache: Cache, client: Redis, ns: str, entity: Entity
) -> None:
    keys = [1, 2]
    loader = BatchLoader(keys, rows_of(keys))
    await cache.get_or_load_many(entity, keys, loader, TTL)
    await client.incr(f"{ns}:epoch")  # another process recovered from an outage
    assert await cache.get_or_load_many(entity, keys, loader, TTL) == [body(1), body(2)]
    assert loader.calls == [[0, 1], [0, 1]]
    assert cache.epoch == 1
    assert not await client.exists(f"{ns}:item:v1:e1:{{1}}", f"{ns}:item:v1:e1:{{2}}")
    assert await cache.get_or_load_many(entity, keys, loader, TTL) == [body(1), body(2)]
    assert await client.exists(f"{ns}:item:v1:e1:{{1}}", f"{ns}:item:v1:e1:{{2}}") == 2


async def test_fills_survive_redis_forgetting_its_scripts(
    cache: Cache, client: Redis, ns: str, entity: Entity
) -> None:
    keys = [1, 2]

    async def flush() -> None:  # between the lookup and the pipelined fills
        await client.script_flush()

    loader = BatchLoader(keys, rows_of(keys), during=flush)
    await cache.get_or_load_many(entity, keys, loader, TTL)
    assert await client.get(f"{ns}:item:v1:e0:{{2}}") == b"1|" + body(2)


async def test_breaker_open_sends_every_index_to_the_loader(cache: Cache, entity: Entity) -> None:
    keys = [1, 2, 3]
    await cache.put(entity, 2, 1, body(2), TTL)
    cache.breaker.trip()
    loader = BatchLoader(keys, rows_of(keys))
    assert await cache.get_or_load_many(entity, keys, loader, TTL) == [body(k) for k in keys]
    assert loader.calls == [[0, 1, 2]]
    assert requests(entity, "bypass") == 3
    errors = "orderflow_cache_errors_total"
    assert sample(errors, entity=entity.name, op="lookup_many", kind="unavailable") == 1


async def test_a_breaker_opening_during_the_load_skips_the_fills(
    cache: Cache, client: Redis, ns: str, entity: Entity
) -> None:
    keys = [1, 2]

    async def trip() -> None:
        cache.breaker.trip()

    loader = BatchLoader(keys, rows_of(keys), during=trip)
    assert await cache.get_or_load_many(entity, keys, loader, TTL) == [body(1), body(2)]
    assert not await client.exists(f"{ns}:item:v1:e0:{{1}}")
    errors = "orderflow_cache_errors_total"
    assert sample(errors, entity=entity.name, op="fill_many", kind="unavailable") == 1


async def test_unreachable_redis_sends_every_index_to_the_loader(ns: str, entity: Entity) -> None:
    nowhere = connect(f"redis://127.0.0.1:{free_port()}/0")  # nothing listens there
    try:
        cache = Cache(nowhere, ns, timeout_s=1.0)
        keys = [1, 2]
        loader = BatchLoader(keys, rows_of(keys))
        assert await cache.get_or_load_many(entity, keys, loader, TTL) == [body(1), body(2)]
        assert loader.calls == [[0, 1]]
        assert requests(entity, "bypass") == 2
        errors = "orderflow_cache_errors_total"
        assert sample(errors, entity=entity.name, op="lookup_many", kind="connection") == 1
    finally:
        await nowhere.aclose()


async def test_disabled_sends_every_index_to_the_loader(ns: str, entity: Entity) -> None:
    nowhere = connect(f"redis://127.0.0.1:{free_port()}/0")
    try:
        cache = Cache(nowhere, ns, enabled=False)
        keys = [1, 2, 3]
        loader = BatchLoader(keys, rows_of(keys))
        assert await cache.get_or_load_many(entity, keys, loader, TTL) == [body(k) for k in keys]
        assert loader.calls == [[0, 1, 2]]
        assert requests(entity, "bypass") == 3
        assert sample("orderflow_cache_loads_total", entity=entity.name) == 1
        assert cache.breaker.state == "closed"
    finally:
        await nowhere.aclose()


async def test_no_keys_no_calls(cache: Cache, entity: Entity) -> None:
    loader = BatchLoader([], {})
    assert await cache.get_or_load_many(entity, [], loader, TTL) == []
    assert loader.calls == []


async def test_a_loader_must_return_every_index(cache: Cache, entity: Entity) -> None:
    keys = [1, 2]
    loader = BatchLoader(keys, {1: (1, body(1))})  # row 2 is gone
    with pytest.raises(KeyError, match=r"indexes \[1\]"):
        await cache.get_or_load_many(entity, keys, loader, TTL)
