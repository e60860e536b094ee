"""`service_cache.timeline` against a real PostgreSQL and Redis: the first timeline seen is
recorded; the same one again forgets nothing; another one (a failover promoted a standby, or a
stale primary answered) makes every entry of the namespace unreachable, once. A real promotion
is `make multihost`'s (tests/multihost), where entries filled from a primary that was then lost
stayed served until this watch existed."""

import uuid

from redis.asyncio import Redis

from orderflow.cache import Cache, Entity, FixedTTL
from orderflow.kit.deps import Sessions
from orderflow.service_cache.timeline import TimelineWatch, timeline

TTL = FixedTTL(60)


async def test_a_new_timeline_forgets_the_namespace_once(
    shop_sessions: Sessions, redis: Redis
) -> None:
    namespace = f"t{uuid.uuid4().hex[:12]}"
    cache = Cache(redis, namespace, timeout_s=1.0)
    await cache.start()
    entity = Entity("item", prefix="item")
    loads = 0

    async def load() -> tuple[int, bytes]:
        nonlocal loads
        loads += 1
        return 1, b'{"v":1}'

    watch = TimelineWatch(shop_sessions, cache)
    assert await timeline(shop_sessions) == 1  # this server was never promoted
    assert not await watch.tick()  # the first timeline seen: recorded
    await cache.get_or_load(entity, "a", load, TTL)
    assert not await watch.tick()  # the same timeline: nothing forgotten
    assert await cache.get_or_load(entity, "a", load, TTL) == b'{"v":1}'
    assert loads == 1  # a hit

    await redis.set(f"{namespace}:epoch:source", "timeline 7")  # seen before the promotion
    assert await watch.tick()
    await cache.get_or_load(entity, "a", load, TTL)
    assert loads == 2  # forgotten: a miss, read again from PostgreSQL
    assert not await watch.tick()  # once
    assert await redis.get(f"{namespace}:epoch:source") == b"timeline 1"
