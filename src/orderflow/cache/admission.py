"""Admission on second sight: a key read for the first time skips Redis altogether.

Most keys of a large data set are read once in a long while (a random order among a million, a
client's list looked at once): "one-hit wonders". Caching them costs every such read a lookup and
a fill, two round trips through the client library (about 0.3 ms of CPU here, half again what
the database read itself costs since it became one statement), for an entry nobody reads again.
The doorkeeper of TinyLFU (Einziger et al., 2017), like a CDN's cache-on-second-hit, remembers
which keys were read recently and admits a key to the cache only on its second read: the first
goes straight to the database, costing one set lookup more than no cache.

It changes which reads are hits, never what a read returns: a read that skips Redis reads the
database, which is always current. Remembered are hashes of keys, in two generations of at most
`capacity` each: when the newer fills up, the older is forgotten. `capacity` 0 admits every key.
"""

from __future__ import annotations

from collections.abc import Hashable


class Doorkeeper:
    """The keys this process read recently (see the module's docstring)."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._recent: set[int] = set()
        self._older: set[int] = set()

    def admit(self, key: Hashable) -> bool:
        """True if `key` was seen lately (read it through the cache); else remember it."""
        if self.capacity <= 0:
            return True
        h = hash(key)
        if h in self._recent or h in self._older:
            return True
        self.saw(key)
        return False

    def saw(self, key: Hashable) -> None:
        """Remember `key` without a read: a process that wrote an entry will likely read it."""
        if self.capacity <= 0:
            return
        self._recent.add(hash(key))
        if len(self._recent) >= self.capacity:
            self._older, self._recent = self._recent, set()
