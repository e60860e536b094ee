"""The Lua scripts (`lua`) registered on one client, and run pipelined in one round trip."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.commands.core import AsyncScript
from redis.exceptions import NoScriptError
from redis.typing import EncodableT, KeyT

from orderflow.cache.lua import (
    BUMP,
    DELETE,
    FILL,
    GENERATIONS,
    INVALIDATE,
    LEASE_MANY,
    LOOKUP,
    LOOKUP_MANY,
    LOOKUP_VIEW,
    PUT,
    RECHECK,
    RELEASE,
)

Call = tuple[AsyncScript, Sequence[KeyT], Sequence[EncodableT]]  # one script run in a pipeline


@dataclass(frozen=True)
class Scripts:
    """The scripts registered on one client (EVALSHA, reloaded by redis-py if Redis forgot)."""

    redis: Redis | RedisCluster
    lookup: AsyncScript
    lookup_many: AsyncScript
    lease_many: AsyncScript
    lookup_view: AsyncScript
    fill: AsyncScript
    put: AsyncScript
    invalidate: AsyncScript
    recheck: AsyncScript
    delete: AsyncScript
    bump: AsyncScript
    release: AsyncScript
    generations: AsyncScript

    @classmethod
    def register(cls, redis: Redis | RedisCluster) -> Scripts:
        return cls(
            redis=redis,
            lookup=redis.register_script(LOOKUP),
            lookup_many=redis.register_script(LOOKUP_MANY),
            lease_many=redis.register_script(LEASE_MANY),
            lookup_view=redis.register_script(LOOKUP_VIEW),
            fill=redis.register_script(FILL),
            put=redis.register_script(PUT),
            invalidate=redis.register_script(INVALIDATE),
            recheck=redis.register_script(RECHECK),
            delete=redis.register_script(DELETE),
            bump=redis.register_script(BUMP),
            release=redis.register_script(RELEASE),
            generations=redis.register_script(GENERATIONS),
        )

    async def pipelined(self, calls: Sequence[Call]) -> list[Any]:
        """Run every `(script, keys, args)` call, all in one round trip (no MULTI).

        redis-py's pipelined scripts ask SCRIPT EXISTS first, a round trip of its own. Instead,
        the calls answered NOSCRIPT (Redis restarted or flushed its scripts) load their script
        and run once more. Raises redis errors.
        """
        replies = await self._pipeline(calls)
        if forgotten := [i for i, reply in enumerate(replies) if isinstance(reply, NoScriptError)]:
            for script in {calls[i][0].script for i in forgotten}:
                await self.redis.script_load(script)
            retried = await self._pipeline([calls[i] for i in forgotten])
            for i, reply in zip(forgotten, retried, strict=True):
                replies[i] = reply
        for reply in replies:
            if isinstance(reply, Exception):
                raise reply
        return replies

    async def _pipeline(self, calls: Sequence[Call]) -> list[Any]:
        async with self.redis.pipeline(transaction=False) as pipe:
            for script, keys, args in calls:
                # Not `pipe.evalsha`, which a cluster pipeline refuses: one slot per call is
                # fine there, and redis-py routes each call to its slot's node.
                pipe.execute_command("EVALSHA", script.sha, len(keys), *keys, *args)
            replies: list[Any] = await pipe.execute(raise_on_error=False)
        return replies
