"""Server-rendered pages: Jinja2 templates, errors as pages, forms, the static files.

A page route calls the same domain service as its JSON twin and parses the JSON bytes it
returns; only presentation lives here. Page routers use `PageRoute`, so a refusal on a page
answers as a page in words (404, 409, 422 naming the field, 503), while the JSON routes keep
the problem+json handlers of `kit.errors`.
"""

from collections.abc import Callable, Coroutine, Iterable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import jinja2
import orjson
from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.routing import APIRoute
from fastapi.staticfiles import StaticFiles
from pydantic import ValidationError
from starlette.exceptions import HTTPException

from orderflow.kit.errors import OrderflowError, is_bad_value, is_connection_error

COMMON = Path(__file__).parent / "templates"
STATIC = Path(__file__).parent.parent / "static"
NO_STORE = {"Cache-Control": "no-store"}
CURRENCY = "EUR"  # every price is in euro cents: the catalogue has one currency
CURRENCY_SIGN = "€"
FRAMEWORK = {
    404: ("Not found", "There is no page at this address."),
    405: ("Not possible here", "This address does not take this action."),
}
FORM = "application/x-www-form-urlencoded"  # what the pages' forms and htmx send


class FormError(Exception):
    """A form field a person filled in wrongly (422, the field named)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def money(cents: int) -> str:
    return f"{cents // 100:,}.{cents % 100:02d}"


def priced(cents: int) -> str:
    """An amount as pages show it: with its currency."""
    return f"{CURRENCY_SIGN}{money(cents)}"


def label(status: str) -> str:
    return status.replace("_", " ")


class Templates:
    """One face's templates over the shared ones (`base.html`, `error.html`, the dashboard)."""

    def __init__(self, *directories: Path) -> None:
        loader = jinja2.FileSystemLoader([*directories, COMMON])
        self.env = jinja2.Environment(loader=loader, autoescape=True, trim_blocks=True)
        self.env.filters.update(money=priced, label=label)
        self.env.globals.update(currency=CURRENCY)

    def render(self, name: str, **context: Any) -> str:
        return self.env.get_template(name).render(**context)

    def page(self, name: str, status_code: int = 200, **context: Any) -> HTMLResponse:
        return HTMLResponse(self.render(name, **context), status_code=status_code, headers=NO_STORE)


SHARED = Templates()


def loads(body: bytes) -> Any:
    """What a domain service answered (ready JSON bytes), as Python values."""
    return orjson.loads(body)


async def form_fields(request: Request) -> dict[str, list[str]]:
    """An urlencoded form body; repeated names keep every value, in order.

    Any other body is refused (415), `text/plain` above all: it is what a form on another
    site can send (`enctype="text/plain"`), and it would otherwise parse as the same fields.
    `kit.security.why_refused` refuses it before; this keeps the parser honest on its own.
    """
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != FORM:
        raise HTTPException(415, f"a form is sent as {FORM}")
    body = (await request.body()).decode("utf-8", errors="replace")
    return parse_qs(body, keep_blank_values=True, max_num_fields=1000)


def first(fields: dict[str, list[str]], name: str, default: str = "") -> str:
    values = fields.get(name)
    return values[0].strip() if values else default


def whole(value: str, field: str, *, low: int = 1, high: int = 2**63 - 1) -> int:
    """A whole number typed into a form field, or a 422 naming that field."""
    if not (value.isascii() and value.isdigit()) or not low <= int(value) <= high:
        raise FormError(field, f"must be a whole number from {low} to {high}")
    return int(value)


def sse_frame(event: str, html: str, event_id: str = "") -> bytes:
    """One Server-Sent Event carrying HTML for htmx's SSE extension to swap in."""
    head = f"id: {event_id}\n" if event_id else ""
    data = "".join(f"data: {line}\n" for line in html.splitlines() if line.strip())
    return f"{head}event: {event}\n{data}\n".encode()


def is_htmx(request: Request) -> bool:
    return request.headers.get("HX-Request") == "true"


def see_other(url: str) -> RedirectResponse:
    """After a form POST without JavaScript: the next page, by GET (post/redirect/get)."""
    return RedirectResponse(url, status_code=303, headers=NO_STORE)


