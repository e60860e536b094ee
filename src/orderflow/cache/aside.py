"""The cache-aside read path: single flight in the process, a lease across processes, a fill.

A hit is one plain `MGET` of the epoch and the entry, outside any flight. A miss is loaded once:
concurrent callers in this process share the first caller's flight (`SingleFlight`), and across
processes the flight that wins the lease loads while the others poll for its fill. A lease holder
that is slow or gone costs the others at most `wait_ms`, after which they load themselves (still
safe: every fill is a compare-and-set on the version).

A batch read (`Reader.read_many`, the bodies behind a list view) takes neither: see there.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from orderflow.cache import entry
from orderflow.cache.errors import CacheError
from orderflow.cache.flight import Flight, SingleFlight
from orderflow.cache.metrics import EntityMetrics
from orderflow.cache.store import Miss, Store
from orderflow.cache.ttl import TTLPolicy

T = TypeVar("T")

Loader = Callable[[], Awaitable[tuple[int | None, bytes]]]
"""Loads a value from the database: `(version, JSON bytes)`, the bytes non-empty; a version of
None means "do not cache". Whatever it raises (NotFound, ...) reaches the caller unchanged and
is not cached."""

ManyLoader = Callable[[list[int]], Awaitable[dict[int, tuple[int | None, bytes]]]]
"""Loads several values in one database query, given their indexes in the batch: a dict
index -> `(version, JSON bytes)`, as for `Loader`. It must return every index it is given (raise,
e.g. NotFound, if a row is gone); a missing index raises KeyError. Its errors reach the caller."""

_Fetched = tuple[bytes, str]  # the payload and how it was obtained: hit, miss or bypass


@dataclass(frozen=True, slots=True)
class _Read:
    """One read: its key, in the epoch seen before loading, and how to load it."""

    m: EntityMetrics
    epoch: int
    key: str
    loader: Loader
    ttl: TTLPolicy


class Reader:
    """Cache-aside reads for one `Cache`."""

    def __init__(self, store: Store, *, wait_ms: int, poll_ms: int) -> None:
        self._store = store
        self._flights: SingleFlight[_Fetched] = SingleFlight()
        self._wait_s, self._poll_s = wait_ms / 1000, poll_ms / 1000
        self._tokens = (f"{os.getpid()}-{os.urandom(4).hex()}-{n}" for n in itertools.count())

    async def read(
        self, m: EntityMetrics, epoch: int, key: str, loader: Loader, ttl: TTLPolicy
    ) -> bytes:
        """The value at `key` (in `epoch`), loaded and filled on a miss; never a cache error.

        A hit is one plain read (`Store.peek`) outside any flight: a hit needs no company,
        and cannot be handed a value looked up before the caller arrived. Only a miss joins or
        leads a flight, whose scripted lookup takes the lease.
        """
        try:
            found = await self._store.peek(m, epoch, key)
        except CacheError:
            m.bypass.inc()
            m.loads.inc()
            return (await loader())[1]
        if isinstance(found, bytes):
            m.hit.inc()
            return found
        if found is Miss.MOVED:  # our key is in an old epoch that nobody reads any more
            m.miss.inc()
            m.loads.inc()
            return (await loader())[1]
        return await self.read_missed(m, epoch, key, loader, ttl)

    async def read_missed(
        self, m: EntityMetrics, epoch: int, key: str, loader: Loader, ttl: TTLPolicy
    ) -> bytes:
        """`read` after a lookup found nothing at `key`: the flight, the lease, the fill."""
        read = _Read(m, epoch, key, loader, ttl)
        payload, result = await self._flights.run(key, lambda flight: self._fetch(read, flight))
        getattr(m, result).inc()  # every caller counts, followers included
        return payload

    async def read_many(
        self,
        m: EntityMetrics,
        epoch: int,
        keys: Sequence[str],
        loader: ManyLoader,
        ttl: TTLPolicy,
    ) -> list[bytes]:
        """The values at `keys` (in `epoch`), in order; never a cache error. One lookup round
        trip, then for the misses one `loader` call and one pipelined round trip of fills.

        No single flight and no leases: the bodies behind a list view are small primary-key
        loads, so a duplicate load by a concurrent reader costs little, while waiting on every
        missing entry's lease would make a page as slow as its slowest entry. Correctness needs
        neither: each fill is a compare-and-set on the version, pinned to the lookup's epoch.
        """
        try:
            found = await self._store.lookup_many(m, epoch, keys)
        except CacheError:
            return await bypass_many(m, loader, len(keys))
        # A moved epoch (now adopted): our keys are in one nobody reads; all miss, none fill.
        if found is Miss.MOVED:
            return await self.complete_many(m, epoch, keys, [None] * len(keys), loader, ttl, False)
        return await self.complete_many(m, epoch, keys, found, loader, ttl)

    async def complete_many(
        self,
        m: EntityMetrics,
        epoch: int,
        keys: Sequence[str],
        stored: Sequence[bytes | None],
        loader: ManyLoader,
        ttl: TTLPolicy,
        fill: bool = True,
    ) -> list[bytes]:
        """`read_many` once the entries at `keys` were looked up (None: not there): the
        payloads in order, the misses loaded in one call and filled (if `fill`) in one trip."""
        misses = [i for i, raw in enumerate(stored) if raw is None]
        loaded = await _load_many(m, loader, misses) if misses else {}
        fills = [
            (keys[i], version, loaded[i][1], ttl.ttl_ms())  # a TTL each: jitter spreads expiry
            for i in misses
            if (version := loaded[i][0]) is not None
        ]
        if fills and fill:
            await _quietly(self._store.fill_many(m, epoch, fills))
        m.hit.inc(len(keys) - len(misses))
        m.miss.inc(len(misses))
        return [loaded[i][1] if raw is None else entry.body(raw) for i, raw in enumerate(stored)]

    async def _fetch(self, read: _Read, flight: Flight[_Fetched]) -> _Fetched:
        """One flight: look up; on a miss, load under the lease or wait for its holder."""
        token, deadline = next(self._tokens), time.monotonic() + self._wait_s
        while True:
            try:
                found = await self._store.lookup(read.m, read.epoch, read.key, token)
            except CacheError:
                return await self._load(read, flight), "bypass"
            if isinstance(found, bytes):
                return entry.body(found), "hit"
            if found is Miss.MOVED:  # our key is in an old epoch that nobody reads any more
                return await self._load(read, flight), "miss"
            if found is Miss.LEASED:
                return await self._load_and_fill(read, flight, token), "miss"
            if await flight.predecessor_done():  # the lease was likely our own earlier flight's:
                deadline = time.monotonic() + self._wait_s  # it is alive, so no time limit
                continue
            if time.monotonic() >= deadline:
                return await self._load_and_fill(read, flight, None), "miss"
            await asyncio.sleep(self._poll_s)

    async def _load_and_fill(
        self, read: _Read, flight: Flight[_Fetched], token: str | None
    ) -> bytes:
        try:
            read.m.loads.inc()
            flight.loading = True
            version, payload = await read.loader()
            if version is not None:
                ttl_ms = read.ttl.ttl_ms()
                await _quietly(
                    self._store.fill(read.m, read.epoch, read.key, version, payload, ttl_ms)
                )
            return payload
        finally:
            if token is not None:  # after the fill, so that the waiters find the value
                await _quietly(self._store.release(read.m, read.key, token))

    @staticmethod
    async def _load(read: _Read, flight: Flight[_Fetched]) -> bytes:
        read.m.loads.inc()
        flight.loading = True
        return (await read.loader())[1]


async def bypass_many(m: EntityMetrics, loader: ManyLoader, n: int) -> list[bytes]:
    """A batch of `n` read without the cache: every index goes to the loader."""
    loaded = await _load_many(m, loader, list(range(n)))
    m.bypass.inc(n)
    return [loaded[i][1] for i in range(n)]


async def _load_many(
    m: EntityMetrics, loader: ManyLoader, indexes: list[int]
) -> dict[int, tuple[int | None, bytes]]:
    m.loads.inc()
    loaded = await loader(indexes)
    if absent := set(indexes) - loaded.keys():
        raise KeyError(f"the loader returned no value for indexes {sorted(absent)}")
    return loaded


async def _quietly(op: Awaitable[T]) -> T | None:
    """Await a best-effort Redis call: its failure is already counted and must not spread."""
    try:
        return await op
    except CacheError:
        return None
