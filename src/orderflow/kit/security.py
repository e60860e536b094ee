"""What no other web page may do to a service: act on it, frame it, or run script in it.

There is no login (authorisation is out of scope), so any page a seller or operator opens
could otherwise post to the services on loopback. Three guards, applied by `kit/edge.Edge`,
the one layer every request passes before the app:

- `why_refused` (CSRF): an unsafe method (POST, PUT, PATCH, DELETE) is refused with 403
  when the browser says it comes from another site or origin. Why Origin and Sec-Fetch-Site,
  not a token (starlette-csrf's double submit): every browser sends `Origin` on a cross-origin
  POST and `Sec-Fetch-Site` on every request, neither can be set by a page, and checking them
  needs no cookie, no session and no change to the pages, the JSON API or its clients; curl,
  httpx and the load test send neither and pass. Sec-Fetch-Site must be `same-origin` or `none`
  (a typed URL, a bookmark); `Origin` (or, without it, `Referer`) must be this very origin:
  the request's own scheme and Host, which `Hosts` keeps to names of ours. A
  page of another port on the same host (another service) is another origin, refused too.
  Then the body's type: a cross-site `<form>` or `fetch(..., {mode: "no-cors"})` can only
  send `text/plain`, `application/x-www-form-urlencoded` or `multipart/form-data`. Form types
  are taken only by page routes (`pages.form_fields`); a JSON route with a body refuses them
  (422: not JSON), a body-less JSON action (`POST /orders/{id}/confirm`) by `NO_FORM` (403);
  JSON routes take JSON (`application/json`, `*+json`) or no body at all (as curl and httpx
  send a body-less action); anything else, `text/plain` first, is refused here, so a browser
  too old to send Origin still cannot act through a form.
- `headers_for`: a CSP that allows only this origin's scripts, styles and images and no
  framing, `nosniff`, a Referrer-Policy, on every answer, errors and streams included (the
  edge wraps the whole app, outside Starlette's error middleware: `kit/app.py`).
- DNS rebinding: `Hosts`, Starlette's `TrustedHostMiddleware` rule with
  `Settings.trusted_hosts()`; a rebound name gets 400 before anything else runs.
"""

from collections.abc import Awaitable, Callable, Iterable
from urllib.parse import urlsplit

from fastapi import Depends

# TrustedHostMiddleware's own parser (private: an upgrade that moves it fails here, at import).
from starlette._utils import parse_host_header
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Scope

UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})
SAME = frozenset({b"same-origin", b"none"})
FORM_TYPES = frozenset({"application/x-www-form-urlencoded", "multipart/form-data"})
Refuse = Callable[[Request, HTTPException], Awaitable[Response]]

CSP = "; ".join(
    [
        "default-src 'self'",
        "img-src 'self' data:",  # the pages' empty icon is a data: URL
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
# FastAPI's /docs and /redoc load Swagger UI and ReDoc from a CDN and start them with an
# inline script: those pages only, which show the OpenAPI and no data, get what they need.
DOCS_CSP = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net",
        "style-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net https://fonts.googleapis.com",
        "font-src 'self' https://fonts.gstatic.com",
        "img-src 'self' data: https://fastapi.tiangolo.com https://cdn.redoc.ly",
        "worker-src 'self' blob:",
        "frame-ancestors 'none'",
    ]
)
DOCS = frozenset({"/docs", "/docs/oauth2-redirect", "/redoc"})
_COMMON = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),  # frame-ancestors for browsers without CSP level 2
    (b"referrer-policy", b"same-origin"),
    (b"cross-origin-resource-policy", b"same-origin"),  # no reading by <script src> etc.
]
_HEADERS = [(b"content-security-policy", CSP.encode()), *_COMMON]
_DOCS_HEADERS = [(b"content-security-policy", DOCS_CSP.encode()), *_COMMON]


def headers_for(path: str) -> list[tuple[bytes, bytes]]:
    """The security headers of an answer to `path` (`kit/edge.Edge` puts them on)."""
    return _DOCS_HEADERS if path in DOCS else _HEADERS


