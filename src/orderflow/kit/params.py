"""Path parameters shared by the routers: ids are positive 63-bit integers, in plain digits."""

from typing import Annotated

from fastapi import Path
from pydantic import BeforeValidator

NO_NUL = r"^[^\x00]*$"  # PostgreSQL text cannot hold U+0000: refuse it as the field it is in


def _digits_only(value: object) -> object:
    # int() would also take "1_0", "+1", " 1" and other scripts' digits; an id is plain digits.
    if isinstance(value, str) and not (value.isascii() and value.isdigit()):
        raise ValueError("an id is written in digits 0-9 only")
    return value


Id = Annotated[
    int,
    BeforeValidator(_digits_only),
    Path(ge=1, le=2**63 - 1, description="a positive integer id"),
]
