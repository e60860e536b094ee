"""One typed Settings object, read from ORDERFLOW_* environment variables."""

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

ServiceName = Literal["shop", "crm", "mes"]
CacheMode = Literal["on", "off"]
OrdersMode = Literal["write-through", "cache-aside"]


class Settings(BaseSettings):
    """Everything configurable. Defaults run the platform on one machine.

    When a DSN or the Redis URL is left empty, `orderflow up` starts embedded servers under
    `data_dir` and passes their URLs to the processes it starts.

    Cache upkeep is journalled in each write's transaction and repaired by every API process:
    a write whose upkeep did not fully apply (its process died, or Redis failed it) is seen
    right by every process within `upkeep_repair_after_s` + `upkeep_repair_every_s` + one
    apply, about 2 s with the defaults (docs/caching.md, rule 9).
    """

    model_config = SettingsConfigDict(env_prefix="ORDERFLOW_", extra="ignore")

    shop_dsn: str = Field("", description="ShopDB, e.g. postgresql://user@127.0.0.1:5432/shopdb")
    mes_dsn: str = Field("", description="MES db, e.g. postgresql://user@127.0.0.1:5432/mesdb")
    redis_url: str = Field(
        "",
        description="Redis, e.g. redis://127.0.0.1:6379/0; with redis_cluster, one or more "
        "nodes of the cluster, joined by commas (the client finds the others from any that "
        "answers: name several, so that a process starting while one is down finds it)",
    )
    redis_cluster: bool = Field(
        False,
        description="Redis is a Redis Cluster (ORDERFLOW_REDIS_CLUSTER=true): the clients are "
        "redis-py's RedisCluster; with no redis_url, `orderflow up` starts an embedded cluster "
        "of 3 masters and 3 replicas on embedded_redis_cluster_port and the 5 ports after it",
    )
    data_dir: Path = Path(".orderflow")

    host: str = Field(
        "127.0.0.1",
        description="the address the APIs listen on; anything but loopback exposes every write "
        "and the cache switch to the network (there is no authentication)",
    )
    allowed_hosts: str = Field(
        "",
        description="host names (comma-separated) a request's Host may carry besides loopback "
        "(127.0.0.1, localhost, ::1) and `host`; others get 400 (DNS rebinding). `*`: any",
    )
    shop_port: int = 8001
    crm_port: int = 8002
    mes_port: int = 8003
    workers: int = Field(
        1, ge=1, description="uvicorn processes of each API on its one port (`up --workers N`)"
    )
    embedded_pg_port: int = 55432
    embedded_redis_port: int = 56379
    embedded_redis_cluster_port: int = Field(
        17000,
        description="the embedded cluster's first node; its 6 nodes use this port and the 5 "
        "after it, and their cluster bus ports 10000 higher (Redis 6.2 has no cluster-port), "
        "so it must be at most 55530",
        le=55_530,
    )

    db_pool_size: int = 10
    db_connect_timeout_s: float = 2.0
    db_statement_timeout_s: float = 5.0
    redis_timeout_s: float = 0.25
    max_body_bytes: int = 64 * 1024
    limit_concurrency: int = Field(
        1000, ge=1, description="connections and requests at once per process; beyond: 503"
    )
    max_header_bytes: int = Field(
        16 * 1024, ge=1024, description="a request's line and headers; beyond: 431, closed"
    )
    header_timeout_s: float = Field(
        10.0, gt=0, description="a connection must finish a request's headers within this"
    )

    cache_shop: CacheMode = "on"
    cache_crm: CacheMode = "on"
    cache_mes: CacheMode = "on"
    cache_orders: OrdersMode = "write-through"
    cache_breaker_failures: int = 3
    cache_breaker_reset_s: float = 1.0
    quiet_window_start: str = "03:00"
    quiet_window_end: str = "05:00"
    quiet_window_tz: str = Field("", description="IANA zone of the quiet window; empty: local")
    warm_popular_items: int = 500
    near_cache_ttl_s: float = Field(5.0, description="0 turns the in-process near cache off")
    near_cache_size: int = 10_000
    # A key's first read in a while skips Redis (cache/admission.py); 0 admits every read.
    cache_admit_after: int = 100_000
    upkeep_repair_after_s: float = Field(
        1.0,
        description="journal rows of cache upkeep older than this are repaired by a worker: a "
        "writer that died after its commit, or whose cache calls failed, leaves the cache old "
        "for at most about repair_after + repair_every + one apply (about 2 s by default)",
    )
    upkeep_repair_every_s: float = Field(0.5, description="the repair worker's tick")
    upkeep_flush_every_s: float = Field(0.2, description="deletes of applied journal rows")
    crash_after_commit: float = Field(
        0.0,
        description="TESTS ONLY: the probability that a unit of work kills its process "
        "(os._exit(137)) right after a commit with cache upkeep, before that upkeep runs",
    )

    session_secret: str = Field(
        "",
        description="signs the Shop's session cookie (which client a browser is); empty: a "
        "random key made once and kept in data_dir/shop-session.key, shared by every worker",
    )

    sse_heartbeat_s: float = 15.0
    sse_max_subscribers: int = Field(
        500, ge=1, description="live feeds (/events, /board/events) per process; beyond: 503"
    )
    sse_replay_max: int = Field(
        1000, ge=1, description="events a reconnecting feed may replay; further behind: resync"
    )
    event_stream_maxlen: int = 100_000

    relay_metrics_port: int = Field(8004, description="the relay's /metrics; 0: none")
    relay_batch_size: int = 100
    relay_idle_sleep_s: float = Field(
        0.05, description="the relay's poll while an outbox's NOTIFY is not listened to"
    )

    seed_items: int = 5_000
    seed_categories: int = 20
    seed_clients: int = 50_000
    seed_orders: int = 200_000
    seed_operators: int = 20

    def trusted_hosts(self) -> list[str]:
        """The names a request's Host may carry (without port): loopback, `host`, the extra."""
        extra = [name.strip() for name in self.allowed_hosts.split(",") if name.strip()]
        if "*" in extra:
            return ["*"]
        listening = [] if self.host in ("0.0.0.0", "::", "") else [self.host]
        names = ["127.0.0.1", "localhost", "::1", *listening, *extra]
        # An IPv6 literal arrives in Host in brackets ([::1]:8001), and is matched so.
        return list(dict.fromkeys(f"[{n.strip('[]')}]" if ":" in n else n for n in names))

    def port_of(self, service: ServiceName) -> int:
        return {"shop": self.shop_port, "crm": self.crm_port, "mes": self.mes_port}[service]


@lru_cache
def get_settings() -> Settings:
    return Settings()
