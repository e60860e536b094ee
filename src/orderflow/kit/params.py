"""Parameters and fields shared by the routers and schemas, each documented in the OpenAPI as
exactly what it accepts.

Ids are positive 63-bit integers in plain digits (path and query); integers in a body are JSON
integers; moments are RFC 3339 date-times (the ISO 8601 profile: date, `T`, time, UTC offset)
between the years 0002 and 9998; texts are checked as sent, then stored without the white space
around them.
"""

import re
from typing import Annotated, Any

from fastapi import Path
from pydantic import AfterValidator, AwareDatetime, BeforeValidator, Field, WithJsonSchema

NO_NUL = r"^[^\x00]*$"  # PostgreSQL text cannot hold U+0000: refuse it as the field it is in
# White space, one explicit set for the schema (ECMA regex), the check (Rust regex) and the trim
# alike: Unicode's White_Space (the regex engines' `\s` and Python's `str.strip()` each differ).
SPACES = "\t\n\x0b\x0c\r \x85\xa0\u1680" + "".join(map(chr, range(0x2000, 0x200B)))
SPACES += "\u2028\u2029\u202f\u205f\u3000"
_SPACE = r"\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
NOT_BLANK = rf"^[^\x00]*[^{_SPACE}\x00][^\x00]*$"  # no NUL, and more than white space
MAX_ID = 2**63 - 1  # PostgreSQL bigint


def _digits_only(value: object) -> object:
    # int() would also take "1_0", "+1", " 1" and other scripts' digits; an id is plain digits.
    if isinstance(value, str) and not (value.isascii() and value.isdigit()):
        raise ValueError("an id is written in digits 0-9 only")
    return value


def _count_digits_only(value: object) -> object:
    if isinstance(value, str) and not (value.isascii() and value.isdigit()):
        raise ValueError("a count is written in digits 0-9 only")
    return value


def _json_integer(value: object) -> object:
    # JSON Schema's integer: a number without a fraction (2 or 2.0), never `true` or "2",
    # which pydantic's lax mode would take; its strict mode would refuse 2.0.
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError("must be a JSON integer")
    return value


JSON_INTEGER = BeforeValidator(_json_integer)
JsonInt = Annotated[int, JSON_INTEGER]
"""An integer in a JSON body: `quantity: JsonInt = Field(ge=1)`; inside another annotation
the bounds go before the validator: `Annotated[int, Field(ge=1), JSON_INTEGER] | None`."""

# The FastAPI marker comes before the validator: after it, its bounds would be documented under
# pydantic's names (`ge`, `le`) instead of JSON Schema's (`minimum`, `maximum`).
Id = Annotated[
    int,
    Path(ge=1, le=MAX_ID, description="a positive integer id"),
    BeforeValidator(_digits_only),
]
"""A path id."""

QueryId = Annotated[int, Field(ge=1, le=MAX_ID), BeforeValidator(_digits_only)]
"""An id in the query string: `Annotated[QueryId | None, Query(...)] = None`."""

Digits = BeforeValidator(_count_digits_only)
"""Plain digits for a count in the query string (`limit`, `offset`): not `+1`, `1.0`, `1_0`."""

_YEAR = r"(000[2-9]|00[1-9][0-9]|0[1-9][0-9]{2}|[1-8][0-9]{3}|9[0-8][0-9]{2}|99[0-8][0-9]|999[0-8])"
_OFFSET = r"([Zz]|[+-]([01][0-9]|2[0-3]):[0-5][0-9])"
RFC3339 = (
    rf"^{_YEAR}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])"
    rf"[Tt]([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]+)?{_OFFSET}$"
)
_RFC3339 = re.compile(RFC3339)


def _rfc3339(value: object) -> object:
    # Pydantic alone would also read 20260101 as a Unix timestamp, and take dates without a
    # time, times without seconds or an offset, a space for the `T`, years beyond 9999.
    if not isinstance(value, str) or _RFC3339.fullmatch(value) is None:
        raise ValueError(
            "must be an ISO 8601 date-time with a UTC offset (RFC 3339), years 0002 to 9998, "
            "e.g. 2026-01-01T00:00:00Z"
        )
    return value


# Years 0002-9998 in local time stay within 0001-9999 in UTC: what Python and PostgreSQL hold.
Moment = Annotated[
    AwareDatetime,
    BeforeValidator(_rfc3339),
    WithJsonSchema({"type": "string", "format": "date-time", "pattern": RFC3339}),
]
"""A moment in the query string: `Annotated[Moment | None, Query(...)] = None`."""


def _not_null(value: object) -> object:
    if value is None:
        raise ValueError("may not be null: leave the field out to keep it as it is")
    return value


def _documented_not_null(schema: dict[str, Any]) -> None:
    branches = [b for b in schema.pop("anyOf", []) if b != {"type": "null"}]
    if len(branches) == 1:
        schema.update(branches[0])
    schema.pop("default", None)


NOT_NULL = BeforeValidator(_not_null)
"""For a body field that may be left out but not sent as null:
`name: Annotated[Name | None, NOT_NULL] = left_out()`."""


def left_out() -> Any:
    """The default of a `NOT_NULL` field: absent. Documented as the type without `null`."""
    return Field(None, json_schema_extra=_documented_not_null)


def _text(value: str) -> str:
    if "\x00" in value:  # PostgreSQL text cannot hold it: refused as the field it is in
        raise ValueError("may not contain U+0000 (NUL)")
    return value.strip(SPACES)


def _filled_text(value: str) -> str:
    value = _text(value)
    if not value:
        raise ValueError("may not be blank")
    return value


TEXT = AfterValidator(_text)
"""A text is checked as sent (its length, no NUL), then stored without surrounding white
space: `Annotated[str, Field(max_length=n, json_schema_extra={"pattern": NO_NUL}), TEXT]`."""
FILLED = AfterValidator(_filled_text)
"""The same, and not blank: `..., json_schema_extra={"pattern": NOT_BLANK}), FILLED]`."""

Name = Annotated[str, Field(max_length=200, json_schema_extra={"pattern": NOT_BLANK}), FILLED]
"""A name: at most 200 characters as sent, not blank, no NUL; trimmed."""
