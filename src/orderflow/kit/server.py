"""How a service's uvicorn runs: no banner, bounded connections, and request heads that must
arrive whole, small and soon.

uvicorn bounds connections and requests (`limit_concurrency`, 503 beyond) but not a request's
head: its httptools protocol buffers headers of any size and waits for them for ever (the
keep-alive timeout runs only between requests), so one client dripping partial headers holds
its connections, and with a concurrency limit would fill it. `GuardedHttpTools` adds the two
limits a reverse proxy would have (nginx: `large_client_header_buffers`,
`client_header_timeout`): a head larger than `max_header_bytes` gets 431, one not complete
within `header_timeout_s` of its first byte (or of the connection) gets 408; both close the
connection. It reads the limits from the settings (the environment), so that `--workers N`,
whose workers import it by name, get the same.
"""

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from orderflow.kit.settings import Settings, get_settings

PROTOCOL = "orderflow.kit.server:GuardedHttpTools"
LINGER_S = 2.0  # how long a refused connection may still send, unread, before it is closed


class HeadTooLarge(Exception):
    """Raised from a parser callback to stop parsing a head over the limit."""


class GuardedHttpTools(HttpToolsProtocol):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        settings = get_settings()
        self.max_head = settings.max_header_bytes
        self.head_timeout_s = settings.header_timeout_s
        self.head_pending = True  # the bytes received now belong to a request's head
        self.head_bytes = 0
        self.head_timer: asyncio.TimerHandle | None = None
        self.head_too_large = False
        self.lingering = False  # refused: what the client still sends is read and dropped

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()  # a connection that never sends a whole head is closed too

    def data_received(self, data: bytes) -> None:
        if self.lingering:
            return
        if self.head_pending:
            self._arm()
            self.head_bytes += len(data)
        super().data_received(data)
        # Still in the head after feeding it all: everything counted was head.
        if self.head_pending and self.head_bytes > self.max_head:
            self._refuse(b"431 Request Header Fields Too Large", b"request head too large")

    def on_headers_complete(self) -> None:
        self.head_pending = False
        self._disarm()
        # A head that arrived whole in one read is measured here: the parser has it all.
        size = len(self.url) + sum(len(name) + len(value) + 4 for name, value in self.headers)
        if size > self.max_head:
            self.head_too_large = True
            raise HeadTooLarge  # the parser stops; uvicorn answers through send_400_response
        super().on_headers_complete()

    def send_400_response(self, msg: str) -> None:
        if self.head_too_large:
            self._refuse(b"431 Request Header Fields Too Large", b"request head too large")
            return
        super().send_400_response(msg)

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self.cycle is None or self.cycle.response_complete:  # not a pipelined one running
            self.head_pending, self.head_bytes = True, 0

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        if self.head_timer is None:
            self.head_timer = self.loop.call_later(self.head_timeout_s, self._too_slow)

    def _disarm(self) -> None:
        if self.head_timer is not None:
            self.head_timer.cancel()
            self.head_timer = None

    def _too_slow(self) -> None:
        self.head_timer = None
        if not self.head_pending or self.transport.is_closing():
            return
        if self.head_bytes == 0:  # nothing asked: close quietly, as after keep-alive
            self.transport.close()
            return
        self._refuse(b"408 Request Timeout", b"request head not received in time")

    def _refuse(self, status: bytes, text: bytes) -> None:
        if self.transport.is_closing():
            return
        self._disarm()
        self.head_pending = False
        head = (
            b"HTTP/1.1 " + status + b"\r\ncontent-type: text/plain; charset=utf-8\r\n"
            b"x-content-type-options: nosniff\r\nconnection: close\r\n"
            b"content-length: " + str(len(text)).encode() + b"\r\n\r\n"
        )
        self.transport.write(head + text)
        # A lingering close, as nginx does: closing with the client's bytes still unread would
        # reset the connection, and the client could lose the answer. Half-close instead, drop
        # what still comes, and close for good once the client does, or after LINGER_S.
        if self.transport.can_write_eof():
            self.lingering = True
            self.transport.write_eof()
            self.loop.call_later(LINGER_S, self.transport.close)
        else:
            self.transport.close()


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """What every API's uvicorn runs with (`orderflow serve`, and so `orderflow up`)."""
    return {
        "host": settings.host,
        "http": PROTOCOL,
        "server_header": False,  # no `server: uvicorn`: nothing to look up in a CVE list
        "limit_concurrency": settings.limit_concurrency,
        "access_log": False,
        "log_level": "warning",
        # Longer than clients keep idle connections (httpx: 5 s): a server that closes first
        # races the client's next request on that connection, which then fails unanswered.
        "timeout_keep_alive": 75,
        "timeout_graceful_shutdown": 10,
    }
