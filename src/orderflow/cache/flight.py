"""In-process single-flight: concurrent calls with one key share the first caller's work."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class _LeaderGone(Exception):
    """The leading call was cancelled; its followers must try again on their own."""


class Flight(Generic[T]):
    """One leader's work on a key. `loading` is set once it reads the database: from then on
    nobody joins it, since the row it reads may predate a write acknowledged to a newcomer."""

    __slots__ = ("future", "loading", "predecessor")

    def __init__(self, future: asyncio.Future[T], predecessor: Flight[T] | None = None) -> None:
        self.future = future
        self.loading = False
        # The flight on this key that was already loading when this one started: its lease
        # is this process's own, so it is worth waiting for (then looking up again).
        self.predecessor = predecessor

    async def predecessor_done(self) -> bool:
        """Wait until the predecessor ends, if one is running; False if there was none."""
        before = self.predecessor
        if before is None or before.future.done():
            return False
        await asyncio.wait([before.future])  # its result is not ours to take: look up again
        return True


class SingleFlight(Generic[T]):
    """The first caller of a key runs `fn` in its own task (so its context, e.g. its database
    session, is the one used); callers arriving before it starts loading share its result or
    exception. A caller arriving later leads a flight of its own: its Redis lookup sees any
    invalidation since, and the cross-process lease still keeps it from loading twice.
    """

    def __init__(self) -> None:
        self._leaders: dict[str, Flight[T]] = {}

    async def run(self, key: str, fn: Callable[[Flight[T]], Awaitable[T]]) -> T:
        """`fn(flight)`'s result, computed once for the callers of `key` that can share it."""
        while (flight := self._leaders.get(key)) is not None and not flight.loading:
            try:
                # shield: a follower being cancelled must not cancel the shared result.
                return await asyncio.shield(flight.future)
            except _LeaderGone:
                continue  # the first follower to wake up leads the next round
        return await self._lead(key, fn, flight)

    def __len__(self) -> int:
        return len(self._leaders)

    async def _lead(
        self, key: str, fn: Callable[[Flight[T]], Awaitable[T]], loading: Flight[T] | None
    ) -> T:
        flight = Flight[T](asyncio.get_running_loop().create_future(), loading)
        self._leaders[key] = flight
        try:
            result = await fn(flight)
        except Exception as exc:  # shared as is: a NotFound reaches every follower unchanged
            _fail(flight.future, exc)
            raise
        except BaseException:  # cancelled: followers are not, they retry
            _fail(flight.future, _LeaderGone())
            raise
        finally:
            if self._leaders.get(key) is flight:  # a newer flight may have taken the key
                del self._leaders[key]
        flight.future.set_result(result)
        return result


def _fail(shared: asyncio.Future[T], exc: BaseException) -> None:
    shared.set_exception(exc)
    shared.exception()  # marks it retrieved: there may be no follower, and that is fine
