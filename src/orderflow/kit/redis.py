"""The one Redis client factory: short timeouts, a client name, no hidden retries."""

from redis.asyncio import BlockingConnectionPool, Redis

from orderflow.kit.settings import Settings

MAX_CONNECTIONS = 256


def create_redis(url: str, settings: Settings, *, name: str) -> Redis:
    # Retries are the breaker's job (next layer up): a slow Redis must cost one timeout, not three.
    # A blocking pool: a burst of more concurrent calls than connections waits for a free one
    # (within the cache's timeout) instead of failing, which would open the breaker for nothing.
    pool = BlockingConnectionPool.from_url(
        url,
        max_connections=MAX_CONNECTIONS,
        timeout=settings.redis_timeout_s,
        socket_timeout=settings.redis_timeout_s,
        socket_connect_timeout=settings.redis_timeout_s,
        retry_on_timeout=False,
        retry=None,
        client_name=f"orderflow-{name}",
        health_check_interval=30,
    )
    return Redis.from_pool(pool)