def _validation_fields(errors: Iterable[Any]) -> list[tuple[str, str]]:
    skip = ("body", "query", "path", "header", "cookie")
    found = []
    for error in errors:
        field = ".".join(str(p) for p in error.get("loc", ()) if p not in skip) or "input"
        found.append((field, str(error.get("msg", "is not valid"))))
    return found


def _explain(exc: Exception) -> tuple[int, str, str, list[tuple[str, str]]] | None:
    """(status, title, words, fields) for the errors a person can meet; None: not ours."""
    if isinstance(exc, FormError):
        return 422, "Please check the form", "A value is not valid.", [(exc.field, exc.message)]
    if isinstance(exc, RequestValidationError | ValidationError):
        fields = _validation_fields(exc.errors())
        return 422, "Please check the form", "Some values are not valid.", fields
    if isinstance(exc, OrderflowError):
        fields = [(e["field"], e["message"]) for e in exc.extra.get("errors", [])]
        if not fields and "field" in exc.extra:  # a conflict on one field (an email taken)
            fields = [(str(exc.extra["field"]), exc.detail)]
        titles = {404: "Not found", 409: "Not possible now", 422: "Please check the form"}
        return exc.status, titles.get(exc.status, exc.title), exc.detail, fields
    if isinstance(exc, HTTPException):  # the framework's: no route, or not this method
        if exc.status_code == 403:  # kit.security: not from this service's own pages
            return 403, "Refused", f"Refused: {exc.detail}.", []
        return exc.status_code, *FRAMEWORK.get(exc.status_code, ("Error", exc.detail)), []
    if is_connection_error(exc):
        return 503, "Unavailable", "The database is unavailable, try again in a moment.", []
    if is_bad_value(exc):
        return 422, "Please check the form", "A value cannot be stored.", []
    return None


def field_errors(exc: Exception) -> dict[str, str] | None:
    """A refused form's messages by field name, to show beside each field with what was
    typed; None when `exc` is not about the form's values (then an error page answers)."""
    explained = _explain(exc)
    if explained is None or explained[0] not in (409, 422) or not explained[3]:
        return None
    return {field: message for field, message in reversed(explained[3])}


def error_page(request: Request, exc: Exception) -> HTMLResponse | None:
    explained = _explain(exc)
    if explained is None:
        return None
    status, title, words, fields = explained
    if status == 422 and request.method == "GET":
        title = "This address is not valid"
    context = {"status": status, "title": title, "words": words, "fields": fields}
    headers = {**NO_STORE, **({"Retry-After": "1"} if status == 503 else {})}
    if is_htmx(request):  # into the page's notice area, not a whole page
        html = SHARED.render("notice.html", **context)
        return HTMLResponse(html, status_code=status, headers=headers)
    html = SHARED.render("error.html", service=service_of(request), **context)
    return HTMLResponse(html, status_code=status, headers=headers)


def for_people(app: FastAPI) -> FastAPI:
    """Let `kit.errors` answer a browser's framework errors (an unknown address, a method the
    path does not serve) with a page too; API clients keep problem+json."""
    app.state.error_pages = error_page
    return app


def service_of(request: Request) -> str:
    return str(request.app.title).rsplit(" ", 1)[-1]


class PageRoute(APIRoute):
    """A route whose refusals answer as pages for people, not as problem+json; the only
    routes that take forms (`form_fields`)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def page_handler(request: Request) -> Response:
            try:
                return await handler(request)
            except Exception as exc:
                page = error_page(request, exc)
                if page is None:
                    raise
                return page

        return page_handler


def page_router() -> APIRouter:
    """A router for pages: errors as pages, and kept out of the OpenAPI (the JSON contract)."""
    return APIRouter(route_class=PageRoute, include_in_schema=False)


def static_router() -> APIRouter:
    """`/static/`: the shared CSS and scripts and the vendored libraries, all from the package."""
    router = APIRouter(include_in_schema=False)
    router.mount("/static", StaticFiles(directory=STATIC), name="static")
    return router
