"""Path ids (kit/params.py) and limit/offset paging (kit/pagination.py), through a tiny
in-process FastAPI app: the constraints live in FastAPI's Path/Query, which only it applies."""

from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pydantic import TypeAdapter, ValidationError

from orderflow.kit.pagination import Page, PageDep, list_body
from orderflow.kit.params import Id

MAX_ID = 2**63 - 1
app = FastAPI()


@app.get("/things/{thing_id}")
def get_thing(thing_id: Id) -> dict[str, int]:
    return {"id": thing_id}


@app.get("/things")
def list_things(page: PageDep) -> dict[str, Any]:
    return list_body([page.model_dump()], 1)


async def get(path: str) -> httpx.Response:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://unit") as client:
        return await client.get(path)


@pytest.mark.parametrize(
    ("raw", "value"), [("1", 1), ("42", 42), ("00042", 42), (str(MAX_ID), MAX_ID)]
)
async def test_an_id_in_plain_digits_is_accepted(raw: str, value: int) -> None:
    response = await get(f"/things/{raw}")
    assert response.status_code == 200
    assert response.json() == {"id": value}


@pytest.mark.parametrize(
    "raw",
    [
        "0",
        "-1",
        "+1",
        "1_0",
        "1.0",
        "1e3",
        "0x10",
        "%201",  # " 1"
        "1%20",  # "1 "
        "%D9%A3",  # ARABIC-INDIC DIGIT THREE
        "%EF%BC%91",  # FULLWIDTH DIGIT ONE
        "%C2%B2",  # SUPERSCRIPT TWO
        "abc",
        str(MAX_ID + 1),
        "9" * 5000,  # beyond Python's int-parsing limit: still a 422, not a 500
    ],
)
async def test_anything_else_is_a_422(raw: str) -> None:
    assert (await get(f"/things/{raw}")).status_code == 422


@pytest.mark.parametrize("raw", ["+1", " 1", "1 ", "1_0", "\u0663", "\uff11", "\u00b2", "", "-0"])
def test_the_id_type_refuses_non_ascii_digits_and_signs(raw: str) -> None:
    with pytest.raises(ValidationError, match="digits 0-9 only"):
        TypeAdapter(Id).validate_python(raw)


async def test_paging_defaults() -> None:
    assert (await get("/things")).json() == {"items": [{"limit": 50, "offset": 0}], "total": 1}


@pytest.mark.parametrize(
    ("query", "page"),
    [("limit=1", (1, 0)), ("limit=200&offset=1000000", (200, 1_000_000)), ("offset=0", (50, 0))],
)
async def test_paging_within_bounds(query: str, page: tuple[int, int]) -> None:
    response = await get(f"/things?{query}")
    assert response.status_code == 200
    assert response.json()["items"] == [{"limit": page[0], "offset": page[1]}]


@pytest.mark.parametrize(
    "query", ["limit=0", "limit=201", "limit=-1", "offset=-1", "offset=1000001", "limit=x"]
)
async def test_paging_out_of_bounds_is_a_422(query: str) -> None:
    assert (await get(f"/things?{query}")).status_code == 422


def test_the_list_shape() -> None:
    assert list_body([], 0) == {"items": [], "total": 0}
    assert list_body([{"id": 1}], 7) == {"items": [{"id": 1}], "total": 7}
    assert Page(limit=5, offset=10).model_dump() == {"limit": 5, "offset": 10}
