"""Prometheus metrics shared by every process; exported on `/metrics`."""

from prometheus_client import Counter, Histogram

DB_QUERIES = Counter("orderflow_db_queries", "SQL statements sent to PostgreSQL", ["database"])
HTTP_REQUESTS = Histogram(
    "orderflow_http_request_duration_seconds",
    "HTTP request latency by route and status",
    ["service", "method", "route", "status"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
UPKEEP_QUERIES = Counter(
    "orderflow_upkeep_queries",
    "SQL statements of the cache upkeep journal's background work (repair ticks, deletes of "
    "applied rows), not counted in orderflow_db_queries",
    ["database"],
)
UPKEEP_REPAIRED = Counter(
    "orderflow_upkeep_repaired",
    "Cache upkeep journal rows re-applied: by the worker, or by a retry (replay, 409)",
    ["database", "by"],
)
RELAY_EVENTS = Counter("orderflow_relay_events", "Outbox events delivered", ["direction"])