def with_headers(
    headers: Iterable[tuple[bytes, bytes]], ours: list[tuple[bytes, bytes]]
) -> list[tuple[bytes, bytes]]:
    """An answer's headers with ours added, except those the route set itself."""
    headers = list(headers)
    present = {name.lower() for name, _ in headers}
    headers.extend(header for header in ours if header[0] not in present)
    return headers


class Hosts:
    """The names a request's Host may carry (`Settings.trusted_hosts()`): Starlette's
    `TrustedHostMiddleware`'s rule (exact names, `*.domain` wildcards, `*` for any), with the
    Host values seen allowed remembered, so that a request pays one set lookup, not a parse."""

    REMEMBERED = 64  # Host values (name and port) kept; a service answers to a handful

    def __init__(self, allowed: Iterable[str]) -> None:
        self.patterns = [pattern.lower() for pattern in allowed]
        self.any = "*" in self.patterns
        self._seen: set[bytes] = set()

    def allow(self, host: bytes | None) -> bool:
        if self.any or host in self._seen:
            return True
        parsed = parse_host_header(host.decode("latin-1") if host is not None else None)
        if parsed is None:
            return False
        name = parsed.host.lower()
        allowed = any(
            name == pattern or (pattern.startswith("*.") and name.endswith(pattern[1:]))
            for pattern in self.patterns
        )
        if allowed and host is not None and len(self._seen) < self.REMEMBERED:
            self._seen.add(host)
        return allowed


def why_refused(scope: Scope, headers: dict[bytes, bytes]) -> str | None:
    """Why an unsafe request is refused (403), or None: see the module's docstring."""
    site = headers.get(b"sec-fetch-site")
    if site is not None and site not in SAME:
        return "this action must come from this service's own pages, not from another site"
    origin = headers.get(b"origin") or _origin_of(headers.get(b"referer"))
    if origin is not None and origin.lower() != _own_origin(scope, headers):
        return "this action must come from this service's own pages, not from another origin"
    return _body_refused(headers)


def _body_refused(headers: dict[bytes, bytes]) -> str | None:
    content_type = media_type(headers.get(b"content-type", b"").decode("latin-1"))
    if content_type in FORM_TYPES:
        return None  # the pages take them; JSON routes do not (`refuse_form`, and FastAPI)
    if content_type == "application/json" or content_type.endswith("+json"):
        return None
    if not content_type and not _has_body(headers):
        return None
    named = content_type or "none"
    return f"a body of content type {named} is not accepted: send application/json"


def media_type(content_type: str) -> str:
    return content_type.split(";")[0].strip().lower()


async def refuse_form(request: Request) -> None:
    """The dependency of every body-less JSON action (`NO_FORM`): a form body is refused
    (403). `why_refused` lets forms through for the pages, and an action that reads no body
    would act on any; JSON routes with a body refuse a form anyway (422: not JSON). A route
    dependency, not an app-wide one: only these few routes pay for it (about 10 µs a request
    on every route, app-wide), and only after routing is the route known.
    `tests/integration/test_web_exposure.py` checks that every such route has it."""
    if media_type(request.headers.get("content-type", "")) in FORM_TYPES:
        raise HTTPException(403, "this address takes JSON (application/json), not a form")


NO_FORM = Depends(refuse_form)


def _has_body(headers: dict[bytes, bytes]) -> bool:
    length = headers.get(b"content-length")
    return b"transfer-encoding" in headers or (length is not None and length.strip() != b"0")


def _own_origin(scope: Scope, headers: dict[bytes, bytes]) -> bytes:
    scheme: str = scope.get("scheme", "http")
    return scheme.encode() + b"://" + headers.get(b"host", b"").lower()


def _origin_of(referer: bytes | None) -> bytes | None:
    if referer is None:
        return None
    parts = urlsplit(referer.decode("latin-1"))
    return f"{parts.scheme}://{parts.netloc}".lower().encode("latin-1")
