"""Limit/offset query parameters and the `{"items": [...], "total": n}` list shape."""

from typing import Annotated, Any

from fastapi import Depends, Query
from pydantic import BaseModel


class Page(BaseModel):
    limit: int
    offset: int


def page_params(
    limit: Annotated[int, Query(ge=1, le=200, description="page size")] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000, description="rows to skip")] = 0,
) -> Page:
    return Page(limit=limit, offset=offset)


PageDep = Annotated[Page, Depends(page_params)]


def list_body(items: list[dict[str, Any]], total: int) -> dict[str, Any]:
    return {"items": items, "total": total}
