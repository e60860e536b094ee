"""No other web page can act on orderflow, over HTTP in-process (kit/security.py).

A form or a `no-cors` fetch of another site, and a page whose name was rebound to loopback,
are refused (403 / 400) and change nothing in the databases; the services' own pages and the
JSON API as documented (curl, httpx: no Origin, body-less actions without a content type) go
on working; every kind of answer carries the security headers; the MES board's notices come
from codes, and a 503's detail carries no Redis text. What needs a real server (limits, the
banner, SSE) is in tests/e2e/test_web_exposure.py.
"""

import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

import orderflow.apps
from orderflow.data.mesdb import ProductionOrder
from orderflow.data.shopdb import Client, Order
from orderflow.kit.app import Service
from orderflow.kit.deps import Sessions
from orderflow.kit.embedded import EmbeddedRedis, free_port
from orderflow.kit.errors import install_handlers
from orderflow.kit.settings import Settings
from orderflow.relay.relay import Direction, drain
from tests.clients import api
from tests.conftest import ON_CLUSTER
from tests.factories import assert_problem, new_client, new_order

EVIL = "https://evil.example"
FORM = {"content-type": "application/x-www-form-urlencoded"}
BROWSER = {"accept": "text/html,application/xhtml+xml"}
CROSS_SITE = [
    pytest.param({"origin": EVIL}, id="origin"),
    pytest.param({"origin": EVIL, "sec-fetch-site": "cross-site"}, id="fetch-metadata"),
    pytest.param({"sec-fetch-site": "cross-site"}, id="sec-fetch-site-only"),
    pytest.param({"referer": f"{EVIL}/page.html"}, id="referer-only"),
    pytest.param({"origin": "null"}, id="opaque-origin"),
    # another service's page on this very host: same site, another origin
    pytest.param({"origin": "http://crm:8001", "sec-fetch-site": "same-site"}, id="other-port"),
]


async def shop_status(sessions: Sessions, order_id: int) -> str:
    async with sessions() as session:
        return str(
            (await session.execute(select(Order.status).where(Order.id == order_id))).scalar_one()
        )


async def production_state(sessions: Sessions, order_id: int) -> tuple[str, int | None]:
    query = select(ProductionOrder.status, ProductionOrder.operator_id).where(
        ProductionOrder.id == order_id
    )
    async with sessions() as session:
        status, operator = (await session.execute(query)).one()
    return str(status), operator


@pytest.fixture
async def queued(shop: httpx.AsyncClient, crm: httpx.AsyncClient, relay: list[Direction]) -> int:
    order = await new_order(shop)
    assert (await crm.post(f"/orders/{order['id']}/confirm")).status_code == 200
    await drain(relay)
    return int(order["id"])


# --- CSRF: forms and fetches of other sites ---------------------------------------------


@pytest.mark.parametrize("headers", CROSS_SITE)
async def test_a_cross_site_form_post_is_refused_and_changes_nothing(
    headers: dict[str, str],
    shop: httpx.AsyncClient,
    crm: httpx.AsyncClient,
    mes: httpx.AsyncClient,
    shop_sessions: Sessions,
    mes_sessions: Sessions,
    queued: int,
) -> None:
    order = await new_order(shop)
    refused = await crm.post(
        f"/console/orders/{order['id']}/cancel", headers={**FORM, **BROWSER, **headers}
    )
    assert refused.status_code == 403
    assert refused.headers["content-type"].startswith("text/html")  # a page in words
    assert "Refused" in refused.text and "own pages" in refused.text
    assert await shop_status(shop_sessions, order["id"]) == "created"

    claim = await mes.post(
        f"/board/orders/{queued}/claim",
        content="operator_id=7",
        headers={**FORM, **BROWSER, **headers},
    )
    assert claim.status_code == 403
    assert await production_state(mes_sessions, queued) == ("queued", None)

    switched = await crm.post(
        "/admin/switch", content="mode=off", headers={**FORM, **BROWSER, **headers}
    )
    assert switched.status_code == 403
    assert (await crm.get("/admin/cache")).json()["mode"] == "on"

    # the JSON API the same: problem+json, nothing placed
    before = await order_count(shop_sessions)
    body = {"client_id": 1, "lines": [{"item_id": 1, "quantity": 1}]}
    assert_problem(await shop.post("/orders", json=body, headers=headers), 403)
    assert await order_count(shop_sessions) == before


