"""Prometheus metrics shared by every process; exported on `/metrics`.

With several workers per API (`serve --workers N`), prometheus_client runs in multiprocess
mode: PROMETHEUS_MULTIPROC_DIR is set before the workers start, each worker writes its samples
there, and `/metrics` adds up every worker's, whichever worker answers the scrape (counters and
histograms summed; a gauge, such as the cache breaker's state, one series per `pid`).
"""

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)

MULTIPROC_DIR = "PROMETHEUS_MULTIPROC_DIR"

DB_QUERIES = Counter("orderflow_db_queries", "SQL statements sent to PostgreSQL", ["database"])
HTTP_REQUESTS = Histogram(
    "orderflow_http_request_duration_seconds",
    "HTTP request latency by route and status",
    ["service", "method", "route", "status"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
UPKEEP_QUERIES = Counter(
    "orderflow_upkeep_queries",
    "SQL statements of the cache's background work (the upkeep journal's repair ticks and "
    "deletes of applied rows, the timeline watch), not counted in orderflow_db_queries",
    ["database"],
)
UPKEEP_REPAIRED = Counter(
    "orderflow_upkeep_repaired",
    "Cache upkeep journal rows re-applied: by the worker, or by a retry (replay, 409)",
    ["database", "by"],
)
RELAY_EVENTS = Counter("orderflow_relay_events", "Outbox events delivered", ["direction"])


def exposition() -> tuple[bytes, str]:
    """The text a scrape gets: this process's metrics, or every worker's in multiprocess mode."""
    if not os.environ.get(MULTIPROC_DIR):
        return generate_latest(), CONTENT_TYPE_LATEST
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    return generate_latest(registry), CONTENT_TYPE_LATEST
