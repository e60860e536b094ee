"""Benchmarks: each runs with `python -m perf.bench.<name>` and writes its results to docs/."""
