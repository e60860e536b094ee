"""The near cache: an in-process layer in front of Redis, for data that tolerates bounded
staleness (items, catalogue pages) — never for write-through data, whose freshness it would
break.

A hit never leaves the process: a dict lookup and a clock read. Coherence comes from two
sides. Writers drop entries in every process through invalidation messages (the sender waits
until each process has dropped them), and every entry also dies after `ttl_s`, which bounds the
staleness if a message is ever lost (a process that was partitioned from Redis, say).

A value loaded before a drop must not be stored after it: `stamp()` before the load, and
`put(..., stamp)` refuses the value if any drop happened in between (the near cache's own
stale-set rule, like the versioned fills in Redis).
"""

from __future__ import annotations

import random
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable

JITTER = 0.2  # an entry lives between (1 - JITTER) * ttl_s and ttl_s


class NearCache:
    """A bounded dict of `key -> bytes`, each entry living at most `ttl_s`, spread so that
    entries put together (a warm-up, a clear) do not all expire in the same instant."""

    def __init__(
        self,
        *,
        maxsize: int = 10_000,
        ttl_s: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.maxsize = maxsize
        self.ttl_s = ttl_s
        self._clock = clock
        self._entries: OrderedDict[Hashable, tuple[float, bytes]] = OrderedDict()
        self._drops = 0  # counts every drop or clear; a load that saw another count is stale

    def get(self, key: Hashable) -> bytes | None:
        """The value, if present and younger than `ttl_s`."""
        entry = self._entries.get(key)
        if entry is None:
            return None
        expires, value = entry
        if expires < self._clock():
            del self._entries[key]
            return None
        return value

    def stamp(self) -> int:
        """Take before loading a value that will be `put`."""
        return self._drops

    def put(self, key: Hashable, value: bytes, stamp: int) -> bool:
        """Store `value` unless something was dropped since `stamp`; evicts the oldest."""
        if stamp != self._drops:
            return False
        ttl_s = self.ttl_s * (1.0 - JITTER * random.random())
        self._entries[key] = (self._clock() + ttl_s, value)
        self._entries.move_to_end(key)
        while len(self._entries) > self.maxsize:
            self._entries.popitem(last=False)
        return True

    def drop(self, key: Hashable) -> None:
        self._drops += 1
        self._entries.pop(key, None)

    def clear(self, group: str | None = None) -> None:
        """Drop everything, or every key whose first element is `group` (an entity's name)."""
        self._drops += 1
        if group is None:
            self._entries.clear()
            return
        for key in [k for k in self._entries if isinstance(k, tuple) and k[0] == group]:
            del self._entries[key]

    def __len__(self) -> int:
        return len(self._entries)
