"""Prometheus metrics of the cache layer (rule 7), in the default registry, one set per process.

    orderflow_cache_requests_total{entity,result}      hit | miss | bypass (cache off or failing)
                                                       | near_hit (never left the process)
                                                       | first_sight (a key's first read in a
                                                       while: not admitted, see admission.py)
    orderflow_cache_loads_total{entity}                loader calls, i.e. database loads
    orderflow_cache_fills_total{entity,outcome}        stored | stale | epoch | lease (fills, puts)
    orderflow_cache_invalidations_total{entity}        tombstones, deletes and generation bumps
    orderflow_cache_errors_total{entity,op,kind}       unavailable | busy | timeout | connection
                                                       | protocol | failover (a cluster's shard
                                                       is served by another node now)
    orderflow_cache_latency_seconds{entity,op}         one Redis round trip
    orderflow_cache_breaker_state{namespace}           0 closed, 1 half-open, 2 open

`requests_total` counts reads that returned a value (a loader error is the caller's to count).
A batch read counts a request per entry and a load per loader call; its two round trips are the
ops `lookup_many` and `fill_many`.
Generation bumps and health pings are labelled entity="generations" and entity="health".
`kind` on errors tells an open breaker from a slow or unreachable Redis. On a cluster each shard
has a breaker; the gauge shows the worst of them.
Label children are resolved once per entity (`for_entity`), not per request: the hit path
then costs a dict lookup and an `inc()`.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache

from prometheus_client import Counter, Gauge, Histogram

from orderflow.cache.breaker import State

OPS = (
    "lookup",
    "lookup_many",
    "lookup_view",
    "generations",
    "fill",
    "fill_many",
    "lease",
    "release",
    "put",
    "invalidate",
    "recheck",
    "delete",
    "bump",
    "ping",
    "epoch",
)
FILL_OUTCOMES = ("stored", "stale", "epoch", "lease")
BREAKER_VALUES: dict[State, int] = {"closed": 0, "half_open": 1, "open": 2}

REQUESTS = Counter("orderflow_cache_requests", "Cache reads by result", ["entity", "result"])
LOADS = Counter("orderflow_cache_loads", "Loader calls (database loads)", ["entity"])
FILLS = Counter("orderflow_cache_fills", "Values offered to the cache", ["entity", "outcome"])
INVALIDATIONS = Counter("orderflow_cache_invalidations", "Invalidations", ["entity"])
ERRORS = Counter("orderflow_cache_errors", "Failed cache operations", ["entity", "op", "kind"])
LATENCY = Histogram(
    "orderflow_cache_latency_seconds",
    "Latency of one Redis round trip",
    ["entity", "op"],
    buckets=(0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0),
)
BREAKER = Gauge("orderflow_cache_breaker_state", "0 closed, 1 half-open, 2 open", ["namespace"])


class EntityMetrics:
    """The label children of one entity, resolved once."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.hit = REQUESTS.labels(name, "hit")
        self.miss = REQUESTS.labels(name, "miss")
        self.bypass = REQUESTS.labels(name, "bypass")
        self.near_hit = REQUESTS.labels(name, "near_hit")  # served by the in-process near cache
        self.first_sight = REQUESTS.labels(name, "first_sight")  # not admitted: see admission
        self.loads = LOADS.labels(name)
        self.invalidations = INVALIDATIONS.labels(name)
        self.fills = {outcome: FILLS.labels(name, outcome) for outcome in FILL_OUTCOMES}
        self.latency = {op: LATENCY.labels(name, op) for op in OPS}

    def error(self, op: str, kind: str) -> None:
        # Not pre-resolved: errors are off the hot path.
        ERRORS.labels(self.name, op, kind).inc()


@cache
def for_entity(name: str) -> EntityMetrics:
    """The metrics of entity `name` (created on first use, then shared)."""
    return EntityMetrics(name)


def breaker_listener(namespace: str) -> Callable[[State], None]:
    """An `on_change` callback for a breaker that mirrors its state into the gauge."""
    gauge = BREAKER.labels(namespace)
    gauge.set(0)

    def on_change(state: State) -> None:
        gauge.set(BREAKER_VALUES[state])

    return on_change
