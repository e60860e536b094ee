"""The one door to Redis: every call passes its shard's breaker, a timeout and error translation."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from typing import Any, TypeVar

from redis.exceptions import MaxConnectionsError, RedisClusterException, RedisError

from orderflow.cache.breaker import CircuitBreaker, State, Ticket
from orderflow.cache.errors import (
    CacheBusy,
    CacheConnectionError,
    CacheError,
    CacheUnavailable,
    kind,
    translate,
)
from orderflow.cache.layout import UNKNOWN, Layout
from orderflow.cache.metrics import EntityMetrics

log = logging.getLogger(__name__)
T = TypeVar("T")

# A probe checks thousands of slots on a cluster, and replays the upkeep journal's pending rows.
PROBE_TIMEOUT_S = 15.0
# The shards whose probe is running in this task: its own calls pass their breakers.
_RECOVERING: ContextVar[frozenset[str]] = ContextVar("recovering", default=frozenset())
# In a probe: when its shard's outage began in this process (`outage_since`).
_OUTAGE: ContextVar[float | None] = ContextVar("outage", default=None)
_WORST: dict[State, int] = {"closed": 0, "half_open": 1, "open": 2}
# A write after a commit that finds its shard's probe in flight waits for the probe's outcome
# instead of being refused: the probe's replay may have read the journal before this write's row
# was committed, and a refused write left pending would then be missing once the breaker closes.
WRITE_OPS = frozenset({"put", "invalidate", "delete", "bump"})


class Guard:
    """Runs Redis calls under their shard's breaker and `timeout_s`, raising only `CacheError`.

    Every failure counts against the breaker, an error reply included: a Redis that answers
    `LOADING`, `BUSY` or `OOM` is no more usable than one that does not answer.

    One node has one shard and `breaker` is its breaker. A cluster's shards each get a breaker
    like it, so a dead master sends only its own slots to the database (`layout`). A shard whose
    slots another node serves now (a replica promoted) is in an outage: the answer of the call
    that found out is not trusted, and the shard's breaker opens for an immediate probe.

    The half-open probe runs `on_probe(shard)` before its own call (`Recovery.probe`: the check
    that the shard's server lost nothing, then the replay of what Redis missed meanwhile), so
    that nothing is read from the shard after an outage until that is done. Calls made by
    `on_probe` itself pass the shard's breaker (`_RECOVERING`), each under `timeout_s`.

    A cluster whose topology is not known (not learnt at start: a process started while a
    master was failing over) is refused whole, and learnt in the background; then every shard
    starts in an outage, as after a failover, and `on_learnt()` runs.
    """

    def __init__(
        self,
        breaker: CircuitBreaker,
        timeout_s: float,
        on_probe: Callable[[str], Awaitable[object]],
        layout: Layout | None = None,
    ) -> None:
        self.breaker = breaker
        self.timeout_s = timeout_s
        self.layout = layout or Layout()
        self._on_probe = on_probe
        self._report = breaker.on_change
        self._breakers: dict[str, CircuitBreaker] = {}
        if not self.layout.cluster:
            self._breakers[self.layout.shard(0)] = breaker
        self._probing: dict[str, asyncio.Event] = {}  # shard -> set when its probe reported
        self._learning: asyncio.Task[None] | None = None
        self.on_learnt: Callable[[], object] | None = None

    def breaker_of(self, shard: str) -> CircuitBreaker:
        if (found := self._breakers.get(shard)) is None:
            b = self.breaker
            found = CircuitBreaker(b.failure_threshold, b.reset_after_s, clock=b.clock)
            found.on_change = self._changed
            self._breakers[shard] = found
        return found

    @property
    def state(self) -> State:
        """The worst state of any shard's breaker."""
        states = [self.breaker_of(shard).state for shard in self.layout.shards()]
        return max(states, key=_WORST.__getitem__)

    @property
    def some_closed(self) -> bool:
        """Whether any shard's breaker is closed (some of Redis is usable)."""
        return any(self.breaker_of(shard).state == "closed" for shard in self.layout.shards())

    def trip(self, shard: str | None = None, *, probe_now: bool = False) -> None:
        """Open `shard`'s breaker (default: every shard's): its probe checks the server and
        replays what Redis missed before the shard is used again."""
        shards = [shard] if shard is not None else self.layout.shards()
        for name in shards:
            self.breaker_of(name).trip(probe_now=probe_now)

    async def health(
        self, metrics: EntityMetrics, ping: Callable[[int], Awaitable[object]]
    ) -> list[str]:
        """`ping(slot)` one slot of each shard through its breaker (so a due probe goes
        through): what is wrong, one line per shard that failed."""
        problems = []
        for shard in self.layout.shards():
            slot = self.layout.shard_slots(shard)[0]
            try:
                await self.run(metrics, "ping", functools.partial(ping, slot), slot)
            except CacheUnavailable:
                problems.append(
                    "topology not learnt yet"
                    if shard == UNKNOWN
                    else f"breaker {self.breaker_of(shard).state}"
                )
            except CacheError as exc:
                problems.append(f"redis {kind(exc)}")
        return problems

    async def health_text(self, metrics: EntityMetrics, redis: Any) -> str:
        """`ok`, or `degraded: ...` naming what failed first (`health`, pinging each shard)."""
        if not (problems := await self.health(metrics, functools.partial(self.layout.ping, redis))):
            return "ok"
        where = f" in {len(problems)} shard(s)" if self.layout.cluster else ""
        return f"degraded{where}: {problems[0]}"

    async def run(
        self, metrics: EntityMetrics, op: str, call: Callable[[], Awaitable[T]], slot: int = 0
    ) -> T:
        """Await `call()` (whose keys are in `slot`) if its shard's breaker allows it; record
        its latency or its failure."""
        if not self.layout.ready:
            metrics.error(op, "unavailable")
            raise self._unknown()
        shard = self.layout.shard(slot)
        breaker = self.breaker_of(shard)
        if shard in _RECOVERING.get():  # the probe's own work: the probe reports for it
            return await self._recovering(metrics, op, call, shard)
        ticket = breaker.admit()
        # Not from inside another shard's probe: two probes whose replays each wrote to the
        # other's shard waited for each other until both timed out, again and again.
        if ticket is None and op in WRITE_OPS and not _RECOVERING.get():
            ticket = await self._after_probe(shard, breaker)
        if ticket is None:
            metrics.error(op, "unavailable")
            raise CacheUnavailable(f"circuit breaker of {shard} is open", shard)
        if ticket is not Ticket.PROBE:
            return await self._call(metrics, op, call, slot, breaker, ticket)
        self._probing[shard] = probing = asyncio.Event()
        try:
            return await self._call(metrics, op, call, slot, breaker, ticket)
        finally:
            probing.set()  # reported: the writes waiting for it ask again

    async def _call(
        self,
        metrics: EntityMetrics,
        op: str,
        call: Callable[[], Awaitable[T]],
        slot: int,
        breaker: CircuitBreaker,
        ticket: Ticket,
    ) -> T:
        shard = self.layout.shard(slot)
        started = time.perf_counter()
        try:
            if ticket is Ticket.PROBE:
                await self._probe(shard)
            async with asyncio.timeout(self.timeout_s):
                result = await call()
            if self.layout.failed_over(shard, slot):
                raise CacheUnavailable(f"{shard} is served by another node now", shard)
        except CacheUnavailable as exc:  # failed over: its slots are in an outage
            metrics.error(op, "failover")
            breaker.trip(probe_now=True)
            raise exc
        except CacheError as exc:  # raised by `call` itself: a reply the protocol cannot use
            self._failed(breaker, ticket, metrics, op, exc, shard)
            raise
        except MaxConnectionsError as exc:  # our pool is exhausted; Redis may be fine
            # Nothing reported: a probe that was busy is presumed lost and retried later.
            metrics.error(op, "busy")
            raise CacheBusy(str(exc), shard) from exc
        except (RedisError, RedisClusterException, OSError) as exc:  # TimeoutError is an OSError
            error = translate(exc, shard)
            self._failed(breaker, ticket, metrics, op, error, shard)
            raise error from exc
        except (AttributeError, RuntimeError, asyncio.CancelledError) as exc:
            if (dropped := self._dropped(exc, shard)) is None:
                raise  # one node's, or our own task cancelled: not redis-py's doing
            self._failed(breaker, ticket, metrics, op, dropped, shard)
            raise dropped from exc
        # A cancelled call reports nothing: it says nothing about Redis (a lost probe expires).
        breaker.succeeded(ticket)
        metrics.latency[op].observe(time.perf_counter() - started)
        return result

    def _unknown(self) -> CacheUnavailable:
        """Refuse a call to a cluster whose topology is unknown, and learn it meanwhile."""
        self.breaker_of(UNKNOWN).trip()  # for `state`, /health and the metrics: unusable
        if self._learning is None or self._learning.done():
            self._learning = asyncio.create_task(self._learn(), name="cache-topology")
        return CacheUnavailable("the cluster's topology is not learnt yet", UNKNOWN)

    async def _learn(self) -> None:
        while not self.layout.ready:
            try:
                async with asyncio.timeout(PROBE_TIMEOUT_S):
                    await self.layout.start()
            except (RedisError, RedisClusterException, OSError) as exc:
                log.warning("cache: cluster topology not learnt, retrying: %r", exc)
                await asyncio.sleep(1.0)
        # Nothing was checked: each shard's probe checks its server and replays the journal
        # before it is read, as after a failover.
        self.trip(probe_now=True)
        if self.on_learnt is not None:
            self.on_learnt()

    async def _after_probe(self, shard: str, breaker: CircuitBreaker) -> Ticket | None:
        """A write refused while `shard`'s probe is in flight: wait for its outcome (at most
        the probe's own bound), then ask again."""
        probing = self._probing.get(shard)
        if breaker.state != "half_open" or probing is None or probing.is_set():
            return None
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(PROBE_TIMEOUT_S):
                await probing.wait()
        return breaker.admit()

    def _dropped(self, exc: BaseException, shard: str) -> CacheError | None:
        """redis-py's cluster client disconnects a node's connections (or every node's) when a
        call fails over or reloads the slot table, under the calls still using them: these then
        fail inside redis-py ("'NoneType' object has no attribute 'writelines'", uvloop's "the
        handler is closed", a CancelledError from its own wait for a dropped connection to
        close). A lost connection, as such; None if `exc` is not that."""
        task = asyncio.current_task()
        if not self.layout.cluster or (task is not None and task.cancelling()):
            return None
        return CacheConnectionError(f"{type(exc).__name__}: {exc}", shard)

    async def _recovering(
        self, metrics: EntityMetrics, op: str, call: Callable[[], Awaitable[T]], shard: str
    ) -> T:
        try:
            async with asyncio.timeout(self.timeout_s):
                return await call()
        except (RedisError, RedisClusterException, OSError) as exc:
            error = translate(exc, shard)
            metrics.error(op, kind(error))
            raise error from exc

    async def _probe(self, shard: str) -> None:
        """The probe's first step: the slot table reloaded (a cluster's), `on_probe(shard)`
        with the shard's breaker passed by its own calls, the masters seen before it accepted."""
        async with asyncio.timeout(PROBE_TIMEOUT_S):
            await self.layout.refresh()
            masters = self.layout.masters(shard)
            recovering = _RECOVERING.set(_RECOVERING.get() | {shard})
            outage = _OUTAGE.set(self.breaker_of(shard).outage_began)
            try:
                await self._on_probe(shard)
            finally:
                _OUTAGE.reset(outage)
                _RECOVERING.reset(recovering)
        self.layout.settle(shard, masters)

    def _failed(
        self,
        breaker: CircuitBreaker,
        ticket: Ticket,
        metrics: EntityMetrics,
        op: str,
        error: CacheError,
        shard: str,
    ) -> None:
        error.shard = shard
        breaker.failed(ticket)
        metrics.error(op, kind(error))
        if ticket is Ticket.PROBE:  # at most once per reset interval and shard: say why
            log.warning("cache: the probe of %s failed (%s): %s", shard, kind(error), error)

    def _changed(self, _: State) -> None:
        if self._report is not None:
            self._report(self.state)


def outage_since() -> float | None:
    """In a breaker's probe (its recovery callbacks): when the shard's outage began in this
    process (the breaker's clock), so a callback may reuse work begun since then."""
    return _OUTAGE.get()
