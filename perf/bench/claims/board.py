"""One production board: an SSE client on `GET /events` recording when each `claimed` event
arrived."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx
import orjson


@dataclass
class Board:
    """One production board: an SSE client recording when each `claimed` event arrived."""

    index: int
    process: int
    url: str
    on_claimed: Callable[[int], None]
    # order id -> every `claimed` event for it: (arrival, operator id, stream id's ms)
    claimed: dict[int, list[tuple[float, int | None, int]]] = field(default_factory=dict)
    resyncs: int = 0
    subscribed: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None

    async def listen(self) -> None:
        timeout = httpx.Timeout(10.0, read=None)  # an idle board waits as long as it takes
        async with (
            httpx.AsyncClient(timeout=timeout) as http,
            http.stream("GET", f"{self.url}/events") as response,
        ):
            response.raise_for_status()
            buffer = b""
            async for chunk in response.aiter_bytes():
                # Stamped before parsing: the time the bytes reached this process.
                arrived = time.perf_counter()
                *blocks, buffer = (buffer + chunk).replace(b"\r\n", b"\n").split(b"\n\n")
                for block in blocks:
                    self.handle(block, arrived)

    def handle(self, block: bytes, arrived: float) -> None:
        """One SSE message: a comment, or `event:`/`id:`/`data:` lines."""
        if block.startswith(b":"):
            if block.startswith(b": subscribed"):
                self.subscribed.set()  # the server's fan-out has us: nothing is missed now
            return
        kind, data, stream_id = b"message", b"", b"0-0"
        for line in block.split(b"\n"):
            name, _, value = line.partition(b":")
            if name == b"event":
                kind = value.strip()
            elif name == b"data":
                data = value.removeprefix(b" ")
            elif name == b"id":
                stream_id = value.strip()
        if kind == b"claimed":
            event = orjson.loads(data)
            order_id = int(event["order_id"])
            # A stream id starts with Redis's clock at XADD, in ms: when the event was published.
            published_ms = int(stream_id.partition(b"-")[0])
            record = (arrived, event.get("operator_id"), published_ms)
            self.claimed.setdefault(order_id, []).append(record)
            self.on_claimed(order_id)
        elif kind == b"resync":
            self.resyncs += 1

    async def connect(self, timeout_s: float = 15.0) -> None:
        self.task = asyncio.create_task(self.listen(), name=f"board-{self.index}")
        waiter = asyncio.create_task(self.subscribed.wait())
        done, _ = await asyncio.wait(
            {self.task, waiter}, timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED
        )
        if waiter not in done:
            waiter.cancel()
            if self.task.done():
                self.task.result()  # raises what made the board fail
            raise TimeoutError(f"board {self.index} not subscribed after {timeout_s:.0f}s")

    async def close(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
