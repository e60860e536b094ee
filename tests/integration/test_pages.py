"""The screens over HTTP, without a browser: pages in HTML, refusals as pages in words, the JSON
API unchanged (problem+json, and no page in the OpenAPI), idempotent ordering from the form."""

import re
import time

import httpx
import orjson

from orderflow.kit.embedded import free_port
from orderflow.kit.settings import Settings
from tests.clients import api
from tests.factories import assert_problem

FORM = {"content-type": "application/x-www-form-urlencoded"}


def is_page(response: httpx.Response, status: int) -> str:
    assert response.status_code == status, response.text[:300]
    assert response.headers["content-type"].startswith("text/html")
    return response.text


async def test_every_face_serves_its_pages(
    shop: httpx.AsyncClient, crm: httpx.AsyncClient, mes: httpx.AsyncClient
) -> None:
    assert "<h1>Catalogue</h1>" in is_page(await shop.get("/"), 200)
    assert "<h1>Orders</h1>" in is_page(await crm.get("/"), 200)
    assert "Production board" in is_page(await mes.get("/?operator=1"), 200)
    for client in (shop, crm, mes):
        assert "Cache dashboard" in is_page(await client.get("/admin/"), 200)
        sample = (await client.get("/admin/stats")).json()
        assert sample["state"]["mode"] in ("on", "off") and "entities" in sample
        assert (await client.get("/static/vendor/htmx/htmx.min.js")).status_code == 200
        paths = (await client.get("/openapi.json")).json()["paths"]
        assert "/" not in paths and "/admin/" not in paths and "/admin/cache" in paths


async def test_refusals_are_pages_in_words_and_the_api_keeps_problem_json(
    shop: httpx.AsyncClient, crm: httpx.AsyncClient
) -> None:
    assert "item 987654321 does not exist" in is_page(await shop.get("/catalogue/987654321"), 404)
    assert_problem(await shop.get("/items/987654321"), 404)
    page = is_page(await shop.get("/catalogue/abc"), 422)
    assert "<strong>item_id</strong>" in page
    page = is_page(await crm.get("/?from=2026-02-30&client=Eva"), 422)
    assert 'id="from-error"' in page and 'value="Eva"' in page  # the filter, as typed
    page = is_page(
        await crm.post("/console/items/1", content="name=x&price=abc", headers=FORM), 422
    )
    assert 'id="price-error"' in page and 'value="abc"' in page  # beside the field, as typed
    page = is_page(await shop.post("/me/register", content="name=A&email=nope", headers=FORM), 422)
    assert 'id="register-email-error"' in page and 'value="nope"' in page  # beside, as typed
    orders = (await crm.get("/orders", params={"status": "delivered", "limit": 1})).json()
    delivered = orders["items"][0]["id"]
    page = is_page(await crm.post(f"/console/orders/{delivered}/confirm"), 409)
    assert f"Order {delivered} was not confirmed: it became delivered on" in page


async def test_a_resubmitted_order_form_places_one_order(shop: httpx.AsyncClient) -> None:
    email = f"form.{time.time_ns()}@example.com"
    body = f"name=Form&email={email}"
    registered = await shop.post("/me/register", content=body, headers=FORM)
    assert registered.status_code == 303
    assert "shop_session" in registered.cookies
    await shop.post("/cart/add", content="item_id=4&quantity=2", headers=FORM)
    cart = is_page(await shop.get("/cart"), 200)
    key = re.search(r'name="idempotency_key" value="([^"]+)"', cart)
    assert key is not None
    form = f"idempotency_key={key[1]}&item_id=4&quantity=2"
    first = await shop.post("/checkout", content=form, headers=FORM)
    again = await shop.post("/checkout", content=form, headers=FORM)
    assert first.status_code == again.status_code == 303
    assert first.headers["location"] == again.headers["location"]
    order = orjson.loads((await shop.get(first.headers["location"].replace("/my", ""))).content)
    orders = orjson.loads((await shop.get(f"/clients/{order['client_id']}/orders")).content)
    assert orders["total"] == 1


async def test_the_database_down_is_a_page_that_says_so(settings: Settings) -> None:
    dead = f"postgresql://postgres@127.0.0.1:{free_port()}/nowhere"
    broken = settings.model_copy(update={"shop_dsn": dead, "db_connect_timeout_s": 1.0})
    async with api("crm", broken) as down:
        response = await down.get("/console/orders/987654")
        assert "The database is unavailable, try again" in is_page(response, 503)
        assert response.headers["Retry-After"] == "1"


async def test_a_lost_race_on_the_board_reads_who_won(mes: httpx.AsyncClient) -> None:
    queue = (await mes.get("/orders", params={"status": "queued", "limit": 1})).json()
    order_id = queue["items"][0]["id"]
    htmx = FORM | {"HX-Request": "true"}
    won = await mes.post(f"/board/orders/{order_id}/claim", content="operator_id=21", headers=htmx)
    assert f"You took order {order_id}." in is_page(won, 200)
    lost = await mes.post(f"/board/orders/{order_id}/claim", content="operator_id=22", headers=htmx)
    assert f"Order {order_id}: operator 21 took it." in is_page(lost, 409)
    no_js = await mes.post(
        f"/board/orders/{order_id}/claim", content="operator_id=22", headers=FORM
    )
    assert "operator 21 took it" in is_page(no_js, 409)


async def test_an_unknown_address_is_a_page_for_a_browser_and_a_problem_for_the_api(
    shop: httpx.AsyncClient, crm: httpx.AsyncClient, mes: httpx.AsyncClient
) -> None:
    browser = {"accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}
    for client in (shop, crm, mes):
        page = is_page(await client.get("/no/such/page", headers=browser), 404)
        assert "Not found" in page
        assert_problem(await client.get("/no/such/page"), 404)
        refused = await client.delete("/admin/cache", headers=browser)  # a method it does not serve
        assert refused.status_code == 405 and refused.headers["content-type"].startswith(
            "text/html"
        )