async def order_count(sessions: Sessions) -> int:
    async with sessions() as session:
        return int((await session.execute(select(func.count()).select_from(Order))).scalar_one())


async def test_a_no_cors_post_is_refused_and_changes_nothing(
    shop: httpx.AsyncClient,
    crm: httpx.AsyncClient,
    mes: httpx.AsyncClient,
    shop_sessions: Sessions,
    mes_sessions: Sessions,
    queued: int,
) -> None:
    """`fetch(url, {method: "POST", mode: "no-cors", body})` sends `text/plain`; a browser
    adds Origin and Sec-Fetch-Site, refused above. Here without them too, as from a browser
    too old to send Origin: the body's type alone refuses it."""
    order = await new_order(shop)
    plain = {"content-type": "text/plain;charset=UTF-8"}
    for response in (
        await crm.post(f"/orders/{order['id']}/confirm", content=b"x", headers=plain),
        await crm.post(f"/orders/{order['id']}/cancel", content=b"{}", headers=plain),
        # a body-less action reached by a form (urlencoded): JSON routes take no form
        await crm.post(f"/orders/{order['id']}/confirm", content=b"a=b", headers=FORM),
        await mes.post(f"/orders/{queued}/claim", content=b'{"operator_id": 7}', headers=plain),
        # a no-cors fetch with no body: no content type, but the browser's own headers
        await crm.post(
            f"/orders/{order['id']}/confirm",
            headers={"origin": EVIL, "sec-fetch-site": "cross-site", "sec-fetch-mode": "no-cors"},
        ),
        await mes.post(
            f"/orders/{queued}/claim",
            content=b'{"operator_id": 7}',
            headers={"sec-fetch-site": "cross-site", "sec-fetch-mode": "no-cors"},
        ),
        # a JSON body sent as a Blob without a type
        await mes.post(f"/orders/{queued}/claim", content=b'{"operator_id": 7}'),
    ):
        assert_problem(response, 403)
    for path, fields in (
        (f"/board/orders/{queued}/claim", "operator_id=7"),  # enctype="text/plain"
        ("/admin/switch", "mode=off"),
    ):
        response = await mes.post(path, content=fields, headers={**plain, **BROWSER})
        assert response.status_code == 403 and "Refused" in response.text
    assert await shop_status(shop_sessions, order["id"]) == "created"
    assert await production_state(mes_sessions, queued) == ("queued", None)
    assert (await mes.get("/admin/cache")).json()["mode"] == "on"


async def test_the_own_pages_and_the_documented_api_still_work(
    shop: httpx.AsyncClient,
    crm: httpx.AsyncClient,
    mes: httpx.AsyncClient,
    shop_sessions: Sessions,
    mes_sessions: Sessions,
    queued: int,
) -> None:
    # the CRM console's own form, as a browser sends it
    order = await new_order(shop)
    own = {"origin": "http://crm", "sec-fetch-site": "same-origin", **FORM, **BROWSER}
    done = await crm.post(f"/console/orders/{order['id']}/confirm", headers=own)
    assert done.status_code == 303, done.text
    assert await shop_status(shop_sessions, order["id"]) == "confirmed"
    # a Referer of the same origin and no Origin; a typed URL (Sec-Fetch-Site: none)
    for headers in ({"referer": "http://mes/?operator=7"}, {"sec-fetch-site": "none"}):
        claimed = await mes.post(
            f"/board/orders/{queued}/claim", content="operator_id=7", headers={**FORM, **headers}
        )
        assert claimed.status_code in (303, 409), claimed.text
    assert await production_state(mes_sessions, queued) == ("in_progress", 7)
    # the JSON API as the README shows it: body-less actions with no content type (curl -X
    # POST, httpx), or with application/json; bodies as JSON
    other = await new_order(shop)
    assert (await crm.post(f"/orders/{other['id']}/confirm")).status_code == 200
    json_type = {"content-type": "application/json"}
    shipped = await crm.post(f"/orders/{other['id']}/cancel", headers=json_type)
    assert shipped.status_code == 200 and shipped.json()["status"] == "cancelled"
    released = await mes.post(f"/orders/{queued}/release", json={"operator_id": 7})
    assert released.status_code == 200
    client = await new_client(shop)
    patched = await shop.patch(
        f"/clients/{client['id']}",
        content=b'{"name": "Merged"}',
        headers={"content-type": "application/merge-patch+json"},
    )
    assert patched.status_code in (200, 422), patched.text  # reached the route: not refused


