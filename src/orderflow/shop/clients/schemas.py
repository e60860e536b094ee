"""Client shapes."""

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, EmailStr, Field

from orderflow.data.shopdb import Client

Name = Field(min_length=1, max_length=200)
Phone = Field(default=None, max_length=40, pattern=r"^\+?[0-9 ()-]{3,40}$")


class ClientIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: str = Name
    email: EmailStr
    phone: str | None = Phone


class ClientPatch(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: str | None = Field(None, min_length=1, max_length=200)
    email: EmailStr | None = None
    phone: str | None = Phone


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
