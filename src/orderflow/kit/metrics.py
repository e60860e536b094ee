"""Prometheus metrics shared by every process; exported on `/metrics`."""

from prometheus_client import Counter, Histogram

DB_QUERIES = Counter("orderflow_db_queries", "SQL statements sent to PostgreSQL", ["database"])
HTTP_REQUESTS = Histogram(
    "orderflow_http_request_duration_seconds",
    "HTTP request latency by route and status",
    ["service", "method", "route", "status"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
RELAY_EVENTS = Counter("orderflow_relay_events", "Outbox events delivered", ["direction"])
