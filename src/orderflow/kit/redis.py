"""The one Redis client factory: short timeouts, a client name, no hidden retries.

A single node gets a `redis.asyncio.Redis`; a Redis Cluster (`settings.redis_cluster`) gets a
`redis.asyncio.cluster.RedisCluster`, found from any node the URL names (one or several). Both
fail fast: a dead or slow server (a dead master, on a cluster) costs one timeout, and the
breaker (next layer up) decides when to try again. A cluster client still follows MOVED and
ASK redirects (they are answers, not failures), and it reloads the slot table on the call
after a connection error, so a promoted replica is found on the next call.
"""

from typing import Any, TypeAlias, TypeGuard
from urllib.parse import urlsplit

from redis.asyncio import Redis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisClusterException, RedisError

from orderflow.kit.settings import Settings

RedisClient: TypeAlias = Redis | RedisCluster

# What a failing Redis raises: redis-py's errors, the socket layer's, asyncio's timeout and, from
# a cluster client, `RedisClusterException`, which is no `RedisError`: redis-py raises it when it
# cannot load the slot table from any node it knows (each timed out or refused) or finds a slot
# uncovered. Code that survives Redis failures catches all of these.
REDIS_FAILURES: tuple[type[Exception], ...] = (
    RedisError,
    RedisClusterException,
    OSError,
    TimeoutError,
)

# Beyond this many calls in flight at once a call fails fast as `CacheBusy` and falls back to
# the loader, without counting against the breaker. (A blocking pool would queue it instead,
# but costs every call 15-20% of Redis throughput: measured with redis-py 8 on this machine.)
# On a cluster the limit is per node.
MAX_CONNECTIONS = 512


def create_redis(url: str, settings: Settings, *, name: str) -> RedisClient:
    # Retries are the breaker's job (next layer up): a slow Redis must cost one timeout, not three.
    common: dict[str, Any] = {
        "socket_timeout": settings.redis_timeout_s,
        "socket_connect_timeout": settings.redis_timeout_s,
        "client_name": f"orderflow-{name}",
        "health_check_interval": 30,
        "max_connections": MAX_CONNECTIONS,
    }
    if settings.redis_cluster:
        return create_cluster(url, **common)
    return Redis.from_url(url, retry_on_timeout=False, retry=None, **common)


def cluster_client(url: str, **kwargs: Any) -> RedisCluster:
    """redis-py's cluster client, found from any of the nodes `url` names: one URL, or several
    joined by commas (`redis://10.0.0.1:7000/0,redis://10.0.0.2:7000/0`; the first one's options
    apply to all). With one node named, a process started while that node is down (a master
    failing over) cannot find the cluster at all until it is back."""
    first, *more = [part.strip() for part in url.split(",") if part.strip()]
    seeds = [urlsplit(u) for u in more]
    nodes = [ClusterNode(s.hostname or "127.0.0.1", s.port or 6379) for s in seeds]
    return RedisCluster.from_url(first, startup_nodes=nodes or None, **kwargs)


def create_cluster(url: str, **kwargs: Any) -> RedisCluster:
    """A cluster client that tries each call once (`url`: see `cluster_client`).

    redis-py's default retries a connection error, timeout or CLUSTERDOWN 10 times (each
    after reloading the slot table, without a pause), so a dead master would cost several
    timeouts per call. `Retry(NoBackoff(), 0)` makes that one attempt; MOVED, ASK and
    TRYAGAIN are followed all the same (up to `RedisClusterRequestTTL` hops in one attempt).
    A CLUSTERDOWN or an uncovered slot still costs 0.25 s (redis-py sleeps before raising).
    """
    return cluster_client(
        url,
        retry=Retry(NoBackoff(), 0),
        # A dead master leaves its slots uncovered until its replica takes over: serve
        # the other slots meanwhile (the nodes run with cluster-require-full-coverage no).
        require_full_coverage=False,
        **kwargs,
    )


def is_cluster(client: RedisClient) -> TypeGuard[RedisCluster]:
    return isinstance(client, RedisCluster)