@pytest.mark.parametrize("service", ["shop", "crm", "mes"])
async def test_no_json_operation_takes_a_form(
    service: str,
    shop: httpx.AsyncClient,
    crm: httpx.AsyncClient,
    mes: httpx.AsyncClient,
    shop_sessions: Sessions,
) -> None:
    """Every unsafe operation of the API, sent a form: a body-less action refuses it (403,
    `NO_FORM`), one with a body reads no JSON in it (422); none acts."""
    client = {"shop": shop, "crm": crm, "mes": mes}[service]
    before = await order_count(shop_sessions)
    spec = (await client.get("/openapi.json")).json()
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            if method not in ("post", "put", "patch", "delete"):
                continue
            url = re.sub(r"\{\w+\}", "1", path)
            response = await client.request(method, url, content="mode=off", headers=FORM)
            expected = 422 if "requestBody" in operation else 403
            assert response.status_code == expected, (method, path, response.text)
    assert await order_count(shop_sessions) == before
    assert (await client.get("/admin/cache")).json()["mode"] == "on"


async def test_a_page_takes_only_an_urlencoded_form(mes: httpx.AsyncClient, queued: int) -> None:
    """`form_fields` parses no other body, even one that got past the guard."""
    as_json = await mes.post(
        f"/board/orders/{queued}/claim",
        content=b'{"operator_id": 7}',
        headers={"content-type": "application/json", **BROWSER},
    )
    assert as_json.status_code == 415 and as_json.headers["content-type"].startswith("text/html")


# --- DNS rebinding ---------------------------------------------------------------------


async def test_a_rebound_host_is_refused_and_changes_nothing(
    shop: httpx.AsyncClient, shop_sessions: Sessions
) -> None:
    client = await new_client(shop)
    rebound = {"host": "rebind.attacker.example"}
    read = await shop.get(f"/clients/{client['id']}", headers=rebound)
    assert read.status_code == 400 and client["email"] not in read.text
    email = "rebound@example.com"
    written = await shop.post(
        "/clients",
        json={"name": "Rebound", "email": email},
        headers={"host": "rebind.attacker.example:8001"},
    )
    assert written.status_code == 400
    async with shop_sessions() as session:
        query = select(func.count()).select_from(Client).where(Client.email == email)
        assert (await session.execute(query)).scalar_one() == 0
    for host in ("127.0.0.1:8001", "localhost:8001", "[::1]:8001", "localhost", "shop"):
        assert (await shop.get("/health", headers={"host": host})).status_code == 200, host


def test_the_trusted_hosts_are_loopback_the_listening_address_and_the_configured() -> None:
    loopback = ["127.0.0.1", "localhost", "[::1]"]
    assert Settings(host="127.0.0.1", allowed_hosts="").trusted_hosts() == loopback
    named = Settings(host="10.0.0.5", allowed_hosts="orders.example, crm.example")
    assert named.trusted_hosts() == [*loopback, "10.0.0.5", "orders.example", "crm.example"]
    assert Settings(host="0.0.0.0", allowed_hosts="").trusted_hosts() == loopback
    assert Settings(host="fd00::5", allowed_hosts="").trusted_hosts()[3:] == ["[fd00::5]"]
    assert Settings(allowed_hosts="*").trusted_hosts() == ["*"]


# --- security headers on every kind of answer ------------------------------------------


def assert_guarded(response: httpx.Response) -> None:
    headers = response.headers
    csp = headers["content-security-policy"]
    assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp, csp
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["referrer-policy"] == "same-origin"
    assert headers["x-frame-options"] == "DENY"
    assert "server" not in headers


