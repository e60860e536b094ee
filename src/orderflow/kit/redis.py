"""The one Redis client factory: short timeouts, a client name, no hidden retries."""

from redis.asyncio import Redis

from orderflow.kit.settings import Settings


def create_redis(url: str, settings: Settings, *, name: str) -> Redis:
    # Retries are the breaker's job (next layer up): a slow Redis must cost one timeout, not three.
    return Redis.from_url(
        url,
        socket_timeout=settings.redis_timeout_s,
        socket_connect_timeout=settings.redis_timeout_s,
        retry_on_timeout=False,
        retry=None,
        client_name=f"orderflow-{name}",
        health_check_interval=30,
        max_connections=256,
    )
