"""The stored form of a cache entry: `b"<version>|<json bytes>"`; a tombstone is `b"<version>|"`.

The version travels with the value so the Lua scripts can compare versions without decoding
JSON, and a hit costs one `bytes.partition`: the body is returned as is, ready to send (rule 6).
"""

from __future__ import annotations

from typing import NamedTuple

SEPARATOR = b"|"


class Entry(NamedTuple):
    """A decoded entry. An empty `payload` marks a tombstone."""

    version: int
    payload: bytes

    @property
    def is_tombstone(self) -> bool:
        return not self.payload


def encode(version: int, payload: bytes) -> bytes:
    """The stored form of a value. `payload` must be non-empty (empty is how tombstones look)."""
    if not payload:
        raise ValueError("a cached payload must not be empty")
    return b"%d|%b" % (version, payload)


def tombstone(version: int) -> bytes:
    """The stored form of "version `version` was committed; anything older is stale"."""
    return b"%d|" % version


def decode(raw: bytes) -> Entry:
    """Split a stored entry into version and payload; raise ValueError if it is malformed."""
    version, sep, payload = raw.partition(SEPARATOR)
    if not sep:
        raise ValueError(f"not a cache entry: {raw[:40]!r}")
    return Entry(int(version), payload)


def body(raw: bytes) -> bytes:
    """The payload of a stored data entry, without decoding the version (the hit path)."""
    return raw.partition(SEPARATOR)[2]
