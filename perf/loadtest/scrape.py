"""Counters read from the services' `/metrics` (and the machine's CPU), differenced per window."""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass, field

import httpx
from prometheus_client.parser import text_string_to_metric_families

from perf.common import machine_cpu_s

RESULTS = ("hit", "near_hit", "miss", "bypass")


@dataclass
class Snapshot:
    t: float = field(default_factory=time.monotonic)
    queries: dict[str, float] = field(default_factory=lambda: defaultdict(float))  # database
    cache: dict[tuple[str, str], float] = field(default_factory=lambda: defaultdict(float))
    cpu_busy_s: float = 0.0  # the whole machine, every core
    missing: list[str] = field(default_factory=list)  # services whose /metrics did not answer


@dataclass(frozen=True)
class Rates:
    seconds: float
    queries_per_s: dict[str, float]  # per database, and "total"
    cache: dict[str, dict[str, float]]  # entity -> result -> count in the window
    machine_busy_cores: float

    def hit_ratio(self, entity: str) -> float | None:
        """(hits + near hits) / (hits + near hits + misses); None without cached reads."""
        c = self.cache.get(entity, {})
        served = c.get("hit", 0.0) + c.get("near_hit", 0.0)
        total = served + c.get("miss", 0.0)
        return served / total if total else None


def snapshot(urls: dict[str, str], timeout_s: float = 5.0) -> Snapshot:
    snap = Snapshot(cpu_busy_s=machine_cpu_s()[0])
    with httpx.Client(timeout=timeout_s) as http:
        for service, base in urls.items():
            try:
                text = http.get(f"{base}/metrics").raise_for_status().text
            except httpx.HTTPError:
                snap.missing.append(service)
                continue
            for family in text_string_to_metric_families(text):
                for s in family.samples:
                    if s.name == "orderflow_db_queries_total":
                        snap.queries[s.labels["database"]] += s.value
                    elif s.name == "orderflow_cache_requests_total":
                        snap.cache[(s.labels["entity"], s.labels["result"])] += s.value
    return snap


def rates(a: Snapshot, b: Snapshot) -> Rates:
    seconds = max(b.t - a.t, 1e-9)
    queries = {db: max(0.0, v - a.queries.get(db, 0.0)) / seconds for db, v in b.queries.items()}
    queries["total"] = sum(queries.values())
    cache: dict[str, dict[str, float]] = defaultdict(dict)
    for (entity, result), value in b.cache.items():
        cache[entity][result] = max(0.0, value - a.cache.get((entity, result), 0.0))
    busy = (b.cpu_busy_s - a.cpu_busy_s) / seconds
    return Rates(seconds, queries, dict(cache), busy)
