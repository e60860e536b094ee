"""Client shapes."""

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, EmailStr, Field, field_validator

from orderflow.data.shopdb import Client
from orderflow.kit.params import NO_NUL

Name = Field(min_length=1, max_length=200, pattern=NO_NUL)
Phone = Field(default=None, max_length=40, pattern=r"^\+?[0-9 ()-]{3,40}$")


class ClientIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: str = Name
    email: EmailStr
    phone: str | None = Phone


class ClientPatch(BaseModel):
    """Only the fields sent change; `phone` may be cleared with null, the others may not."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: str | None = Field(None, min_length=1, max_length=200, pattern=NO_NUL)
    email: EmailStr | None = None
    phone: str | None = Phone

    @field_validator("name", "email", mode="before")
    @classmethod
    def _not_null(cls, value: object) -> object:
        if value is None:
            raise ValueError("may not be null")
        return value


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
