"""A minimal Server-Sent Events reader for tests (what a board's EventSource does)."""

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson


@dataclass
class Event:
    event: str = "message"
    id: str | None = None
    data: str = ""
    comment: bool = False

    def json(self) -> Any:
        return orjson.loads(self.data)


async def parse(lines: AsyncIterator[str]) -> AsyncIterator[Event]:
    current = Event()
    async for line in lines:
        if not line:
            if current.data or current.comment:
                yield current
            current = Event()
        elif line.startswith(":"):
            current.comment = True
        else:
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if name == "data":
                current.data = f"{current.data}\n{value}" if current.data else value
            elif name in ("event", "id"):
                setattr(current, name, value)


@dataclass
class Board:
    """A connected board collecting events in the background."""

    url: str
    last_event_id: str | None = None
    events: list[Event] = field(default_factory=list)
    comments: int = 0
    connected: asyncio.Event = field(default_factory=asyncio.Event)
    task: "asyncio.Task[None] | None" = None

    async def _listen(self) -> None:
        headers = {"Last-Event-ID": self.last_event_id} if self.last_event_id else {}
        async with (
            httpx.AsyncClient(timeout=None) as http,
            http.stream("GET", f"{self.url}/events", headers=headers) as response,
        ):
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            async for event in parse(response.aiter_lines()):
                if event.comment and not event.data:
                    self.comments += 1
                    self.connected.set()  # the first comment says the server subscribed us
                else:
                    self.events.append(event)

    async def __aenter__(self) -> "Board":
        self.task = asyncio.create_task(self._listen())
        await asyncio.wait_for(self.connected.wait(), 10)
        return self

    async def __aexit__(self, *_: object) -> None:
        assert self.task is not None
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task

    async def wait_for_comments(self, count: int, timeout_s: float = 5) -> None:
        async with asyncio.timeout(timeout_s):
            while self.comments < count:
                await asyncio.sleep(0.02)

    async def wait_for(self, count: int, timeout_s: float = 15) -> list[Event]:
        deadline = asyncio.get_running_loop().time() + timeout_s
        while len(self.events) < count:
            assert self.task is not None
            if self.task.done():
                self.task.result()
            assert asyncio.get_running_loop().time() < deadline, (
                f"{len(self.events)}/{count} events"
            )
            await asyncio.sleep(0.02)
        return self.events
