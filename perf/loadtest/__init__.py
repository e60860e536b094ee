"""`python -m perf.loadtest` (`make loadtest`): Locust users of the three roles against a
running platform, cache off then on, each climbing a ladder of users until its SLA breaks (its
capacity: the highest step that held), a constant-arrival-rate probe, and an HTML report with the
load generator's own CPU beside the platform's.

Importing `perf.loadtest.users` (and so `runner`) imports Locust, which monkey-patches the
standard library for gevent: import it only from the command (`__main__`).
"""
