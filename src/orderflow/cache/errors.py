"""The cache layer's exceptions: one documented hierarchy, in the manner of `httpx._exceptions`.

    CacheError
    ├── CacheUnavailable       the circuit breaker is open: Redis was not called
    ├── CacheBusy              every connection of the pool was in use: Redis was not called
    ├── CacheTimeout           Redis did not answer within the cache's timeout
    ├── CacheConnectionError   Redis could not be reached (refused, reset, closed)
    ├── CacheProtocolError     Redis answered, but with an error or a reply we cannot use
    └── CacheRecoveryError     a breaker's probe could not replay what Redis missed (its
                               `Cache.recovery` callback failed): the breaker stays open

These are raised only inside the package. `Cache`'s public methods catch them: a read falls back
to its loader and a write reports failure by its return value (rule 1: the cache never fails a
request). They are exported for code that inspects logs or wraps the lower-level pieces.
"""

from __future__ import annotations

import redis.exceptions


class CacheError(Exception):
    """Base class: a cache operation did not complete; `shard` names where, if known."""

    def __init__(self, message: str = "", shard: str | None = None) -> None:
        super().__init__(message)
        self.shard = shard


class CacheUnavailable(CacheError):
    """The circuit breaker is open, so the call was not attempted."""


class CacheBusy(CacheError):
    """This process had every pooled connection to Redis in use, so the call was not made.

    Not a sign that Redis is failing: the breaker is not told, the call just falls back."""


class CacheTimeout(CacheError):
    """Redis did not answer within the configured timeout."""


class CacheConnectionError(CacheError):
    """Redis could not be reached."""


class CacheProtocolError(CacheError):
    """Redis answered with an error, or with a reply the cache protocol does not expect."""


class CacheRecoveryError(CacheError):
    """A recovery callback failed during a breaker's probe (e.g. its database was down)."""


def translate(exc: BaseException, shard: str | None = None) -> CacheError:
    """Map an exception from redis-py or the socket layer to the matching `CacheError`."""
    # Timeouts first: the builtin TimeoutError (what asyncio.timeout raises) is also an OSError.
    if isinstance(exc, TimeoutError | redis.exceptions.TimeoutError):
        return CacheTimeout(str(exc) or "timed out", shard)
    if isinstance(exc, redis.exceptions.ConnectionError | OSError):
        return CacheConnectionError(str(exc) or type(exc).__name__, shard)
    return CacheProtocolError(str(exc) or type(exc).__name__, shard)


def kind(exc: CacheError) -> str:
    """A short label for metrics: `unavailable`, `busy`, `timeout`, `connection`, `protocol`,
    `recovery`."""
    return _KINDS.get(type(exc), "protocol")


_KINDS: dict[type[CacheError], str] = {
    CacheUnavailable: "unavailable",
    CacheBusy: "busy",
    CacheTimeout: "timeout",
    CacheConnectionError: "connection",
    CacheProtocolError: "protocol",
    CacheRecoveryError: "recovery",
}
