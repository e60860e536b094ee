"""Hostile and malformed input: a clear 4xx problem+json, and nothing changed.

Each refused request is checked against the databases afterwards (row counts of ShopDB
`orders`, `clients`, `items` and MES `production_orders`, and the entity it aimed at).
Values the API legitimately accepts (emoji names, SQL-looking text) must round-trip exactly.

No case here is an expected failure: a bug found here is fixed, and its case passes.
"""

import json
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis
from sqlalchemy import func, select

from orderflow.data.mesdb import ProductionOrder
from orderflow.data.shopdb import Client, Item, Order
from orderflow.kit.deps import Sessions
from orderflow.relay.relay import Direction, drain
from tests.factories import assert_problem, new_client, new_order

MAX_ID = 2**63 - 1  # the largest id; one more is out of range
JSON = {"content-type": "application/json"}
ORDER = {"client_id": 1, "lines": [{"item_id": 1, "quantity": 1}]}
SQL = "'; DROP TABLE orders; --"
RESP = "*1\r\n$8\r\nFLUSHALL\r\n"
INLINE_FLUSH = "\r\nFLUSHALL\r\n"

Counts = dict[str, int]
Unchanged = Callable[..., AbstractAsyncContextManager[None]]


async def row_counts(shop_sessions: Sessions, mes_sessions: Sessions) -> Counts:
    counts: Counts = {}
    async with shop_sessions() as session:
        for name, model in (("orders", Order), ("clients", Client), ("items", Item)):
            counts[name] = (
                await session.execute(select(func.count()).select_from(model))
            ).scalar_one()
    async with mes_sessions() as session:
        query = select(func.count()).select_from(ProductionOrder)
        counts["production_orders"] = (await session.execute(query)).scalar_one()
    return counts


@pytest.fixture
def apis(
    shop: httpx.AsyncClient, crm: httpx.AsyncClient, mes: httpx.AsyncClient
) -> dict[str, httpx.AsyncClient]:
    return {"shop": shop, "crm": crm, "mes": mes}


@pytest.fixture
def unchanged(
    shop_sessions: Sessions, mes_sessions: Sessions, apis: dict[str, httpx.AsyncClient]
) -> Unchanged:
    """`async with unchanged(("shop", "/clients/1")):` asserts, after the block, that no row
    was added or removed and that the named resources read the same as before."""

    @asynccontextmanager
    async def check(*resources: tuple[str, str]) -> AsyncIterator[None]:
        before = await row_counts(shop_sessions, mes_sessions)
        read_before = [(await apis[s].get(p)).json() for s, p in resources]
        yield
        assert await row_counts(shop_sessions, mes_sessions) == before
        assert [(await apis[s].get(p)).json() for s, p in resources] == read_before

    return check


@dataclass
class Bad:
    """One hostile request and the problem it must get."""

    service: str
    method: str
    path: str
    status: int = 422
    field: str | None = None
    json: Any = None
    content: bytes | None = None
    headers: dict[str, Any] | None = None
    params: dict[str, Any] | None = None
    resources: tuple[tuple[str, str], ...] = ()  # (service, path) that must read the same

    async def send(self, client: httpx.AsyncClient) -> httpx.Response:
        return await client.request(
            self.method,
            self.path,
            json=self.json,
            content=self.content,
            headers=self.headers,
            params=self.params,
        )


def raw(value: Any) -> bytes:
    """JSON with non-ASCII escaped (`\\ud800` stays an escape, not an unencodable str)."""
    return json.dumps(value).encode()


def order_with(**line: Any) -> dict[str, Any]:
    return {"client_id": 1, "lines": [{"item_id": 1, "quantity": 1, **line}]}


CLIENT_1 = (("shop", "/clients/1"),)
ITEM_1 = (("shop", "/items/1"),)

