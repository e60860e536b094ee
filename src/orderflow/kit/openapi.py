"""The OpenAPI each service serves, telling the truth about its errors: every error status an
operation can answer, as the `application/problem+json` body (RFC 9457) that `kit.errors`
renders (403 for every unsafe method: kit/security.py), and numeric bounds as exact as the
checks behind them."""

from http import HTTPStatus
from typing import Any

from fastapi import FastAPI

from orderflow.kit.http import PROBLEM
from orderflow.kit.params import MAX_ID

_DESCRIPTIONS = {
    400: "The body cannot be read: not UTF-8, or JSON nested too deep",
    403: "A request another web page could have made: a browser's `Origin`, `Referer` or "
    "`Sec-Fetch-Site` of another origin, or a body that is not JSON (`text/plain`, a form, "
    "none named)",
    413: "The body is larger than the service accepts (`ORDERFLOW_MAX_BODY_BYTES`)",
    422: "Invalid input: each invalid parameter, header or body field is named in `errors`",
}
_FASTAPI_422 = "Validation Error"
_RETRY_AFTER = {
    "Retry-After": {
        "description": "seconds to wait before trying again",
        "schema": {"type": "integer", "minimum": 0},
    }
}

FIELD_ERROR_SCHEMA: dict[str, Any] = {
    "title": "FieldError",
    "type": "object",
    "properties": {
        "field": {
            "type": "string",
            "minLength": 1,
            "description": "a body field as a dotted path (`lines.0.quantity`), a parameter or "
            "header name, or `body` for the body as a whole",
        },
        "message": {"type": "string", "minLength": 1},
    },
    "required": ["field", "message"],
    "additionalProperties": False,
}

PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "description": "An error, as RFC 9457 problem details (`application/problem+json`), with "
    "the extension members this API sends.",
    "type": "object",
    "properties": {
        "type": {"type": "string", "const": "about:blank"},
        "title": {"type": "string", "minLength": 1, "description": "the status's phrase"},
        "status": {"type": "integer", "minimum": 400, "maximum": 599},
        "detail": {"type": "string", "minLength": 1, "description": "what went wrong, in words"},
        "instance": {"type": "string", "pattern": "^/", "description": "the request's path"},
        "errors": {
            "type": "array",
            "minItems": 1,
            "items": {"$ref": "#/components/schemas/FieldError"},
            "description": "422: every invalid field",
        },
        "field": {"type": "string", "description": "409: the field whose value is taken"},
        "order_status": {"type": "string", "description": "409: the order's current status"},
        "holder": {
            "anyOf": [{"type": "integer"}, {"type": "null"}],
            "description": "409 (MES): the operator who holds the order, if any",
        },
        "version": {
            "type": "integer",
            "description": "409 (MES): the order's current version, the fencing token",
        },
    },
    "required": ["type", "title", "status", "detail", "instance"],
    "additionalProperties": False,
}


def document_problems(app: FastAPI) -> None:
    """Make `app.openapi()` document the errors as they are answered: problem+json for every
    error status an operation declares, 422 for every operation with parameters or a body,
    400 and 413 for every body, 403 for every unsafe method; the `Problem` schema replaces
    FastAPI's `HTTPValidationError`."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            _with_problems(generate())
        return app.openapi_schema  # type: ignore[return-value]

    app.openapi = openapi  # type: ignore[method-assign]


def _with_problems(schema: dict[str, Any]) -> None:
    _exact_bounds(schema)
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    for unused in ("HTTPValidationError", "ValidationError"):
        components.pop(unused, None)
    components["FieldError"] = FIELD_ERROR_SCHEMA
    components["Problem"] = PROBLEM_SCHEMA
    for operations in schema.get("paths", {}).values():
        for method, operation in operations.items():
            if method in _UNSAFE:  # kit.security.why_refused
                operation.setdefault("responses", {}).setdefault("403", {})
            _document_operation(operation)


_UNSAFE = ("post", "put", "patch", "delete")
_BOUNDS = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum")


def _exact_bounds(node: Any) -> None:
    """FastAPI's OpenAPI model holds numeric bounds as floats: 2**63 - 1, the largest id,
    would read 2**63 and let one id too many through. Integral bounds become integers again,
    and that float becomes the largest id."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in _BOUNDS and isinstance(value, float) and value.is_integer():
                node[key] = MAX_ID if value == float(MAX_ID) else int(value)
            else:
                _exact_bounds(value)
    elif isinstance(node, list):
        for value in node:
            _exact_bounds(value)


def _document_operation(operation: dict[str, Any]) -> None:
    responses: dict[str, Any] = operation.setdefault("responses", {})
    if "requestBody" in operation:
        for status in (400, 413):
            responses.setdefault(str(status), {})
    for code, response in responses.items():
        status = int(code) if code.isdigit() else 0
        if status < 400:
            continue
        if status == 422 and response.get("description") in (None, _FASTAPI_422):
            response["description"] = _DESCRIPTIONS[422]
        elif "content" in response and status != 422:
            continue  # the operation documents an answer of its own (e.g. the health report)
        response.setdefault("description", _DESCRIPTIONS.get(status, HTTPStatus(status).phrase))
        response["content"] = {PROBLEM: {"schema": _problem_schema(status)}}
        if status == 503:
            response["headers"] = _RETRY_AFTER
    operation["responses"] = dict(sorted(responses.items()))


def _problem_schema(status: int) -> dict[str, Any]:
    this: dict[str, Any] = {"properties": {"status": {"const": status}}}
    if status == 422:
        this["required"] = ["errors"]
    return {"allOf": [{"$ref": "#/components/schemas/Problem"}, this]}