async def test_every_kind_of_answer_carries_the_security_headers(
    shop: httpx.AsyncClient, crm: httpx.AsyncClient, mes: httpx.AsyncClient
) -> None:
    big = b'{"name": "' + b"x" * 70_000 + b'"}'
    answers = {
        "json": (await shop.get("/items/1"), 200),
        "problem 404": (await shop.get("/items/987654321"), 404),
        "problem 422": (await shop.get("/items/abc"), 422),
        "problem 405": (await shop.delete("/items/1"), 405),
        "problem 413": (await shop.post("/clients", content=big, headers=FORM), 413),
        "page": (await shop.get("/"), 200),
        "error page": (await shop.get("/catalogue/abc", headers=BROWSER), 422),
        "board": (await mes.get("/?operator=1"), 200),
        "dashboard": (await crm.get("/admin/"), 200),
        "static": (await crm.get("/static/app.css"), 200),
        "vendored": (await mes.get("/static/vendor/htmx/htmx.min.js"), 200),
        "metrics": (await mes.get("/metrics"), 200),
        "health": (await crm.get("/health"), 200),
        "openapi": (await crm.get("/openapi.json"), 200),
        "docs": (await crm.get("/docs"), 200),
        "redirect": (await crm.get("/admin"), 303),
        "csrf 403": (await crm.post("/orders/1/confirm", headers={"origin": EVIL}), 403),
        "rebound 400": (await crm.get("/orders/1", headers={"host": "evil.example"}), 400),
    }
    for name, (response, status) in answers.items():
        assert response.status_code == status, (name, response.text[:200])
        assert_guarded(response)
    assert "cdn.jsdelivr.net" in answers["docs"][0].headers["content-security-policy"]
    assert "cdn.jsdelivr.net" not in answers["page"][0].headers["content-security-policy"]


async def test_a_500_carries_them_too() -> None:
    """The headers wrap Starlette's error middleware, which answers the unexpected."""
    app: FastAPI = Service(service="test", settings=Settings(allowed_hosts="*"))
    install_handlers(app)

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("unexpected")

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
        response = await client.get("/boom")
    assert response.status_code == 500
    assert_guarded(response)


def test_the_pages_run_no_inline_script_and_htmx_no_eval() -> None:
    """What the CSP allows is what the pages need: script files of this origin only."""
    apps = Path(orderflow.apps.__file__).parent
    for template in apps.glob("*/templates/*.html"):
        text = template.read_text()
        assert 'href="javascript' not in text and not re.search(r"\s(hx-)?on[\w:-]*\s*=", text)
        for tag in text.split("<script")[1:]:
            assert tag.lstrip().startswith("src="), (template.name, tag[:60])
        assert "style=" not in text, template.name
    base = (apps / "common/templates/base.html").read_text()
    for setting in (
        '"allowEval":false',
        '"allowScriptTags":false',
        '"includeIndicatorStyles":false',
    ):
        assert setting in base


# --- notices by code, error details without infrastructure -----------------------------


async def test_the_board_shows_notices_by_code_only(mes: httpx.AsyncClient) -> None:
    planted = await mes.get("/", params={"notice": "System notice: call 0800 to unlock"})
    assert planted.status_code == 200 and "0800" not in planted.text
    done = await mes.get("/", params={"operator": 3, "done": "claim", "order": 12})
    assert "You took order 12." in done.text
    assert (await mes.get("/", params={"done": "steal", "order": 1})).status_code == 422


async def test_the_board_form_redirects_with_a_code(mes: httpx.AsyncClient, queued: int) -> None:
    response = await mes.post(
        f"/board/orders/{queued}/claim", content="operator_id=9", headers=FORM
    )
    assert response.status_code == 303
    assert response.headers["location"] == f"/?operator=9&done=claim&order={queued}"
    assert "You took order" in (await mes.get(response.headers["location"])).text


@pytest.fixture
async def crm_on_a_redis_that_dies(
    settings: Settings, tmp_path: Path
) -> AsyncIterator[tuple[EmbeddedRedis, httpx.AsyncClient]]:
    redis = EmbeddedRedis(tmp_path, free_port())
    redis.start()
    own = settings.model_copy(update={"redis_url": redis.url})
    try:
        async with api("crm", own) as crm:
            yield redis, crm
    finally:
        redis.stop()


@pytest.mark.skipif(ON_CLUSTER, reason="a single Redis node's outage")
async def test_a_503_says_what_failed_not_in_redis_words(
    crm_on_a_redis_that_dies: tuple[EmbeddedRedis, httpx.AsyncClient],
) -> None:
    redis, crm = crm_on_a_redis_that_dies
    redis.stop()
    response = await crm.put("/admin/cache", json={"mode": "off"})
    body = assert_problem(response, 503)
    assert body["detail"] == "the switch is kept in Redis, which did not answer"
    assert response.headers["retry-after"]
