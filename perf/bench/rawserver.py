"""A trivial HTTP/1.1 server (an asyncio protocol on uvloop) to measure the load generator.

It answers every request with the same prebuilt response and does nothing else, so it is
several times faster than any ASGI app: whatever rate the load generator reaches against it
is the load generator's own ceiling. Run with `python -m perf.bench.rawserver PORT SIZE [CPU]`.
"""

from __future__ import annotations

import asyncio
import os
import sys
from typing import cast


def response(size: int) -> bytes:
    body = b"x" * size
    head = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n"
    return head % size + body


class Answer(asyncio.Protocol):
    """Counts complete request heads in what arrives and answers each one."""

    def __init__(self, reply: bytes) -> None:
        self.reply = reply
        self.pending = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but have its methods.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        assert self.transport is not None
        self.pending += data
        heads = self.pending.count(b"\r\n\r\n")  # GETs without bodies: a head is a request
        if heads:
            self.pending = self.pending[self.pending.rfind(b"\r\n\r\n") + 4 :]
            self.transport.write(self.reply * heads)


async def serve(port: int, size: int) -> None:
    reply = response(size)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: Answer(reply), "127.0.0.1", port)
    async with server:
        await server.serve_forever()


def main() -> None:
    import uvloop

    port, size = int(sys.argv[1]), int(sys.argv[2])
    if len(sys.argv) > 3:
        os.sched_setaffinity(0, {int(sys.argv[3])})
    uvloop.run(serve(port, size))


if __name__ == "__main__":
    main()
