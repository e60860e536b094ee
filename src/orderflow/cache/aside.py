"""The cache-aside read path: a lookup that leases on a miss, one load, a fill with the lease.

A hit is one scripted lookup. A miss is two round trips (the memcache leases design): the lookup
that misses also grants this caller the lease to load the value, and the fill carries the lease
and releases it. Whoever finds the lease taken waits for the holder's fill: in the holder's own
process it awaits the holder's load directly, elsewhere it polls the entry. A holder that is
slow or gone costs others at most `wait_ms`, after which they load without filling.

Sharing a load is safe because every write revokes the entry's lease before it is answered: a
caller that finds the lease still held, after it arrived, knows that no write acknowledged
before it arrived came between the lease and the load, so the load is as new as its own would be.

A batch read (`Reader.read_many`, the bodies behind a list view) leases every missing entry
but waits for none: see there.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Literal, TypeVar

from prometheus_client import Counter

from orderflow.cache import entry
from orderflow.cache.errors import CacheError
from orderflow.cache.found import Busy, Fill, Found, Miss, Pinned
from orderflow.cache.metrics import EntityMetrics
from orderflow.cache.store import Store
from orderflow.cache.ttl import TTLPolicy

T = TypeVar("T")
F = TypeVar("F")

Loader = Callable[[], Awaitable[tuple[int | None, bytes]]]
"""Loads a value from the database: `(version, JSON bytes)`, the bytes non-empty; a version of
None means "do not cache". Whatever it raises (NotFound, ...) reaches the caller unchanged and
is not cached."""

ManyLoader = Callable[[list[int]], Awaitable[dict[int, tuple[int | None, bytes]]]]
"""Loads several values in one database query, given their indexes in the batch: a dict
index -> `(version, JSON bytes)`, as for `Loader`. It must return every index it is given (raise,
e.g. NotFound, if a row is gone); a missing index raises KeyError. Its errors reach the caller."""

Missed = Literal[Miss.LEASED, Miss.MOVED] | Busy  # how a lookup of one entry missed


class _HolderGone(Exception):
    """The load being waited on was cancelled: its waiters look up again."""


@dataclass(frozen=True, slots=True)
class Read:
    """One read: its key, pinned to the epoch seen before loading, its lease token, how to
    load it."""

    m: EntityMetrics
    pin: Pinned
    token: str
    loader: Loader
    ttl: TTLPolicy


class Reader:
    """Cache-aside reads for one `Cache`."""

    def __init__(self, store: Store, *, wait_ms: int, poll_ms: int) -> None:
        self._store = store
        self._wait_s, self._poll_s = wait_ms / 1000, poll_ms / 1000
        prefix = f"{os.getpid()}-{os.urandom(4).hex()}-"
        self._tokens = (f"{prefix}{n}" for n in itertools.count())
        self._loading: dict[str, asyncio.Future[bytes]] = {}  # lease token -> its load

    def token(self) -> str:
        """A fresh lease token, unique across processes, for a batch (nobody waits on it)."""
        return next(self._tokens)

    async def read(self, m: EntityMetrics, pin: Pinned, loader: Loader, ttl: TTLPolicy) -> bytes:
        """The value at `pin`, loaded and filled on a miss; never a cache error."""
        try:
            token, found = await self.looked_up(
                lambda token: self._store.lookup(m, pin, token),
                lambda found: found is Miss.LEASED,
            )
        except CacheError:
            return await bypass(m, loader)
        if isinstance(found, bytes):
            m.hit.inc()
            return entry.body(found)
        return await self.read_missed(Read(m, pin, token, loader, ttl), found)

    async def looked_up(
        self, lookup: Callable[[str], Awaitable[F]], leased: Callable[[F], bool]
    ) -> tuple[str, F]:
        """`lookup(token)` with a fresh lease token, which is ready (before the lookup is
        answered, so nobody finds it missing) for this process's callers to wait on, if
        `leased(what the lookup found)`. Then `load_leased` must follow."""
        token = next(self._tokens)
        self._loading[token] = asyncio.get_running_loop().create_future()
        try:
            found = await lookup(token)
        except BaseException:
            self._forget(token)
            raise
        if not leased(found):
            self._forget(token)
        return token, found

    def _forget(self, token: str) -> None:
        """No load will follow under `token`: whoever joined it meanwhile (a reply that
        named this token as a holder, handled before ours) looks up again instead of waiting
        for ever."""
        load = self._loading.pop(token)
        if not load.done():
            load.set_exception(_HolderGone())
            load.exception()  # retrieved: there may be no waiter, and that is fine

    async def read_missed(self, read: Read, found: Missed) -> bytes:
        """`read` once a lookup with `read.token` missed: load under the lease, or wait."""
        deadline = time.monotonic() + self._wait_s
        while True:
            if found is Miss.LEASED:
                return await self._load_and_fill(read)
            if found is Miss.MOVED:  # our key is in an old epoch that nobody reads any more
                return await bypass(read.m, read.loader, read.m.miss)
            if (shared := await self._join(read.m, found.holder)) is not None:
                return shared
            if time.monotonic() >= deadline:  # the holder is slow or gone: load, do not fill
                return await bypass(read.m, read.loader, read.m.miss)
            await asyncio.sleep(self._poll_s)
            try:
                found_again = await self._store.lookup(read.m, read.pin, read.token)
            except CacheError:
                return await bypass(read.m, read.loader)
            if isinstance(found_again, bytes):
                read.m.hit.inc()
                return entry.body(found_again)
            found = found_again

    async def _load_and_fill(self, read: Read) -> bytes:
        version, payload = await self.load_leased(read)
        if version is None:  # not to be cached: give the lease back
            await quietly(self._store.release(read.m, read.pin, read.token))
        else:
            ttl_ms = read.ttl.ttl_ms()
            await quietly(self._store.fill(read.m, read.pin, read.token, version, payload, ttl_ms))
        return payload

    async def load_leased(self, read: Read) -> tuple[int | None, bytes]:
        """Load under `read.token`'s lease, sharing the result with this process's waiters.
        Counts the miss; on an error releases the lease (best effort) and re-raises."""
        load = self._loading.get(read.token) or asyncio.get_running_loop().create_future()
        self._loading[read.token] = load
        try:
            read.m.loads.inc()
            version, payload = await read.loader()
        except BaseException as exc:
            # A NotFound reaches every waiter unchanged; a cancelled load sends them back.
            load.set_exception(exc if isinstance(exc, Exception) else _HolderGone())
            load.exception()  # retrieved: there may be no waiter, and that is fine
            await quietly(self._store.release(read.m, read.pin, read.token))
            raise
        finally:
            del self._loading[read.token]
        load.set_result(payload)
        read.m.miss.inc()
        return version, payload

    async def _join(self, m: EntityMetrics, holder: str) -> bytes | None:
        """The payload of this process's load under `holder`'s lease, or None if the holder
        is not a load of this process, or no load follows (`_forget`), or it was cancelled.
        Every future in `_loading` is resolved before it leaves it, so this never waits for
        ever: at most as long as the holder's own load."""
        if (load := self._loading.get(holder)) is None:
            return None
        try:
            payload = await asyncio.shield(load)  # our being cancelled must not cancel it
        except _HolderGone:
            return None
        m.miss.inc()
        return payload

    async def read_many(
        self, m: EntityMetrics, pins: Sequence[Pinned], loader: ManyLoader, ttl: TTLPolicy
    ) -> list[bytes]:
        """The values at `pins`, in order; never a cache error. One lookup round trip
        (leasing the missing entries), then one `loader` call for the misses and one
        pipelined round trip filling those leased (on a cluster: one per shard, at once).

        No waiting: the bodies behind a list view are small primary-key loads, so loading an
        entry another caller holds the lease on costs little, while waiting for each would make
        a page as slow as its slowest entry. Such an entry is loaded and not filled.
        """
        token = self.token()
        try:
            found = await self._store.lookup_many(m, pins, token)
        except CacheError:
            return await bypass_many(m, loader, len(pins))
        return await self.complete_many(m, token, pins, found, loader, ttl)

    async def complete_many(
        self,
        m: EntityMetrics,
        token: str,
        pins: Sequence[Pinned],
        found: Sequence[Found],
        loader: ManyLoader,
        ttl: TTLPolicy,
    ) -> list[bytes]:
        """`read_many` once the entries at `pins` were looked up with `token`: the payloads in
        order, the misses loaded in one call, those leased to `token` filled in one trip."""
        misses = [i for i, raw in enumerate(found) if not isinstance(raw, bytes)]
        leased = [pins[i] for i in misses if found[i] is Miss.LEASED]
        try:
            loaded = await _load_many(m, loader, misses) if misses else {}
        except BaseException:
            if leased:
                await quietly(self._store.fill_many(m, token, [], leased))
            raise
        fills: list[Fill] = [
            (pins[i], version, loaded[i][1], ttl.ttl_ms())  # a TTL each: jitter spreads expiry
            for i in misses
            if found[i] is Miss.LEASED and (version := loaded[i][0]) is not None
        ]
        if leased:
            filled = {pin for pin, *_ in fills}
            unfilled = [pin for pin in leased if pin not in filled]
            await quietly(self._store.fill_many(m, token, fills, unfilled))
        m.hit.inc(len(pins) - len(misses))
        m.miss.inc(len(misses))
        return [_payload(raw, loaded, i) for i, raw in enumerate(found)]

    async def refresh_many(
        self, m: EntityMetrics, pins: Sequence[Pinned], loader: ManyLoader, ttl: TTLPolicy
    ) -> int:
        """Lease `pins` (stored or not), load those leased, fill them: how many stored."""
        token = self.token()
        try:
            leased = await self._store.lease_many(m, pins, token)
        except CacheError:
            return 0
        if not (indexes := [i for i, ok in enumerate(leased) if ok]):
            return 0
        try:
            loaded = await _load_many(m, loader, indexes)
        except BaseException:
            await quietly(self._store.fill_many(m, token, [], [pins[i] for i in indexes]))
            raise
        fills: list[Fill] = []
        unfilled: list[Pinned] = []
        for i in indexes:
            version, payload = loaded[i]
            if version is None:
                unfilled.append(pins[i])
            else:
                fills.append((pins[i], version, payload, ttl.ttl_ms()))
        return await quietly(self._store.fill_many(m, token, fills, unfilled)) or 0


