"""Responses built from ready JSON bytes: what the cache stores is what goes on the wire."""

from typing import Any

import orjson
from fastapi import Response

PROBLEM = "application/problem+json"


def dumps(value: Any) -> bytes:
    return orjson.dumps(value)


class JSONBytes(Response):
    """A JSON response whose body is already serialised."""

    media_type = "application/json"


Responses = dict[int | str, dict[str, Any]]  # documented error responses of a route
