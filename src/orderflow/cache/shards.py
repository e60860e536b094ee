"""Script calls batched by shard: one pipelined round trip per shard, the shards at once.

On one node that is one round trip (one call alone goes unpipelined). On a cluster a pipeline
must not span shards: if one of its commands goes to a dead master, redis-py raises for the
whole pipeline and the other shards' replies are lost. So each shard gets its own pipeline,
under its own breaker, and a shard that fails costs only its own calls.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Sequence
from typing import Any

from orderflow.cache.errors import CacheError
from orderflow.cache.guard import Guard
from orderflow.cache.metrics import EntityMetrics
from orderflow.cache.scripts import Call, Scripts


class Shards:
    def __init__(self, guard: Guard, scripts: Scripts) -> None:
        self._guard = guard
        self._layout = guard.layout
        self._scripts = scripts

    async def run(self, m: EntityMetrics, op: str, calls: Sequence[tuple[int, Call]]) -> list[Any]:
        """Each `(slot, call)`'s reply, or the `CacheError` of its shard: the calls of a shard
        pipelined in one round trip (one alone, unpipelined), the shards at once."""
        shards: dict[str, list[int]] = {}
        for i, (slot, _) in enumerate(calls):
            shards.setdefault(self._layout.shard(slot), []).append(i)
        replies: list[Any] = [None] * len(calls)

        async def run_shard(indexes: list[int]) -> None:
            batch = [calls[i][1] for i in indexes]
            one = batch[0]
            try:
                if len(batch) == 1:
                    got = [
                        await self._guard.run(
                            m, op, lambda: one[0](one[1], one[2]), calls[indexes[0]][0]
                        )
                    ]
                else:
                    got = await self._guard.run(
                        m, op, lambda: self._scripts.pipelined(batch), calls[indexes[0]][0]
                    )
            except CacheError as exc:
                got = [exc] * len(indexes)
            for i, reply in zip(indexes, got, strict=True):
                replies[i] = reply

        await each([run_shard(indexes) for indexes in shards.values()])
        return replies


async def each(calls: Sequence[Awaitable[None]]) -> None:
    """Await every call, at once if there are several (a cluster's shards)."""
    if len(calls) == 1:
        await calls[0]
    else:
        await asyncio.gather(*calls)
