"""Limit/offset query parameters and the `{"items": [...], "total": n}` list shape."""

from typing import Annotated, Any

from fastapi import Depends, Query
from pydantic import BaseModel

from orderflow.kit.params import Digits


class Page(BaseModel):
    limit: int
    offset: int


async def page_params(
    limit: Annotated[int, Query(ge=1, le=200, description="page size"), Digits] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000, description="rows to skip"), Digits] = 0,
) -> Page:
    return Page(limit=limit, offset=offset)


PageDep = Annotated[Page, Depends(page_params)]


def list_body(items: list[dict[str, Any]], total: int) -> dict[str, Any]:
    return {"items": items, "total": total}