REFUSED = [
    # --- quantities and ids in the body: negative, zero, huge, beyond 2**63, unknown
    *[
        pytest.param(
            Bad("shop", "POST", "/orders", json=order_with(quantity=q), field="lines.0.quantity"),
            id=f"quantity={q!r}",
        )
        for q in (0, -1, -(2**63), 10_001, 2**31, 2**63, 2**64, 10**30, 1.5, None, "many", [1])
    ],
    *[
        pytest.param(
            Bad("shop", "POST", "/orders", json={**ORDER, "client_id": cid}, field="client_id"),
            id=f"client_id={cid!r}",
        )
        for cid in (0, -1, 2**63, 10**30, MAX_ID, 99_999_999, "1 OR 1=1", None)
    ],
    *[
        pytest.param(
            Bad("shop", "POST", "/orders", json=order_with(item_id=i), field="lines.0.item_id"),
            id=f"item_id={i!r}",
        )
        for i in (0, -1, 2**63, MAX_ID)
    ],
    pytest.param(
        Bad(
            "shop",
            "POST",
            "/orders",
            json={
                "client_id": 1,
                "lines": [{"item_id": 1, "quantity": 1}] * 3 + [{"item_id": MAX_ID, "quantity": 1}],
            },
            field="lines.3.item_id",
        ),
        id="unknown-item-after-good-lines",
    ),
    pytest.param(
        Bad("shop", "POST", "/orders", json={"client_id": 1, "lines": []}, field="lines"),
        id="no-lines",
    ),
    pytest.param(
        Bad(
            "shop",
            "POST",
            "/orders",
            json={"client_id": 1, "lines": [{"item_id": 1, "quantity": 1}] * 101},
            field="lines",
        ),
        id="101-lines",
    ),
    pytest.param(
        Bad(
            "crm", "POST", "/items", json={"name": "x", "category": "c", "price": -1}, field="price"
        ),
        id="price=-1",
    ),
    pytest.param(
        Bad(
            "crm",
            "POST",
            "/items",
            json={"name": "x", "category": "c", "price": 2**63},
            field="price",
        ),
        id="price=2**63",
    ),
    pytest.param(
        Bad("mes", "POST", "/orders/1/claim", json={"operator_id": 2**63}, field="operator_id"),
        id="operator_id=2**63",
    ),
    pytest.param(
        Bad("mes", "POST", "/orders/1/claim", json={"operator_id": 0}, field="operator_id"),
        id="operator_id=0",
    ),
    pytest.param(
        Bad(
            "mes",
            "POST",
            "/orders/1/release",
            json={"operator_id": 1, "version": 0},
            field="version",
        ),
        id="version=0",
    ),
    # --- ids in the path: malformed, out of range, unknown
    *[
        pytest.param(Bad("shop", "GET", f"/items/{raw_id}", field="item_id"), id=f"/items/{raw_id}")
        for raw_id in (
            "1e3",
            "-1",
            "0",
            str(2**63),
            str(10**30),
            "0x10",
            "1%00",
            "%00",
            "1;DROP TABLE items",
            "null",
            "\uff11\uff12",  # fullwidth 12
        )
    ],
    pytest.param(Bad("shop", "GET", "/orders/١٢", field="order_id"), id="/orders/arabic-indic-12"),
    pytest.param(
        Bad("crm", "GET", "/orders/١٢", field="order_id"), id="crm/orders/arabic-indic-12"
    ),
    pytest.param(
        Bad("crm", "POST", "/orders/١٢/ship", field="order_id"),
        id="crm/orders/arabic-indic-12/ship",
    ),
    pytest.param(Bad("shop", "GET", "/clients/٣", field="client_id"), id="/clients/arabic-indic-3"),
    pytest.param(Bad("shop", "GET", f"/items/{MAX_ID}", 404), id="/items/max-id"),
    pytest.param(Bad("shop", "GET", f"/orders/{MAX_ID}", 404), id="/orders/max-id"),
    pytest.param(Bad("shop", "GET", f"/clients/{MAX_ID}/orders", 404), id="/clients/max-id/orders"),
    pytest.param(
        Bad("shop", "PATCH", f"/clients/{MAX_ID}", 404, json={"name": "x"}),
        id="patch-unknown-client",
    ),
    pytest.param(Bad("shop", "POST", f"/orders/{MAX_ID}/cancel", 404), id="cancel-unknown-order"),
    pytest.param(Bad("crm", "POST", f"/orders/{MAX_ID}/confirm", 404), id="confirm-unknown-order"),
    pytest.param(
        Bad("crm", "POST", f"/orders/{2**63}/confirm", field="order_id"), id="confirm-order-2**63"
    ),
    pytest.param(Bad("crm", "POST", "/orders/-1/cancel", field="order_id"), id="cancel-order--1"),
    pytest.param(
        Bad("crm", "PUT", f"/items/{MAX_ID}", 404, json={"name": "x", "category": "c", "price": 1}),
        id="put-unknown-item",
    ),
    pytest.param(
        Bad("mes", "POST", f"/orders/{MAX_ID}/claim", 404, json={"operator_id": 1}),
        id="claim-unknown-order",
    ),
    pytest.param(
        Bad("mes", "POST", "/orders/1e3/claim", json={"operator_id": 1}, field="order_id"),
        id="claim-order-1e3",
    ),
    pytest.param(Bad("mes", "GET", f"/orders/{2**64}", field="order_id"), id="mes/orders/2**64"),
    *[
        pytest.param(
            Bad("shop", "GET", f"/items/{raw_id}", field="item_id"),
            id=f"/items/{raw_id}",
        )
        for raw_id in ("1_0", "+1", "1.0", "%201")
    ],
    # --- query parameters
    *[
        pytest.param(
            Bad("shop", "GET", "/items", params={name: value}, field=name), id=f"{name}={value}"
        )
        for name, value in (
            ("limit", 0),
            ("limit", 201),
            ("limit", 2**63),
            ("limit", "ten"),
            ("offset", -1),
            ("offset", 1_000_001),
            ("offset", 2**64),
        )
    ],
    pytest.param(
        Bad("shop", "GET", "/items", params={"q": "x" * 10_000}, field="q"), id="q=10k-chars"
    ),
    pytest.param(
        Bad("shop", "GET", "/items", params={"category": "é" * 101}, field="category"),
        id="category=101-chars",
    ),
    pytest.param(
        Bad("crm", "GET", "/orders", params={"status": "created' OR 1=1 --"}, field="status"),
        id="status=sql",
    ),
    pytest.param(
        Bad("crm", "GET", "/orders", params={"client_id": "1 OR 1=1"}, field="client_id"),
        id="client_id=sql",
    ),
    pytest.param(
        Bad("crm", "GET", "/orders", params={"client_id": 2**63}, field="client_id"),
        id="client_id=2**63",
    ),
    pytest.param(
        Bad("mes", "GET", "/orders", params={"operator_id": 2**64}, field="operator_id"),
        id="operator_id=2**64",
    ),
    pytest.param(
        Bad("mes", "GET", "/orders", params={"status": "queued\x00"}, field="status"),
        id="status=nul",
    ),
    pytest.param(Bad("shop", "GET", "/items", params={"q": "a\x00b"}, field="q"), id="q=nul"),
    pytest.param(
        Bad("shop", "GET", "/items", params={"category": "\x00"}, field="category"),
        id="category=nul",
    ),
    # --- dates
    *[
        pytest.param(
            Bad("crm", "GET", "/orders", params={name: value}, field=name), id=f"{name}={value}"
        )
        for name in ("created_from", "created_to")
        for value in (
            "2026-13-45",
            "2026-02-30T00:00:00Z",
            "2026-01-01T00:00:00",  # no timezone
            "2026-01-01",  # a date, no timezone
            "99999-01-01T00:00:00Z",
            "275760-09-13T00:00:00Z",
            "2026-01-01T00:00:00+25:00",
            "2026-01-01T24:00:01Z",
            "1e308",
            "yesterday",
            "2026-01-01T00:00:00Z\x00",
        )
    ],
    pytest.param(
        Bad(
            "crm",
            "GET",
            "/orders",
            params={"created_from": "2026-02-01T00:00:00Z", "created_to": "2026-01-01T00:00:00Z"},
            field="created_from",
        ),
        id="created_from-after-created_to",
    ),
    *[
        pytest.param(  # in UTC, year 0 and year 10000: beyond what PostgreSQL stores
            Bad("crm", "GET", "/orders", params={name: value}, field=name),
            id=f"{name}={value}",
        )
        for name, value in (
            ("created_from", "0001-01-01T00:00:00+14:00"),
            ("created_to", "9999-12-31T23:59:59-14:00"),
        )
    ],
    *[
        pytest.param(  # not read as Unix timestamps, nor as ISO 8601 basic or partial forms
            Bad("crm", "GET", "/orders", params={name: value}, field=name), id=f"{name}={value}"
        )
        for name in ("created_from", "created_to")
        for value in (
            "20260101",
            "1767225600",
            "1767225600.5",
            "0",
            "20260101T000000Z",
            "2026-01-01T00:00Z",
            "2026-01-01 00:00:00Z",
            "2026-01-01T00:00:00+0100",
            "2026-W01-1T00:00:00Z",
            " 2026-01-01T00:00:00Z",
        )
    ],
    # --- odd text: NUL, lone surrogates, too long
    pytest.param(
        Bad(
            "shop",
            "POST",
            "/clients",
            json={"name": "a\x00b", "email": "nul@example.com"},
            field="name",
        ),
        id="client-name-nul",
    ),
    pytest.param(
        Bad("shop", "PATCH", "/clients/1", json={"name": "\x00"}, field="name", resources=CLIENT_1),
        id="patch-name-nul",
    ),
    pytest.param(
        Bad(
            "crm",
            "POST",
            "/items",
            json={"name": "a\x00", "category": "c", "price": 1},
            field="name",
        ),
        id="item-name-nul",
    ),
    pytest.param(
        Bad(
            "crm",
            "POST",
            "/items",
            json={"name": "a", "category": "c", "price": 1, "description": "\x00"},
            field="description",
        ),
        id="item-description-nul",
    ),
    pytest.param(
        Bad(
            "crm",
            "PUT",
            "/items/1",
            json={"name": "a", "category": "c\x00", "price": 1},
            field="category",
            resources=ITEM_1,
        ),
        id="put-item-category-nul",
    ),
    pytest.param(
        Bad(
            "shop",
            "POST",
            "/clients",
            json={"name": "x", "email": "a\x00b@example.com"},
            field="email",
        ),
        id="email-nul",
    ),
    pytest.param(
        Bad(
            "shop",
            "POST",
            "/clients",
            json={"name": "x", "email": "nulphone@example.com", "phone": "123\x00"},
            field="phone",
        ),
        id="phone-nul",
    ),
    pytest.param(
        Bad(
            "shop",
            "POST",
            "/clients",
            content=raw({"name": "\ud800", "email": "s1@example.com"}),
            headers=JSON,
            field="name",
        ),
        id="name-lone-surrogate-escaped",
    ),
    pytest.param(
        Bad(
            "shop",
            "POST",
            "/clients",
            content=b'{"name": "\xed\xa0\x80", "email": "s2@example.com"}',
            headers=JSON,
            field="name",
        ),
        id="name-lone-surrogate-raw-bytes",
    ),
    pytest.param(
        Bad(
            "crm",
            "POST",
            "/items",
            content=raw({"name": "a", "category": "\udfff", "price": 1}),
            headers=JSON,
            field="category",
        ),
        id="category-lone-surrogate",
    ),
    pytest.param(
        Bad(
            "shop",
            "POST",
            "/clients",
            400,
            content=b'{"name": "\xe9", "email": "s3@example.com"}',
            headers=JSON,
        ),
        id="body-not-utf8",
    ),
    pytest.param(
        Bad(
            "shop",
            "POST",
            "/clients",
            json={"name": "x" * 10_000, "email": "long@example.com"},
            field="name",
        ),
        id="name-10k-chars",
    ),
    pytest.param(
        Bad(
            "shop",
            "POST",
            "/clients",
            json={"name": "😀" * 201, "email": "emoji@example.com"},
            field="name",
        ),
        id="name-201-emoji",
    ),
    pytest.param(
        Bad(
            "shop",
            "POST",
            "/clients",
            json={"name": "x", "email": "a" * 10_000 + "@example.com"},
            field="email",
        ),
        id="email-10k-chars",
    ),
    pytest.param(
        Bad(
            "crm",
            "POST",
            "/items",
            json={"name": "x", "category": "c", "price": 1, "description": "é" * 10_000},
            field="description",
        ),
        id="description-10k-chars",
    ),
    pytest.param(
        Bad("shop", "PATCH", "/clients/1", json={"name": "  "}, field="name", resources=CLIENT_1),
        id="patch-name-blank",
    ),
    *[
        pytest.param(  # the fields may be left out, not set to null
            Bad("shop", "PATCH", "/clients/1", json={name: None}, field=name, resources=CLIENT_1),
            id=f"patch-{name}-null",
        )
        for name in ("name", "email")
    ],
    # --- SQL-shaped values where they are not valid
    pytest.param(
        Bad(
            "shop",
            "POST",
            "/clients",
            json={"name": "x", "email": f"x{SQL}@example.com"},
            field="email",
        ),
        id="email-sql",
    ),
    # --- wrong content types: 403 for what the guard refuses (a form or no-cors fetch of
    # another site: text/plain, no type with a body, kit/security.py), 422 for a form (the
    # pages take forms: a JSON route reads it as no JSON), invalid JSON, deep nesting, extra
    # fields
    *[
        pytest.param(
            Bad(
                "shop",
                "POST",
                "/clients",
                status,
                content=raw({"name": "ct", "email": "ct@example.com"}),
                headers=headers,
                field="body" if status == 422 else None,
            ),
            id=f"content-type={headers.get('content-type', 'none')}",
        )
        for headers, status in (
            ({"content-type": "text/plain"}, 403),
            ({"content-type": "application/x-www-form-urlencoded"}, 422),
            ({"content-type": "multipart/form-data; boundary=x"}, 422),
            ({"content-type": "application/xml"}, 403),
            ({}, 403),
        )
    ],
    pytest.param(
        Bad(
            "mes",
            "POST",
            "/orders/1/claim",
            403,
            content=b'{"operator_id": 1}',
            headers={"content-type": "text/plain"},
        ),
        id="claim-text-plain",
    ),
    *[
        pytest.param(
            Bad("shop", "POST", "/orders", content=body, headers=JSON, field=name),
            id=f"json={body[:20]!r}",
        )
        for body, name in (
            (b'{"client_id": 1, "lines": [', None),
            (b'{"client_id": 1} trailing', None),
            (b"\xff\xfe", None),
            (b"", "body"),
            (b"null", "body"),
            (b"[]", "body"),
            (b'"order"', "body"),
            (b"1", "body"),
            (b'{"client_id": NaN, "lines": [{"item_id": 1, "quantity": 1}]}', "client_id"),
            (
                b'{"client_id": 1, "lines": [{"item_id": 1, "quantity": Infinity}]}',
                "lines.0.quantity",
            ),
        )
    ],
    *[
        pytest.param(
            Bad(service, "POST", path, 400, content=body, headers=JSON), id=f"deep-json-{service}"
        )
        for service, path, body in (
            ("shop", "/clients", b'{"name": ' + b"[" * 20_000 + b"]" * 20_000 + b"}"),
            (
                "shop",
                "/orders",
                b'{"client_id": 1, "lines": ' + b"[" * 25_000 + b"]" * 25_000 + b"}",
            ),
            ("crm", "/items", b'{"a":' * 10_000 + b"1" + b"}" * 10_000),
            ("mes", "/orders/1/claim", b"[" * 30_000 + b"]" * 30_000),
        )
    ],
    pytest.param(
        Bad("shop", "POST", "/orders", json={**ORDER, "total": 0}, field="total"),
        id="extra-order-total",
    ),
    pytest.param(
        Bad("shop", "POST", "/orders", json=order_with(unit_price=0), field="lines.0.unit_price"),
        id="extra-line-price",
    ),
    pytest.param(
        Bad(
            "shop",
            "POST",
            "/clients",
            json={"name": "x", "email": "extra@example.com", "id": 1},
            field="id",
        ),
        id="extra-client-id",
    ),
    pytest.param(
        Bad(
            "shop", "PATCH", "/clients/1", json={"version": 99}, field="version", resources=CLIENT_1
        ),
        id="extra-patch-version",
    ),
    pytest.param(
        Bad(
            "crm",
            "PUT",
            "/items/1",
            json={"name": "x", "category": "c", "price": 1, "version": 9},
            field="version",
            resources=ITEM_1,
        ),
        id="extra-item-version",
    ),
    pytest.param(
        Bad(
            "mes",
            "POST",
            "/orders/1/claim",
            json={"operator_id": 1, "status": "done"},
            field="status",
        ),
        id="extra-claim-status",
    ),
    # --- header values
    *[
        pytest.param(
            Bad(
                "shop",
                "POST",
                "/orders",
                json=ORDER,
                headers={"Idempotency-Key": key},
                field="Idempotency-Key",
            ),
            id=f"idempotency-key={key[:12]!r}",
        )
        for key in ("", "k" * 201, "x" * 10_000, "a b", INLINE_FLUSH, RESP, "ключ".encode(), SQL)
    ],
    *[
        pytest.param(
            Bad("mes", "GET", "/events", headers={"Last-Event-ID": value}, field="Last-Event-ID"),
            id=f"last-event-id={value[:12]!r}",
        )
        for value in (
            INLINE_FLUSH,
            RESP,
            "1-0" + INLINE_FLUSH,
            SQL,
            "1-0-0",
            "-1-0",
            "1" * 21 + "-0",
        )
    ],
]


