"""Shop endpoints: success and error paths, against real PostgreSQL."""

import httpx
import pytest

from tests.factories import assert_problem, new_client, new_order


async def test_items_list_filters_by_category_and_name(shop: httpx.AsyncClient) -> None:
    first = (await shop.get("/items", params={"limit": 5})).json()
    assert len(first["items"]) == 5 and first["total"] >= 60
    category = first["items"][0]["category"]
    by_category = (await shop.get("/items", params={"category": category, "limit": 200})).json()
    assert by_category["items"] and all(i["category"] == category for i in by_category["items"])
    assert by_category["total"] == len(by_category["items"])
    word = first["items"][0]["name"].split()[0]
    by_name = (await shop.get("/items", params={"q": word})).json()
    assert all(word.lower() in i["name"].lower() for i in by_name["items"])


async def test_items_search_treats_wildcards_literally(shop: httpx.AsyncClient) -> None:
    response = await shop.get("/items", params={"q": "%_%"})
    assert response.status_code == 200
    assert response.json() == {"items": [], "total": 0}


async def test_item_by_id_and_errors(shop: httpx.AsyncClient) -> None:
    item = (await shop.get("/items/1")).json()
    assert item["id"] == 1 and item["price"] > 0 and item["version"] >= 1
    assert_problem(await shop.get("/items/99999999"), 404)
    assert_problem(await shop.get("/items/abc"), 422, "item_id")
    assert_problem(await shop.get("/items/0"), 422, "item_id")
    assert_problem(await shop.get("/items", params={"limit": 0}), 422, "limit")
    assert_problem(await shop.get("/items", params={"offset": -1}), 422, "offset")


async def test_client_create_read_patch(shop: httpx.AsyncClient) -> None:
    client = await new_client(shop, name="Ada")
    assert (await shop.get(f"/clients/{client['id']}")).json() == client
    patched = await shop.patch(f"/clients/{client['id']}", json={"name": "Ada L."})
    assert patched.status_code == 200
    assert patched.json()["name"] == "Ada L." and patched.json()["version"] == client["version"] + 1
    assert (await shop.get(f"/clients/{client['id']}")).json()["name"] == "Ada L."


async def test_client_errors(shop: httpx.AsyncClient) -> None:
    client = await new_client(shop)
    other = await new_client(shop)
    dup = await shop.post("/clients", json={"name": "X", "email": client["email"]})
    assert_problem(dup, 409)
    taken = await shop.patch(f"/clients/{other['id']}", json={"email": client["email"]})
    assert_problem(taken, 409)
    assert (await shop.get(f"/clients/{other['id']}")).json() == other
    assert_problem(await shop.post("/clients", json={"name": "X", "email": "nope"}), 422, "email")
    assert_problem(await shop.post("/clients", json={"email": "a@b.co"}), 422, "name")
    assert_problem(await shop.patch("/clients/99999999", json={"name": "X"}), 404)
    assert_problem(await shop.get("/clients/99999999"), 404)
    extra = await shop.patch(f"/clients/{other['id']}", json={"id": 5})
    assert_problem(extra, 422, "id")


async def test_place_and_read_order(shop: httpx.AsyncClient) -> None:
    client = await new_client(shop)
    lines = [{"item_id": 2, "quantity": 3}, {"item_id": 5, "quantity": 1}]
    order = await new_order(shop, client_id=client["id"], lines=lines)
    prices = {i: (await shop.get(f"/items/{i}")).json()["price"] for i in (2, 5)}
    assert order["status"] == "created" and order["version"] == 1
    assert order["total"] == 3 * prices[2] + prices[5]
    assert [line["unit_price"] for line in order["lines"]] == [prices[2], prices[5]]
    assert (await shop.get(f"/orders/{order['id']}")).json() == order
    listed = (await shop.get(f"/clients/{client['id']}/orders")).json()
    assert listed == {"items": [order], "total": 1}


async def test_idempotency_key_returns_the_same_order(shop: httpx.AsyncClient) -> None:
    client = await new_client(shop)
    first = await new_order(shop, client_id=client["id"], key="key-same-1")
    body = {"client_id": client["id"], "lines": [{"item_id": 1, "quantity": 2}]}
    again = await shop.post("/orders", json=body, headers={"Idempotency-Key": "key-same-1"})
    assert again.status_code == 200 and again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == first
    other_body = {"client_id": client["id"], "lines": [{"item_id": 1, "quantity": 3}]}
    refused = await shop.post("/orders", json=other_body, headers={"Idempotency-Key": "key-same-1"})
    assert_problem(refused, 422, "Idempotency-Key")
    assert (await shop.get(f"/clients/{client['id']}/orders")).json()["total"] == 1


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"client_id": 99999999, "lines": [{"item_id": 1, "quantity": 1}]}, "client_id"),
        ({"client_id": 1, "lines": [{"item_id": 99999999, "quantity": 1}]}, "lines.0.item_id"),
        ({"client_id": 1, "lines": []}, "lines"),
        ({"client_id": 1, "lines": [{"item_id": 1, "quantity": 0}]}, "lines.0.quantity"),
        ({"client_id": 1, "lines": [{"item_id": 1, "quantity": -5}]}, "lines.0.quantity"),
        ({"client_id": 1, "lines": [{"item_id": 1, "quantity": 10**12}]}, "lines.0.quantity"),
        (
            {"client_id": "1; DROP TABLE orders", "lines": [{"item_id": 1, "quantity": 1}]},
            "client_id",
        ),
        ({"lines": [{"item_id": 1, "quantity": 1}]}, "client_id"),
    ],
)
async def test_bad_orders_are_refused_and_change_nothing(
    shop: httpx.AsyncClient, body: dict[str, object], field: str
) -> None:
    before = (await shop.get("/clients/1/orders")).json()["total"]
    assert_problem(await shop.post("/orders", json=body), 422, field)
    assert (await shop.get("/clients/1/orders")).json()["total"] == before


async def test_malformed_json_and_oversized_body(shop: httpx.AsyncClient) -> None:
    headers = {"content-type": "application/json"}
    assert_problem(await shop.post("/orders", content=b"{not json", headers=headers), 422)
    huge = b'{"client_id": 1, "lines": [' + b'{"item_id": 1, "quantity": 1},' * 5000 + b"]}"
    assert_problem(await shop.post("/orders", content=huge, headers=headers), 413)
    deep = b"[" * 10_000 + b"]" * 10_000
    assert_problem(await shop.post("/orders", content=deep, headers=headers), 400)
    assert_problem(await shop.get("/no-such-route"), 404)
    assert_problem(await shop.delete("/orders/1"), 405)


async def test_client_cancels_created_order_once(shop: httpx.AsyncClient) -> None:
    order = await new_order(shop)
    cancelled = await shop.post(f"/orders/{order['id']}/cancel")
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    again = assert_problem(await shop.post(f"/orders/{order['id']}/cancel"), 409)
    assert again["order_status"] == "cancelled"
    assert_problem(await shop.post("/orders/99999999/cancel"), 404)
    assert_problem(await shop.get("/orders/99999999"), 404)
    assert_problem(await shop.get("/clients/99999999/orders"), 404)
