"""The MES event stream shares the cache's breaker: no append waits on a Redis known to fail."""

from redis.asyncio import Redis

from orderflow.cache import CircuitBreaker
from orderflow.production.events.stream import STREAM_KEY, EventStream

ORDER = {"id": 7, "operator_id": 3, "version": 2, "status": "in_progress"}


async def test_no_append_while_the_breaker_is_open(redis: Redis) -> None:
    breaker = CircuitBreaker(failure_threshold=3, reset_after_s=60)
    stream = EventStream(redis, breaker=breaker)
    assert await stream.publish("claimed", ORDER) is not None  # closed: appended
    before = await redis.xlen(STREAM_KEY)
    breaker.trip()
    assert await stream.publish("claimed", ORDER) is None
    assert await redis.xlen(STREAM_KEY) == before  # nothing was sent to Redis
    assert breaker.state == "open"  # and the append never took the probe


async def test_failed_appends_count_toward_the_breaker(redis_url: str) -> None:
    dead = Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.2)  # nobody there
    breaker = CircuitBreaker(failure_threshold=2, reset_after_s=60)
    stream = EventStream(dead, breaker=breaker)
    try:
        assert await stream.publish("claimed", ORDER) is None
        assert breaker.state == "closed"
        assert await stream.publish("claimed", ORDER) is None
        assert breaker.state == "open"
    finally:
        await dead.aclose()


async def test_a_stream_with_its_own_breaker_probes_and_heals(redis: Redis) -> None:
    """On a Redis Cluster nobody else drives the stream's breaker: its append takes the
    half-open probe, and a probe that succeeds closes it (shared, it stayed open for ever)."""
    now = [0.0]
    breaker = CircuitBreaker(failure_threshold=1, reset_after_s=1.0, clock=lambda: now[0])
    stream = EventStream(redis, breaker=breaker, probes=True)
    breaker.trip()
    assert await stream.publish("claimed", ORDER) is None  # open, cooling down
    now[0] += 1.5
    assert await stream.publish("claimed", ORDER) is not None  # the probe, appended
    assert breaker.state == "closed"


async def test_an_event_announced_again_is_appended_once(redis: Redis) -> None:
    """A repair of cache upkeep may announce an event the writer already appended."""
    order = {**ORDER, "id": 900_001, "version": 5}
    before = await redis.xlen(STREAM_KEY)
    first = await EventStream(redis).publish("completed", order)
    again = await EventStream(redis).publish("completed", order)
    assert first is not None and again == first
    assert await redis.xlen(STREAM_KEY) == before + 1
    newer = await EventStream(redis).publish("released", {**order, "version": 6})
    assert newer not in (None, first)
