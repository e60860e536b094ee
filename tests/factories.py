"""Small keyword-only factories over the HTTP API."""

import uuid
from typing import Any

import httpx


async def new_client(shop: httpx.AsyncClient, *, name: str = "Test Client") -> dict[str, Any]:
    email = f"{uuid.uuid4().hex[:12]}@example.com"
    response = await shop.post("/clients", json={"name": name, "email": email})
    assert response.status_code == 201, response.text
    return dict(response.json())


async def new_order(
    shop: httpx.AsyncClient,
    *,
    client_id: int | None = None,
    lines: list[dict[str, int]] | None = None,
    key: str | None = None,
) -> dict[str, Any]:
    if client_id is None:
        client_id = (await new_client(shop))["id"]
    body = {"client_id": client_id, "lines": lines or [{"item_id": 1, "quantity": 2}]}
    headers = {"Idempotency-Key": key} if key else {}
    response = await shop.post("/orders", json=body, headers=headers)
    assert response.status_code == 201, response.text
    return dict(response.json())


async def seeded_order_id(shop: httpx.AsyncClient, *, client_id: int) -> int:
    """The id of one of a seeded client's orders (ids carry the client's slot: never guess one)."""
    listed = await shop.get(f"/clients/{client_id}/orders")
    assert listed.status_code == 200 and listed.json()["items"], listed.text
    return int(listed.json()["items"][-1]["id"])


async def new_item(
    crm: httpx.AsyncClient, *, category: str = "Tests", price: int = 1234
) -> dict[str, Any]:
    body = {"name": f"Item {uuid.uuid4().hex[:6]}", "category": category, "price": price}
    response = await crm.post("/items", json=body)
    assert response.status_code == 201, response.text
    return dict(response.json())


def assert_problem(
    response: httpx.Response, status: int, field: str | None = None
) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = dict(response.json())
    assert body["status"] == status
    assert body["title"] and body["detail"]
    if field is not None:
        assert field in [e["field"] for e in body["errors"]], body
    return body
