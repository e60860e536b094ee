"""ASGI middleware: request metrics, the upkeep header and a body-size limit, all cheap on the
hot path."""

import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from orderflow.kit import metrics
from orderflow.kit.http import PROBLEM, dumps
from orderflow.kit.unit_of_work import DEFERRED, Deferred

DEFERRED_HEADER = (b"orderflow-upkeep", b"deferred")


class RequestMetrics:
    def __init__(self, app: ASGIApp, service: str) -> None:
        self.app = app
        self.service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_with_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_with_status)
        finally:
            route = getattr(scope.get("route"), "path", "unmatched")
            metrics.HTTP_REQUESTS.labels(self.service, scope["method"], route, str(status)).observe(
                time.perf_counter() - start
            )


class UpkeepHeader:
    """Tells a client when a write's cache upkeep was left to the journal (`Orderflow-Upkeep:
    deferred`, `unit_of_work.note_deferred`): its write is committed, but reads may show the state
    before it for up to the repair bound (about 2 s). Without the header, no read that starts
    after the answer shows an older state. The fault suite's checker relies on it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD"):
            await self.app(scope, receive, send)
            return
        deferred = Deferred()
        DEFERRED.set(deferred)

        async def send_marked(message: Message) -> None:
            if message["type"] == "http.response.start" and deferred.any:
                message["headers"] = [*message.get("headers", ()), DEFERRED_HEADER]
            await send(message)

        await self.app(scope, receive, send_marked)


class BodyLimit:
    """Refuses bodies over `max_bytes` with 413 before the app reads them.

    With a Content-Length the header decides. Without one (a streamed body) the body is read
    here first, up to the limit, and handed on only if it fits: raising from inside the app's
    read would reach the framework as an unreadable body (400), not as too large.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        length = headers.get(b"content-length")
        if length is not None:
            if not length.isdigit() or int(length) > self.max_bytes:
                await self._refuse(scope, send)
                return
            await self.app(scope, receive, send)
            return
        if b"transfer-encoding" not in headers:
            await self.app(scope, receive, send)  # no body at all
            return
        body = await self._read(receive)
        if body is None:
            await self._refuse(scope, send)
            return
        await self.app(scope, _replay(body, receive), send)

    async def _read(self, receive: Receive) -> bytes | None:
        chunks: list[bytes] = []
        seen = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return b"".join(chunks)
            chunk = message.get("body", b"")
            seen += len(chunk)
            if seen > self.max_bytes:
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    async def _refuse(self, scope: Scope, send: Send) -> None:
        body = dumps(
            {
                "type": "about:blank",
                "title": "Payload too large",
                "status": 413,
                "detail": f"request bodies are limited to {self.max_bytes} bytes",
                "instance": scope["path"],
            }
        )
        headers = [
            (b"content-type", PROBLEM.encode()),
            (b"content-length", str(len(body)).encode()),
        ]
        await send({"type": "http.response.start", "status": 413, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def _replay(body: bytes, receive: Receive) -> Receive:
    """The body, read already, as the app expects to receive it; then the connection's own."""
    sent = False

    async def replayed() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replayed
