"""`python -m perf.loadtest` (`make loadtest`): Locust users of the three roles against a
running platform, cache off then on, a constant-arrival-rate probe, SLA verdicts and an HTML
report.

Importing `perf.loadtest.users` (and so `runner`) imports Locust, which monkey-patches the
standard library for gevent: import it only from the command (`__main__`).
"""