@pytest.mark.parametrize("bad", REFUSED)
async def test_refused_and_nothing_changed(
    bad: Bad, apis: dict[str, httpx.AsyncClient], unchanged: Unchanged
) -> None:
    async with unchanged(*bad.resources):
        assert_problem(await bad.send(apis[bad.service]), bad.status, bad.field)


# --- oversized bodies ------------------------------------------------------------------


async def chunks(data: bytes, size: int = 8192) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


BIG = b'{"name": "' + b"x" * 70_000 + b'", "email": "big@example.com"}'


@pytest.mark.parametrize(
    ("service", "path"),
    [("shop", "/clients"), ("shop", "/orders"), ("crm", "/items"), ("mes", "/orders/1/claim")],
)
async def test_oversized_body_with_content_length_is_413(
    service: str, path: str, apis: dict[str, httpx.AsyncClient], unchanged: Unchanged
) -> None:
    client = apis[service]
    async with unchanged():
        response = await client.post(path, content=BIG, headers=JSON)
        assert response.request.headers["content-length"] == str(len(BIG))
        assert_problem(response, 413)
        # a Content-Length that promises too much is refused before the body is read
        lying = await client.post(path, content=b"{}", headers={**JSON, "content-length": "999999"})
        assert_problem(lying, 413)


