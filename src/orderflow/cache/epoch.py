"""The epoch: a counter in every key of a namespace, so one INCR makes all entries unreachable.

Each process keeps the epoch it believes in; every script reply that touches an entry checks
that belief in the same round trip and, if it is out of date, hands back the current value.
When this process's breaker closes after an outage its probe bumps the epoch first, so no entry
written before the outage (possibly missing an invalidation it could not receive) is served
again (rule 5).

Epochs only move forward. A missing key (an empty restart, an eviction) starts again from the
server's clock in milliseconds, above any epoch counted up before (`scripts.FRESH`), so no entry
left from an earlier epoch of the same number can ever be served.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from redis.asyncio import Redis

from orderflow.cache.errors import CacheProtocolError
from orderflow.cache.scripts import CURRENT_EPOCH, NEW_EPOCH

log = logging.getLogger(__name__)


class Epoch:
    """This process's view of `{namespace}:epoch`."""

    def __init__(self, redis: Redis, key: str) -> None:
        self.key = key
        self.value = 0  # a guess; the first script reply corrects it
        self._new_epoch = redis.register_script(NEW_EPOCH)
        self._current_epoch = redis.register_script(CURRENT_EPOCH)

    def adopt(self, value: int) -> None:
        """Believe `value` from now on (reported by Redis, so it is the truth)."""
        if value != self.value:
            log.info("cache epoch %s: %d -> %d", self.key, self.value, value)
            self.value = value

    async def sync(self) -> int:
        """Learn the current epoch (starting one if Redis has none) and believe it."""
        self.adopt(int(await self._current_epoch(keys=[self.key])))
        return self.value

    async def bump(self) -> int:
        """Start a new epoch: every entry of the namespace becomes unreachable at once."""
        self.adopt(int(await self._new_epoch(keys=[self.key])))
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
