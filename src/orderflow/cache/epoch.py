"""The epoch: a counter in every key of a namespace, so one INCR makes all entries unreachable.

Each process keeps the epoch it believes in; every script reply that touches an entry checks
that belief in the same round trip and, if it is out of date, hands back the current value.
When this process's breaker closes after an outage its probe bumps the epoch first, so no entry
written before the outage (possibly missing an invalidation it could not receive) is served
again (rule 5). A missing key counts as epoch 0.

Redis must not evict this key: with `maxmemory`, use a `volatile-*` policy (entries all carry
TTLs, the counters do not), or an eviction would reset the epoch to 0.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from redis.asyncio import Redis

from orderflow.cache.errors import CacheProtocolError

log = logging.getLogger(__name__)


class Epoch:
    """This process's view of `{namespace}:epoch`."""

    def __init__(self, redis: Redis, key: str) -> None:
        self.key = key
        self.value = 0  # a guess; the first script reply corrects it
        self._redis = redis

    def adopt(self, value: int) -> None:
        """Believe `value` from now on (reported by Redis, so it is the truth)."""
        if value != self.value:
            log.info("cache epoch %s: %d -> %d", self.key, self.value, value)
            self.value = value

    async def bump(self) -> int:
        """Start a new epoch: every entry of the namespace becomes unreachable at once."""
        self.adopt(int(await self._redis.incr(self.key)))
        return self.value

    async def write(self, attempt: Callable[[int], Awaitable[Any]]) -> Any:
        """Run a write script at the believed epoch; if the reply says the epoch moved (a
        one-element list), adopt it and run once more. Writes must land in the current epoch,
        or an invalidation would miss the entries that readers actually see."""
        for _ in range(2):
            reply = await attempt(self.value)
            if not isinstance(reply, list):
                return reply
            self.adopt(int(reply[0]))
        raise CacheProtocolError(f"{self.key} moved twice during one write")
