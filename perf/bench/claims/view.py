"""The operators' view: the orders they still see as queued."""

from __future__ import annotations

import asyncio
import contextlib
import random


class QueueView:
    """The orders the operators still see as queued: what their boards show them.

    An order leaves the view when any board shows it claimed or an operator's claim is
    answered (200 or 409). Two operators may pick the same order before either happens:
    those are the races the claim path must decide.
    """

    def __init__(self, order_ids: list[int]) -> None:
        self.ours = frozenset(order_ids)
        self.open = list(order_ids)
        self.position = {oid: i for i, oid in enumerate(self.open)}
        self.taken: set[int] = set()
        self.changed = asyncio.Event()  # set when an order comes back, or the last is taken

    def pick(self, rng: random.Random) -> int | None:
        return self.open[rng.randrange(len(self.open))] if self.open else None

    def take(self, order_id: int) -> None:
        if order_id not in self.ours:
            return  # another client's event on a configured, shared stream
        self.taken.add(order_id)
        if self.done:
            self.changed.set()
        index = self.position.pop(order_id, None)
        if index is None:
            return
        last = self.open.pop()  # O(1) removal: the last entry fills the hole
        if index < len(self.open):
            self.open[index] = last
            self.position[last] = index

    def retry(self, order_id: int) -> None:
        """An attempt failed without an answer: the order may still be free."""
        if order_id not in self.taken and order_id not in self.position:
            self.position[order_id] = len(self.open)
            self.open.append(order_id)
            self.changed.set()

    async def wait_for_change(self, timeout_s: float) -> None:
        """Idle operators sleep here rather than poll: their CPU is the servers' CPU."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.changed.wait(), timeout_s)
        if not self.done:
            self.changed.clear()

    @property
    def done(self) -> bool:
        return len(self.taken) == len(self.ours)