@pytest.mark.parametrize(
    ("service", "path"), [("shop", "/clients"), ("crm", "/items"), ("mes", "/orders/1/claim")]
)
async def test_oversized_streamed_body_is_413(
    service: str, path: str, apis: dict[str, httpx.AsyncClient], unchanged: Unchanged
) -> None:
    client = apis[service]
    async with unchanged():
        response = await client.post(path, content=chunks(BIG), headers=JSON)
        assert "content-length" not in response.request.headers
        assert_problem(response, 413)


async def test_oversized_streamed_body_is_refused_with_a_problem(
    shop: httpx.AsyncClient, crm: httpx.AsyncClient, unchanged: Unchanged
) -> None:
    """It is a 4xx problem and stores nothing."""
    async with unchanged():
        for client, path in ((shop, "/clients"), (crm, "/items")):
            response = await client.post(path, content=chunks(BIG), headers=JSON)
            assert 400 <= response.status_code < 500
            assert_problem(response, response.status_code)


async def test_streamed_body_under_the_limit_is_read(shop: httpx.AsyncClient) -> None:
    email = f"{uuid.uuid4().hex[:12]}@example.com"
    body = raw({"name": "Streamed " + "y" * 150, "email": email})
    response = await shop.post("/clients", content=chunks(body, 16), headers=JSON)
    assert "content-length" not in response.request.headers
    assert response.status_code == 201, response.text
    assert response.json()["email"] == email


