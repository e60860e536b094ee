"""The door every request passes before the app: one ASGI layer, outside everything else.

It does, in this order, what six middleware did one inside the other:

- times the request and counts it by route and status (`orderflow_http_request_duration_seconds`);
- refuses a Host that is not one of ours (DNS rebinding: 400, `kit/security.Hosts`);
- refuses an unsafe request another site could have made (CSRF: 403, `kit/security.why_refused`);
- refuses a body over the limit (413) before the app reads it;
- marks a write's answer whose cache upkeep was left to the journal (`Orderflow-Upkeep: deferred`,
  `unit_of_work.note_deferred`);
- puts the security headers on every answer (`kit/security.headers_for`), the 500s of
  Starlette's error middleware included, which sits inside this layer.

Why one layer: each middleware is a coroutine frame per request and most a send wrapper of
their own; six cost 13 µs a request on a cached read that takes about 240 µs whole, measured
in-process. Here a GET is one frame, a linear scan of its headers for Host, and one send
wrapper. What each check means is written where it lives (`kit/security.py`).
"""

import time
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from orderflow.kit import metrics
from orderflow.kit.http import PROBLEM, dumps
from orderflow.kit.security import UNSAFE, Hosts, Refuse, headers_for, why_refused, with_headers
from orderflow.kit.unit_of_work import DEFERRED, Deferred

READS = frozenset({"GET", "HEAD"})
DEFERRED_HEADER = (b"orderflow-upkeep", b"deferred")


class Edge:
    def __init__(
        self,
        app: ASGIApp,
        *,
        service: str,
        hosts: Hosts,
        max_body_bytes: int,
        refuse: Refuse,
    ) -> None:
        self.app = app
        self.service = service
        self.hosts = hosts
        self.max_body_bytes = max_body_bytes
        self.refuse = refuse
        # prometheus-client's `labels()` takes a lock and checks its arguments on every call:
        # a request's labelled histogram is looked up here once per (method, route, status).
        self._timers: dict[tuple[str, str, int], Any] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500
        ours = headers_for(scope["path"])
        deferred: Deferred | None = None

        async def send_at_the_door(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = with_headers(message.get("headers", ()), ours)
                if deferred is not None and deferred.any:
                    headers.append(DEFERRED_HEADER)
                message["headers"] = headers
            await send(message)

        try:
            if not self.hosts.allow(_host(scope)):
                refusal = PlainTextResponse("Invalid host header", 400)
                await refusal(scope, receive, send_at_the_door)
            elif scope["method"] in READS:
                await self.app(scope, receive, send_at_the_door)
            else:
                deferred = Deferred()
                DEFERRED.set(deferred)
                await self._unsafe(scope, receive, send_at_the_door)
        finally:
            self._time(scope, status, time.perf_counter() - start)

    async def _unsafe(self, scope: Scope, receive: Receive, send: Send) -> None:
        """A request that may act: from our own pages or no browser, with a body in bounds."""
        headers: dict[bytes, bytes] = dict(scope["headers"])
        if scope["method"] in UNSAFE and (reason := why_refused(scope, headers)) is not None:
            response = await self.refuse(Request(scope, receive), HTTPException(403, reason))
            await response(scope, receive, send)
            return
        length = headers.get(b"content-length")
        if length is not None:
            if not length.isdigit() or int(length) > self.max_body_bytes:
                await self._too_large(scope, send)
                return
            await self.app(scope, receive, send)
            return
        if b"transfer-encoding" not in headers:
            await self.app(scope, receive, send)  # no body at all
            return
        # A streamed body is read here first, up to the limit, and handed on only if it fits:
        # raising from inside the app's read would reach the framework as an unreadable body
        # (400), not as too large.
        body = await _read_up_to(receive, self.max_body_bytes)
        if body is None:
            await self._too_large(scope, send)
            return
        await self.app(scope, _replay(body, receive), send)

    def _time(self, scope: Scope, status: int, seconds: float) -> None:
        route = getattr(scope.get("route"), "path", "unmatched")
        key = (scope["method"], route, status)
        if (timer := self._timers.get(key)) is None:
            timer = metrics.HTTP_REQUESTS.labels(self.service, key[0], route, str(status))
            self._timers[key] = timer
        timer.observe(seconds)

    async def _too_large(self, scope: Scope, send: Send) -> None:
        body = dumps(
            {
                "type": "about:blank",
                "title": "Payload too large",
                "status": 413,
                "detail": f"request bodies are limited to {self.max_body_bytes} bytes",
                "instance": scope["path"],
            }
        )
        headers = [
            (b"content-type", PROBLEM.encode()),
            (b"content-length", str(len(body)).encode()),
        ]
        await send({"type": "http.response.start", "status": 413, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def _host(scope: Scope) -> bytes | None:
    for name, value in scope["headers"]:
        if name == b"host":
            return bytes(value)
    return None


async def _read_up_to(receive: Receive, max_bytes: int) -> bytes | None:
    """The whole body, or None once it passes `max_bytes`."""
    chunks: list[bytes] = []
    seen = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return b"".join(chunks)
        chunk = message.get("body", b"")
        seen += len(chunk)
        if seen > max_bytes:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


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