def _payload(raw: Found, loaded: dict[int, tuple[int | None, bytes]], i: int) -> bytes:
    return entry.body(raw) if isinstance(raw, bytes) else loaded[i][1]


async def bypass(m: EntityMetrics, loader: Loader, result: Counter | None = None) -> bytes:
    """A read without the cache, counted as `result` (default: bypass)."""
    (result or m.bypass).inc()
    m.loads.inc()
    return (await loader())[1]


async def bypass_many(
    m: EntityMetrics, loader: ManyLoader, n: int, *, first_sight: bool = False
) -> list[bytes]:
    """A batch of `n` read without the cache: every index goes to the loader."""
    loaded = await _load_many(m, loader, list(range(n)))
    (m.first_sight if first_sight else m.bypass).inc(n)
    return [loaded[i][1] for i in range(n)]


async def _load_many(
    m: EntityMetrics, loader: ManyLoader, indexes: list[int]
) -> dict[int, tuple[int | None, bytes]]:
    m.loads.inc()
    loaded = await loader(indexes)
    if absent := set(indexes) - loaded.keys():
        raise KeyError(f"the loader returned no value for indexes {sorted(absent)}")
    return loaded


async def quietly(op: Awaitable[T]) -> T | None:
    """Await a best-effort Redis call: its failure is already counted and must not spread."""
    try:
        return await op
    except CacheError:
        return None
