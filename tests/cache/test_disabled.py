"""`enabled = False`: the system as it was before the cache; Redis is never touched."""

from redis.asyncio import Redis

from orderflow.cache import Cache, Entity
from orderflow.kit.embedded import free_port
from tests.cache.conftest import TTL, Loader, connect, sample


async def test_disabled_cache_never_calls_redis(ns: str, entity: Entity) -> None:
    nowhere = connect(f"redis://127.0.0.1:{free_port()}/0")  # nothing listens there
    try:
        cache = Cache(nowhere, ns, enabled=False)
        loader = Loader(1, b'{"v":1}')
        for _ in range(5):
            assert await cache.get_or_load(entity, 7, loader, TTL) == b'{"v":1}'
        assert await cache.get_or_load_view(entity, 7, ["f"], loader, TTL) == b'{"v":1}'
        assert loader.calls == 6
        assert not await cache.put(entity, 7, 2, b"{}", TTL)
        assert not await cache.invalidate(entity, 7, 2)
        assert not await cache.delete(entity, 7)
        assert not await cache.bump(["f"])
        assert await cache.health() == "disabled"
        assert cache.breaker.state == "closed"
        assert sample("orderflow_cache_requests_total", entity=entity.name, result="bypass") == 6
        for kind in ("connection", "timeout", "unavailable", "protocol"):
            for op in ("lookup", "lookup_view", "put", "invalidate", "delete"):
                labels = {"entity": entity.name, "op": op, "kind": kind}
                assert sample("orderflow_cache_errors_total", **labels) == 0
    finally:
        await nowhere.aclose()


async def test_re_enabling_starts_a_new_epoch(
    cache: Cache, client: Redis, entity: Entity, ns: str
) -> None:
    await cache.put(entity, 7, 1, b'{"v":1}', TTL)
    cache.enabled = False
    assert not await cache.invalidate(entity, 7, 2)  # a write while off: the cache misses it
    cache.enabled = True
    loader = Loader(2, b'{"v":2}')
    assert await cache.get_or_load(entity, 7, loader, TTL) == b'{"v":2}'
    assert cache.epoch == 1
    assert await client.get(f"{ns}:item:v1:e0:{{7}}") == b'1|{"v":1}'  # unreachable now
