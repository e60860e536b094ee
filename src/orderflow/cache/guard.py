"""The one door to Redis: every call passes the breaker, a timeout and error translation."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from redis.exceptions import MaxConnectionsError, RedisError

from orderflow.cache.breaker import CircuitBreaker, Ticket
from orderflow.cache.errors import CacheBusy, CacheError, CacheUnavailable, kind, translate
from orderflow.cache.metrics import EntityMetrics

T = TypeVar("T")


class Guard:
    """Runs Redis calls under `breaker` and `timeout_s`, raising only `CacheError`.

    Every failure counts against the breaker, an error reply included: a Redis that answers
    `LOADING`, `BUSY` or `OOM` is no more usable than one that does not answer.

    The half-open probe runs `on_probe` (the epoch bump) before its own call, inside the same
    timeout, so that nothing is read or written after an outage until the new epoch is in place.
    """

    def __init__(
        self,
        breaker: CircuitBreaker,
        timeout_s: float,
        on_probe: Callable[[], Awaitable[object]],
    ) -> None:
        self.breaker = breaker
        self.timeout_s = timeout_s
        self._on_probe = on_probe

    async def run(self, metrics: EntityMetrics, op: str, call: Callable[[], Awaitable[T]]) -> T:
        """Await `call()` if the breaker allows it; record its latency or its failure."""
        ticket = self.breaker.admit()
        if ticket is None:
            metrics.error(op, "unavailable")
            raise CacheUnavailable("circuit breaker is open")
        started = time.perf_counter()
        try:
            async with asyncio.timeout(self.timeout_s):
                if ticket is Ticket.PROBE:
                    await self._on_probe()
                result = await call()
        except CacheError as exc:  # raised by `call` itself: a reply the protocol cannot use
            self._failed(ticket, metrics, op, exc)
            raise
        except MaxConnectionsError as exc:  # our pool is exhausted; Redis may be fine
            # Nothing reported: a probe that was busy is presumed lost and retried later.
            metrics.error(op, "busy")
            raise CacheBusy(str(exc)) from exc
        except (RedisError, OSError) as exc:  # asyncio's TimeoutError is an OSError
            error = translate(exc)
            self._failed(ticket, metrics, op, error)
            raise error from exc
        # A cancelled call reports nothing: it says nothing about Redis (a lost probe expires).
        self.breaker.succeeded(ticket)
        metrics.latency[op].observe(time.perf_counter() - started)
        return result

    def _failed(self, ticket: Ticket, metrics: EntityMetrics, op: str, error: CacheError) -> None:
        self.breaker.failed(ticket)
        metrics.error(op, kind(error))