# --- unknown ids in body and path that need a real production order ----------------------


@pytest.fixture
async def queued(shop: httpx.AsyncClient, crm: httpx.AsyncClient, relay: list[Direction]) -> int:
    order = await new_order(shop)
    assert (await crm.post(f"/orders/{order['id']}/confirm")).status_code == 200
    await drain(relay)
    return int(order["id"])


async def test_production_order_refuses_bad_actions(
    mes: httpx.AsyncClient, queued: int, unchanged: Unchanged
) -> None:
    path = f"/orders/{queued}"
    async with unchanged(("mes", path)):
        for body, status, name in (
            ({"operator_id": MAX_ID}, 422, "operator_id"),  # unknown operator
            ({"operator_id": 99_999_999}, 422, "operator_id"),
            ({"operator_id": 2**63}, 422, "operator_id"),
            ({"operator_id": -1}, 422, "operator_id"),
            ({"operator_id": "1; DROP TABLE production_orders"}, 422, "operator_id"),
            ({}, 422, "operator_id"),
            ({"operator_id": 1, "version": 2**63}, 422, "version"),
        ):
            assert_problem(await mes.post(f"{path}/claim", json=body), status, name)
        for action in ("release", "complete"):  # queued: nobody holds it
            assert_problem(await mes.post(f"{path}/{action}", json={"operator_id": 1}), 409)
    assert (await mes.get(path)).json()["status"] == "queued"


