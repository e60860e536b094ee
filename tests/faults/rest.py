"""The quiet end: once the load has stopped, the relay has carried every hand-off and the repair
bound has passed, what the APIs serve must equal what PostgreSQL holds: every order and
production order the run touched, every CRM status page and MES board list, every client list
the run placed into, the CRM counts and the MES board totals."""

import asyncio
from typing import Any

import asyncpg
import httpx

from orderflow.kit.db import asyncpg_dsn
from orderflow.production.orders.schemas import ProductionStatus
from orderflow.sales.orders.lifecycle import OrderStatus
from tests.faults.history import History
from tests.faults.platform import FaultPlatform

PAGE = 200  # the largest page the APIs serve


async def baseline(platform: FaultPlatform) -> dict[str, dict[str, int]]:
    """Orders by status in ShopDB (and the total) and production orders by status in the MES."""
    shop, mes = await _connect(platform)
    try:
        crm = await _counts(shop, "orders")
        return {
            "crm": crm | {"total": sum(crm.values())},
            "mes": await _counts(mes, "production_orders"),
        }
    finally:
        await shop.close()
        await mes.close()


async def compare_at_rest(platform: FaultPlatform, history: History) -> dict[str, list[str]]:
    """What differs from PostgreSQL: {"entries": [...], "lists": [...], "counts": [...]}."""
    orders = sorted({a.id for a in history.acks if a.kind == "order"})
    production = sorted({a.id for a in history.acks if a.kind == "production"} | history.confirmed)
    clients = sorted({body["client_id"] for body in history.placed.values()})
    shop, mes = await _connect(platform)
    limits = httpx.Limits(max_connections=16)
    try:
        async with httpx.AsyncClient(timeout=10, limits=limits) as http:
            api = _Api(platform, http)
            entries = await _entries(api, shop, "shop", "orders", orders)
            entries += await _entries(api, mes, "mes", "production_orders", production)
            lists = await _lists(api, shop, mes, clients)
            counts = await _compare_counts(api, shop, mes)
    finally:
        await shop.close()
        await mes.close()
    return {"entries": entries, "lists": lists, "counts": counts}


class _Api:
    def __init__(self, platform: FaultPlatform, http: httpx.AsyncClient) -> None:
        self.platform, self.http = platform, http
        self.slots = asyncio.Semaphore(16)

    async def get(self, service: str, path: str, **params: Any) -> Any:
        """The body of a 200, retrying what got no answer or a 503 for up to 20 s."""
        for _ in range(200):
            async with self.slots:
                try:
                    r = await self.http.get(f"{self.platform.url(service)}{path}", params=params)
                except httpx.HTTPError:
                    r = None
            if r is not None and r.status_code != 503:
                return r.json() if r.status_code == 200 else {"status": r.status_code}
            await asyncio.sleep(0.1)
        return {"status": None}


async def _entries(
    api: _Api, db: asyncpg.Connection, service: str, table: str, ids: list[int]
) -> list[str]:
    rows = await db.fetch(f"SELECT id, status, version FROM {table} WHERE id = ANY($1)", ids)
    truth = {r["id"]: (r["version"], r["status"]) for r in rows}
    served = await asyncio.gather(*(api.get(service, f"/orders/{i}") for i in truth))
    differ = []
    for body in served:
        if "id" not in body:
            differ.append(f"{service}: {body}")
        elif (body["version"], body["status"]) != truth[body["id"]]:
            version, status = truth[body["id"]]
            differ.append(
                f"{service} order {body['id']}: served v{body['version']} {body['status']}, "
                f"PostgreSQL v{version} {status}"
            )
    return differ


async def _lists(
    api: _Api, shop: asyncpg.Connection, mes: asyncpg.Connection, clients: list[int]
) -> list[str]:
    newest = "ORDER BY created_at DESC, id DESC LIMIT $2"
    by_status = f"SELECT id FROM orders WHERE status = $1 {newest}"
    by_client = f"SELECT id FROM orders WHERE client_id = $1 {newest}"
    queue = "SELECT id FROM production_orders WHERE status = $1 ORDER BY id LIMIT $2"
    pages: list[tuple[str, str, dict[str, Any], asyncpg.Connection, str]] = [
        *((f"crm status={s}", "crm", {"status": s.value}, shop, by_status) for s in OrderStatus),
        *((f"shop client {c}", "shop", {"client_id": c}, shop, by_client) for c in clients),
        *((f"mes status={p}", "mes", {"status": p.value}, mes, queue) for p in ProductionStatus),
    ]
    truths = [[r["id"] for r in await db.fetch(sql, *p.values(), PAGE)] for *_, p, db, sql in pages]
    bodies = await asyncio.gather(
        *(
            api.get(service, f"/clients/{params['client_id']}/orders", limit=PAGE)
            if "client_id" in params
            else api.get(service, "/orders", limit=PAGE, **params)
            for _, service, params, *_ in pages
        )
    )
    differ = []
    for (name, *_), truth, body in zip(pages, truths, bodies, strict=True):
        served = [item["id"] for item in body.get("items", [])]
        if served != truth:
            missing, extra = sorted(set(truth) - set(served)), sorted(set(served) - set(truth))
            differ.append(f"{name} at rest: missing {missing[:5]}, extra {extra[:5]}")
    return differ


async def _compare_counts(
    api: _Api, shop: asyncpg.Connection, mes: asyncpg.Connection
) -> list[str]:
    differ = []
    truth = await _counts(shop, "orders")
    stats = await api.get("crm", "/orders/stats")
    for s in OrderStatus:
        if stats.get("counts", {}).get(s.value) != truth.get(s.value, 0):
            differ.append(f"crm count {s} at rest: {stats.get('counts')}, PostgreSQL {truth}")
            break
    truth = await _counts(mes, "production_orders")
    for p in ProductionStatus:
        board = await api.get("mes", "/orders", status=p.value, limit=1)
        if board.get("total") != truth.get(p.value, 0):
            differ.append(f"mes total {p} at rest: {board.get('total')}, PostgreSQL {truth}")
    return differ


async def _counts(db: asyncpg.Connection, table: str) -> dict[str, int]:
    rows = await db.fetch(f"SELECT status, count(*) AS n FROM {table} GROUP BY status")
    return {r["status"]: r["n"] for r in rows}


async def _connect(platform: FaultPlatform) -> tuple[asyncpg.Connection, asyncpg.Connection]:
    shop = await asyncpg.connect(asyncpg_dsn(platform.settings.shop_dsn))
    mes = await asyncpg.connect(asyncpg_dsn(platform.settings.mes_dsn))
    return shop, mes
