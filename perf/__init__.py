"""Measurement tools, outside the application package: `perf.bench` (the benchmarks),
`perf.loadtest` (the Locust load test) and `perf.common` (what they share)."""