# --- values legitimately accepted round-trip exactly -----------------------------------

ODD_NAMES = [
    pytest.param("Ada 👩‍🔬 Lovelace 🇬🇧", id="emoji-zwj-flag"),
    pytest.param("\u202eecalevoL adA\u202c", id="rtl-override"),
    pytest.param("שלום עליכם - سلام", id="hebrew-arabic"),
    pytest.param("e\u0301e\u0302e\u0303 Zalgo: Z\u0351\u0308\u035b\u0327", id="combining"),
    pytest.param("😀" * 200, id="200-astral-chars"),
    pytest.param("e\u0301" * 100, id="200-code-points-combining"),
    pytest.param(SQL, id="sql"),
    pytest.param("Robert'); DROP TABLE clients;--", id="bobby-tables"),
    pytest.param("x\r\nFLUSHALL\r\ny", id="inline-flushall"),
    pytest.param("$8\r\nFLUSHALL", id="resp-fragment"),
    pytest.param("{{7*7}} ${jndi:ldap://x} <script>alert(1)</script>", id="template-and-script"),
    pytest.param("\u200b\u2060zero width\ufeff", id="zero-width"),
]


@pytest.mark.parametrize("name", ODD_NAMES)
async def test_odd_but_valid_names_round_trip(
    shop: httpx.AsyncClient, shop_sessions: Sessions, name: str
) -> None:
    email = f"{uuid.uuid4().hex[:12]}@example.com"
    created = await shop.post("/clients", content=raw({"name": name, "email": email}), headers=JSON)
    assert created.status_code == 201, created.text
    assert created.json()["name"] == name
    client_id = created.json()["id"]
    assert (await shop.get(f"/clients/{client_id}")).json()["name"] == name
    async with shop_sessions() as session:
        assert await session.scalar(select(Client.name).where(Client.id == client_id)) == name
    patched = await shop.patch(
        f"/clients/{client_id}", content=raw({"name": name[::-1]}), headers=JSON
    )
    assert patched.status_code == 200, patched.text
    assert (await shop.get(f"/clients/{client_id}")).json()["name"] == name[::-1]


