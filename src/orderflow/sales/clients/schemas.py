"""Client shapes."""

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Annotated, Any

from email_validator import SPECIAL_USE_DOMAIN_NAMES
from pydantic import BaseModel, ConfigDict, EmailStr, Field

from orderflow.data.shopdb import Client
from orderflow.kit.params import NOT_NULL, Name, left_out


def _any_case(name: str) -> str:
    return "".join(f"[{c}{c.upper()}]" if c.isalpha() else re.escape(c) for c in name)


# An address that can receive mail: not in a special-use domain (RFC 6761: `.test`,
# `.invalid`, `.localhost`...), which the email validator refuses.
DELIVERABLE = rf"^[^@]*@(?!(.*\.)?({'|'.join(map(_any_case, SPECIAL_USE_DOMAIN_NAMES))})$)"
Email = Annotated[EmailStr, Field(json_schema_extra={"pattern": DELIVERABLE})]
# 3 to 40 digits, spaces, parentheses and hyphens, after an optional +; no space at either end
Phone = Annotated[str, Field(max_length=40, pattern=r"^\+?[0-9()-][0-9 ()-]{1,38}[0-9()-]$")]


class ClientIn(BaseModel):
    """The fields as sent; the name is stored without its surrounding white space."""

    model_config = ConfigDict(extra="forbid")

    name: Name
    email: Email
    phone: Phone | None = None


class ClientPatch(BaseModel):
    """Only the fields sent change; `phone` may be cleared with null, the others may not."""

    model_config = ConfigDict(extra="forbid")

    name: Annotated[Name | None, NOT_NULL] = left_out()
    email: Annotated[Email | None, NOT_NULL] = left_out()
    phone: Phone | None = None


class ClientOut(BaseModel):
    id: int
    name: str
    email: str
    phone: str | None
    version: int
    created_at: datetime
    updated_at: datetime


def client_dict(client: Client) -> dict[str, Any]:
    return {
        "id": client.id,
        "name": client.name,
        "email": client.email,
        "phone": client.phone,
        "version": client.version,
        "created_at": client.created_at,
        "updated_at": client.updated_at,
    }


def client_row_dict(row: Mapping[str, Any]) -> dict[str, Any]:
    """`client_dict` of a row of `repository.CLIENT_BY_ID`: the same JSON as an entity's."""
    return {
        "id": row["id"],
        "name": row["name"],
        "email": row["email"],
        "phone": row["phone"],
        "version": row["version"],
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
    }
