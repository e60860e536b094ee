"""In-process single-flight: concurrent calls with one key share the first caller's work."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class _LeaderGone(Exception):
    """The leading call was cancelled; its followers must try again on their own."""


class SingleFlight(Generic[T]):
    """The first caller of a key runs `fn` in its own task (so its context, e.g. its database
    session, is the one used); callers arriving meanwhile wait for its result or exception.
    """

    def __init__(self) -> None:
        self._leaders: dict[str, asyncio.Future[T]] = {}

    async def run(self, key: str, fn: Callable[[], Awaitable[T]]) -> T:
        """`fn()`'s result, computed once for all concurrent callers of `key`."""
        while (pending := self._leaders.get(key)) is not None:
            try:
                # shield: a follower being cancelled must not cancel the shared result.
                return await asyncio.shield(pending)
            except _LeaderGone:
                continue  # the first follower to wake up leads the next round
        return await self._lead(key, fn)

    def __len__(self) -> int:
        return len(self._leaders)

    async def _lead(self, key: str, fn: Callable[[], Awaitable[T]]) -> T:
        shared: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._leaders[key] = shared
        try:
            result = await fn()
        except Exception as exc:  # shared as is: a NotFound reaches every follower unchanged
            _fail(shared, exc)
            raise
        except BaseException:  # cancelled: followers are not, they retry
            _fail(shared, _LeaderGone())
            raise
        finally:
            del self._leaders[key]
        shared.set_result(result)
        return result


def _fail(shared: asyncio.Future[T], exc: BaseException) -> None:
    shared.set_exception(exc)
    shared.exception()  # marks it retrieved: there may be no follower, and that is fine