async def test_surrounding_whitespace_is_trimmed_by_design(shop: httpx.AsyncClient) -> None:
    """`ClientIn` strips surrounding whitespace (`str_strip_whitespace`): the RESP-shaped name
    is kept without its trailing CRLF, everything inside it exactly."""
    client = await new_client(shop, name=RESP)
    assert client["name"] == RESP.strip() == "*1\r\n$8\r\nFLUSHALL"


async def test_odd_item_text_round_trips(crm: httpx.AsyncClient, shop: httpx.AsyncClient) -> None:
    body = {
        "name": f"Stool {SQL}",
        "category": f"Chairs {INLINE_FLUSH.strip()} ✨ {uuid.uuid4().hex[:8]}",
        "price": 0,
        "description": "Ünïcödé 👩‍🔬\n" + RESP + "\u202eRTL" + "d" * 4000,
    }
    created = await crm.post("/items", content=raw(body), headers=JSON)
    assert created.status_code == 201, created.text
    item = (await shop.get(f"/items/{created.json()['id']}")).json()
    assert {k: item[k] for k in body} == body
    listed = (await shop.get("/items", params={"category": body["category"]})).json()
    assert [i["id"] for i in listed["items"]] == [item["id"]]


@pytest.mark.parametrize(
    "value",
    [
        SQL,
        "%' OR '1'='1",
        "\\",
        "_%",
        RESP,
        INLINE_FLUSH,
        "*",
        "' UNION SELECT email FROM clients --",
    ],
)
async def test_sql_and_redis_shaped_searches_are_literal_and_change_nothing(
    shop: httpx.AsyncClient, unchanged: Unchanged, value: str
) -> None:
    everything = (await shop.get("/items", params={"limit": 1})).json()["total"]
    async with unchanged(*ITEM_1):
        by_name = await shop.get("/items", params={"q": value, "limit": 200})
        assert by_name.status_code == 200, by_name.text
        found = by_name.json()
        assert all(value.lower() in i["name"].lower() for i in found["items"]), found
        assert found["total"] < everything
        by_category = await shop.get("/items", params={"category": value})
        assert by_category.status_code == 200, by_category.text
        assert by_category.json() == {"items": [], "total": 0}


