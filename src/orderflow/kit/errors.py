"""Domain errors and the one place that renders them as problem+json (RFC 9457); the OpenAPI
documents them so (`kit.openapi`)."""

import logging
from http import HTTPStatus
from typing import Any

import asyncpg
from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from orderflow.kit.http import PROBLEM, JSONBytes, Responses, dumps
from orderflow.kit.openapi import document_problems

log = logging.getLogger(__name__)


class OrderflowError(Exception):
    """Base of the errors services raise; each knows its HTTP status."""

    status = 500
    title = "Internal error"

    def __init__(self, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = extra


class NotFound(OrderflowError):
    status = 404
    title = "Not found"


class Conflict(OrderflowError):
    status = 409
    title = "Conflict"


class InvalidInput(OrderflowError):
    """Well-formed input that the data refuses (unknown referenced id, key reuse)."""

    status = 422
    title = "Invalid input"

    def __init__(self, detail: str, *, field: str, **extra: Any) -> None:
        super().__init__(detail, errors=[{"field": field, "message": detail}], **extra)


class Unavailable(OrderflowError):
    status = 503
    title = "Service unavailable"


def problem(status: int, title: str, detail: str, request: Request, /, **extra: Any) -> JSONBytes:
    standard = {"type": "about:blank", "title": title, "status": status, "detail": detail}
    body = {**extra, **standard, "instance": request.url.path}
    headers = {"Retry-After": "1"} if status == 503 else None
    return JSONBytes(dumps(body), status_code=status, media_type=PROBLEM, headers=headers)


def _field_name(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or str(loc[0] if loc else "body")


async def _on_domain(request: Request, exc: Exception) -> JSONBytes:
    assert isinstance(exc, OrderflowError)
    return problem(exc.status, exc.title, exc.detail, request, **exc.extra)


async def _on_validation(request: Request, exc: Exception) -> JSONBytes:
    assert isinstance(exc, RequestValidationError)
    errors = [{"field": _field_name(tuple(e["loc"])), "message": e["msg"]} for e in exc.errors()]
    detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
    return problem(422, "Invalid input", detail, request, errors=errors)


async def http_error(request: Request, exc: Exception) -> Response:
    """Framework-raised errors (404 route, 405, unparseable body) as problem+json too; as a page
    for a browser, when the app has pages (`app.state.error_pages`: kit knows no template)."""
    assert isinstance(exc, StarletteHTTPException)
    pages = getattr(request.app.state, "error_pages", None)
    response: Response | None = None
    if pages is not None and "text/html" in request.headers.get("accept", ""):
        response = pages(request, exc)
    if response is None:
        title = HTTPStatus(exc.status_code).phrase
        response = problem(exc.status_code, title, str(exc.detail), request)
    response.headers.update(exc.headers or {})
    if exc.status_code == 405 and (allowed := _allowed_methods(request)):
        response.headers["Allow"] = allowed
    return response


_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT")


def _allowed_methods(request: Request) -> str:
    """Every method some route serves at this path (RFC 9110: a 405 lists them in `Allow`);
    Starlette would name only those of the first route that matched the path."""
    routes = request.app.router.routes
    allowed = [
        method
        for method in _METHODS
        if any(
            route.matches({**request.scope, "method": method})[0] is Match.FULL for route in routes
        )
    ]
    return ", ".join(allowed)


async def _on_database_down(request: Request, exc: Exception) -> JSONBytes:
    log.warning("database unavailable: %s", exc)
    return problem(503, "Service unavailable", "the database is unreachable", request)


async def _on_unexpected(request: Request, exc: Exception) -> JSONBytes:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return problem(500, "Internal error", "unexpected error; it has been logged", request)


# SQLSTATEs that say the server cannot serve now, not that the statement was wrong: connection
# exceptions (08), insufficient resources (53: too many connections), shutting down, crashed or
# starting up (57P01-57P03), a statement cancelled by its timeout (57014), and a write sent to
# a server that is a standby (25006: a PostgreSQL failover under way, the pooled connection still
# on the demoted primary).
UNAVAILABLE_SQLSTATES = ("08", "53", "57P01", "57P02", "57P03", "57014", "25006")


def is_connection_error(exc: BaseException) -> bool:
    """True when `exc` means PostgreSQL could not be reached, not that a statement was wrong."""
    if isinstance(
        exc, InterfaceError | OperationalError | PoolTimeoutError | OSError | TimeoutError
    ):
        return True
    if isinstance(exc, DBAPIError):
        orig = getattr(exc.orig, "__cause__", None) or exc.orig
        return _unreachable(orig) or exc.connection_invalidated
    return _unreachable(exc)


def _unreachable(error: BaseException | None) -> bool:
    if isinstance(
        error,
        asyncpg.exceptions.PostgresConnectionError
        | asyncpg.exceptions.ConnectionDoesNotExistError
        | OSError
        | TimeoutError,
    ):
        return True
    return str(getattr(error, "sqlstate", "") or "").startswith(UNAVAILABLE_SQLSTATES)


def is_bad_value(exc: BaseException) -> bool:
    """True when PostgreSQL (or asyncpg, encoding it) refused a value the client sent: a NUL
    in a text, a date beyond PostgreSQL's range (SQLSTATE class 22, "data exception")."""
    if not isinstance(exc, DBAPIError):
        return False
    orig = getattr(exc.orig, "__cause__", None) or exc.orig
    if isinstance(orig, asyncpg.exceptions.DataError):
        return True
    return str(getattr(orig, "sqlstate", "") or "").startswith("22")


async def _on_dbapi(request: Request, exc: Exception) -> JSONBytes:
    if is_connection_error(exc):
        return await _on_database_down(request, exc)
    if is_bad_value(exc):
        detail = "a value cannot be stored: text may not contain NUL, dates must be in range"
        return problem(
            422, "Invalid input", detail, request, errors=[{"field": "body", "message": detail}]
        )
    return await _on_unexpected(request, exc)


UNAVAILABLE: Responses = {
    503: {"description": "PostgreSQL is unreachable: retry after `Retry-After` seconds"}
}
"""A router's `responses` when its operations read or write PostgreSQL."""


def install_handlers(app: FastAPI) -> None:
    """Every error answers problem+json; the app's OpenAPI says so (`document_problems`)."""
    app.add_exception_handler(OrderflowError, _on_domain)
    app.add_exception_handler(RequestValidationError, _on_validation)
    app.add_exception_handler(StarletteHTTPException, http_error)
    for exc_type in (DBAPIError, PoolTimeoutError, OSError, TimeoutError):
        app.add_exception_handler(exc_type, _on_dbapi)
    app.add_exception_handler(asyncpg.exceptions.PostgresConnectionError, _on_database_down)
    app.add_exception_handler(Exception, _on_unexpected)
    document_problems(app)