async def test_orders_placed_with_odd_but_valid_idempotency_keys(shop: httpx.AsyncClient) -> None:
    client = await new_client(shop)
    body = {"client_id": client["id"], "lines": [{"item_id": 1, "quantity": 1}]}
    tag = uuid.uuid4().hex[:8]
    for shape in ("FLUSHALL", "*1$8FLUSHALL", "';DROP-TABLE-orders;--", "~" * 190):
        key = f"{shape}{tag}"
        first = await shop.post("/orders", json=body, headers={"Idempotency-Key": key})
        assert first.status_code == 201, first.text
        again = await shop.post("/orders", json=body, headers={"Idempotency-Key": key})
        assert again.status_code == 200 and again.json() == first.json()
    assert (await shop.get(f"/clients/{client['id']}/orders")).json()["total"] == 4


# --- Redis-shaped strings leave Redis alone ---------------------------------------------


async def test_redis_shaped_input_leaves_redis_alone(
    apis: dict[str, httpx.AsyncClient], redis: Redis, unchanged: Unchanged
) -> None:
    shop, crm, mes = apis["shop"], apis["crm"], apis["mes"]
    sentinel = f"test:bad-input:{uuid.uuid4().hex}"
    await redis.set(sentinel, "still here")
    try:
        assert (await shop.get("/items/1")).status_code == 200  # something cached, too
        keys = await redis.dbsize()
        async with unchanged(*CLIENT_1):
            for value in (RESP, INLINE_FLUSH, "*1\r\n$7\r\nFLUSHDB\r\n", "FLUSHALL\r\n"):
                key = {"Idempotency-Key": value}
                idem = await shop.post("/orders", json=ORDER, headers=key)
                assert_problem(idem, 422, "Idempotency-Key")
                email = {"name": "x", "email": f"{value}@example.com"}
                assert_problem(await shop.post("/clients", json=email), 422, "email")
                patch = {"email": f"a{value}@example.com"}
                assert_problem(await shop.patch("/clients/1", json=patch), 422, "email")
                last = {"Last-Event-ID": value}
                assert_problem(await mes.get("/events", headers=last), 422, "Last-Event-ID")
                status = {"status": value}
                assert_problem(await crm.get("/orders", params=status), 422, "status")
                assert_problem(await mes.get("/orders", params=status), 422, "status")
                for params in ({"q": value}, {"category": value}):
                    assert (await shop.get("/items", params=params)).json()["total"] == 0
        assert await redis.get(sentinel) == b"still here"
        assert await redis.dbsize() >= keys > 0
    finally:
        await redis.delete(sentinel)


# --- lax coercions that let wrong types through -----------------------------------------


@pytest.mark.parametrize("quantity", [True, "2"], ids=["true", "string"])
async def test_wrongly_typed_quantity_is_refused(
    shop: httpx.AsyncClient, unchanged: Unchanged, quantity: Any
) -> None:
    client = await new_client(shop)
    async with unchanged():
        body = {"client_id": client["id"], "lines": [{"item_id": 1, "quantity": quantity}]}
        assert_problem(await shop.post("/orders", json=body), 422, "lines.0.quantity")


@pytest.mark.parametrize(
    "params",
    [
        {"created_from": "2026-01-01T00:00:00Z", "created_to": "2026-01-01T00:00:00.000001Z"},
        {"created_from": "2026-01-01t00:00:00.123456789z"},
        {"created_from": "2026-01-01T01:00:00+01:00", "created_to": "2026-01-01T00:00:00Z"},
        {"created_from": "0002-01-01T00:00:00+14:00", "created_to": "9998-12-31T23:59:59-14:00"},
    ],
    ids=["Z", "lowercase-nanoseconds", "same-moment-two-offsets", "widest-range"],
)
async def test_rfc_3339_moments_are_accepted(
    crm: httpx.AsyncClient, params: dict[str, str]
) -> None:
    """The moments the OpenAPI allows (RFC 3339, years 0002 to 9998 with any offset) filter."""
    response = await crm.get("/orders", params={**params, "limit": 1})
    assert response.status_code == 200, response.text
