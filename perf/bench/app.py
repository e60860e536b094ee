"""The bench app: every variant of the read path in one FastAPI app, served by one process.

It is built by the platform's own factory (`create_app`), so it has the Shop's and the CRM's
middleware, error handlers, engine pool and Redis client settings, and it calls the real
service functions. One route, `GET /r/{variant}/{kind}/{key}`, serves every variant, so that
routing and parameter parsing cost the same for all of them:

    ceiling   the same number of pre-serialised bytes, from memory: the framework's ceiling
    off       the service function with the ServiceCache's reads off: PostgreSQL every time
    ours      the same function with reads on, as the platform runs it: orderflow.cache with
              the in-process near cache where the platform keeps one (items, catalogue pages)
    near      the same as ours with the near cache's TTL lengthened to the run's, so that every
              read is a near hit: the near cache's hit path alone (items, catalogue pages only)
    ours-redis  the same with the near cache off: every hit is a Redis round trip
    redis     one bare `GET` of the same bytes with the platform's Redis client
    cashews   cashews' `@cache` around the `off` loader, on the same Redis
    redis:<probe>  a bare `GET` through a differently configured client (the p99 tail study)
    asyncpg   (an order only) the statement a miss runs, `fetchrow` on a bare asyncpg pool, the
              row rendered as the service renders it: the floor of an uncached read

Control routes under /bench/ warm the caches, list the keys of a kind and report counters.
Run with `python -m perf.bench.app --port P --cpu 0` (settings from ORDERFLOW_* variables).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, cast

import asyncpg
import cashews
import uvicorn
from fastapi import APIRouter, FastAPI, Request
from redis.asyncio import BlockingConnectionPool, Redis
from sqlalchemy import text

from orderflow.cache import metrics as cache_metrics
from orderflow.kit import metrics as kit_metrics
from orderflow.kit.app import create_app
from orderflow.kit.db import asyncpg_dsn
from orderflow.kit.errors import NotFound
from orderflow.kit.http import JSONBytes, dumps
from orderflow.kit.pagination import Page
from orderflow.kit.redis import create_redis
from orderflow.kit.resources import Resources
from orderflow.kit.settings import Settings, get_settings
from orderflow.kit.unit_of_work import UnitOfWork
from orderflow.sales.caching import NEAR
from orderflow.sales.catalogue import service as items
from orderflow.sales.context import Sales
from orderflow.sales.orders import reads as views
from orderflow.sales.orders.lifecycle import OrderStatus
from orderflow.sales.orders.repository import ORDER_BY_ID
from orderflow.sales.orders.schemas import order_row_dict
from orderflow.service_cache.facade import ServiceCache
from orderflow.service_cache.modes import CacheModes

PAGE = Page(limit=20, offset=0)
LIST_PAGE = Page(limit=50, offset=0)  # a client's orders as the endpoints default them
RAW_TTL_S = 3600  # the bare-GET copies; far longer than any run
Fetch = Callable[[str], Awaitable[bytes]]


@dataclass(frozen=True)
class Kind:
    """A data kind: how the real service loads it, and which service's switch governs it."""

    service: str  # "shop" or "crm": the CacheModes field its reads obey
    load: Callable[[Sales, str], Awaitable[bytes]]


async def _item(shop: Sales, key: str) -> bytes:
    return await items.get_item(shop, int(key))


async def _catalogue(shop: Sales, key: str) -> bytes:
    return await items.search_items(shop, key, None, PAGE)


async def _orders(shop: Sales, key: str) -> bytes:
    return await views.list_orders(shop, status=OrderStatus(key), page=PAGE)


async def _counts(shop: Sales, key: str) -> bytes:
    return await views.counts_by_status(shop)


async def _order(shop: Sales, key: str) -> bytes:
    return await views.get_order(shop, int(key))


async def _client_orders(shop: Sales, key: str) -> bytes:
    return await views.orders_of_client(shop, int(key), LIST_PAGE)


async def _crm_client_orders(shop: Sales, key: str) -> bytes:
    return await views.list_orders(shop, client_id=int(key), page=LIST_PAGE)


KINDS = {
    "item": Kind("shop", _item),  # GET /items/{id}
    "catalogue": Kind("shop", _catalogue),  # GET /items?category=...&limit=20
    "orders": Kind("crm", _orders),  # CRM GET /orders?status=...&limit=20
    "counts": Kind("crm", _counts),  # CRM GET /orders/stats
    # The cold-key bench's (perf/bench/cold.py): keys over the whole data set, nearly all misses.
    "order": Kind("shop", _order),  # Shop GET /orders/{id}
    "client-orders": Kind("shop", _client_orders),  # Shop GET /clients/{id}/orders
    "crm-client-orders": Kind("crm", _crm_client_orders),  # CRM GET /orders?client_id=
}
VARIANTS = ("ceiling", "off", "ours", "near", "ours-redis", "redis", "cashews")
NEAR_KINDS = ("item", "catalogue")  # what the platform keeps near; "near" is measured for these


def probe_clients(url: str, settings: Settings) -> dict[str, Redis]:
    """Redis clients that differ from the platform's (kit/redis.py) in one setting each."""
    kit: dict[str, Any] = {
        "socket_timeout": settings.redis_timeout_s,
        "socket_connect_timeout": settings.redis_timeout_s,
        "retry_on_timeout": False,
        "retry": None,
        "health_check_interval": 30,
        "max_connections": 256,
    }
    return {
        "kit": create_redis(url, settings, name="bench-kit"),  # as the services build it
        "defaults": Redis.from_url(url),  # redis-py's defaults: no timeouts, unbounded pool
        "no-timeout": Redis.from_url(url, **(kit | {"socket_timeout": None})),
        "no-health-check": Redis.from_url(url, **(kit | {"health_check_interval": 0})),
        "pool-8": Redis(
            connection_pool=BlockingConnectionPool.from_url(
                url, **(kit | {"max_connections": 8, "timeout": 5})
            )
        ),
        "single": Redis.from_url(url, **kit, single_connection_client=True),
    }


class Bench:
    """Everything the read route dispatches to, built once the resources are open."""

    def __init__(self, settings: Settings, resources: Resources) -> None:
        assert resources.redis is not None, "the bench needs Redis"
        self.settings = settings
        self.resources = resources
        self.redis = resources.redis
        self.modes = {m: _modes(settings, m) for m in ("off", "on")}
        self.near_caches: list[ServiceCache] = []  # to close: each listens on a bus
        self.ceilings: dict[str, bytes] = {}
        self.loads: Counter[str] = Counter()  # loader calls of the redis and cashews variants
        self.cashews = cashews.Cache()
        self.cashews.setup(settings.redis_url)  # the library's defaults, the bench's Redis
        self.probes = probe_clients(settings.redis_url, settings)
        self.fetches: dict[tuple[str, str], Fetch] = {}
        self.pool: asyncpg.Pool | None = None  # the asyncpg variant's (`open_pool`)
        for kind in KINDS:
            self.fetches |= {(v, kind): self._fetch(v, kind) for v in VARIANTS}
            self.fetches |= {
                (f"redis:{name}", kind): self._bare_get(client, kind, f"redis:{name}")
                for name, client in self.probes.items()
            }

    def shop(
        self, mode: str, service: str, *, near: bool = False, near_ttl_s: float | None = None
    ) -> Sales:
        """A Sales context whose ServiceCache reads obey `mode` ("on"/"off") for `service`;
        with `near`, it also keeps the platform's near-cached entities in the process, as
        `create_app` sets it up (drops broadcast on the namespace's bus), for `near_ttl_s`
        (default: the platform's setting). Opened as the platform opens it (`Sales.open`)."""
        sales = Sales.open(self.resources, self.modes[mode], service)
        cache = sales.cache
        settings = self.settings
        if near_ttl_s is not None:
            settings = settings.model_copy(update={"near_cache_ttl_s": near_ttl_s})
        if near and settings.near_cache_ttl_s > 0:
            cache.keep_near(NEAR, settings, "shop")
            self.near_caches.append(cache)
        return sales

    def _fetch(self, variant: str, kind: str) -> Fetch:
        spec = KINDS[kind]
        if variant == "ceiling":
            return self._ceiling(kind)
        if variant == "redis":
            return self._bare_get(self.redis, kind, "redis")
        if variant == "cashews":
            return self._cashews(kind)
        if variant == "ours":
            shop = self.shop("on", spec.service, near=True)
        elif variant == "near":
            shop = self.shop("on", spec.service, near=True, near_ttl_s=RAW_TTL_S)
        else:
            shop = self.shop("on" if variant == "ours-redis" else "off", spec.service)
        return lambda key: spec.load(shop, key)

    async def open_pool(self) -> None:
        """The bare asyncpg pool of the `asyncpg` variant, as large as the engine's pool."""
        size = 2 * self.settings.db_pool_size  # kit/db.py: twice the setting, all kept
        self.pool = await asyncpg.create_pool(
            asyncpg_dsn(self.settings.shop_dsn), min_size=size, max_size=size, reset=_keep
        )
        self.fetches["asyncpg", "order"] = self._bare_order

    async def _bare_order(self, key: str) -> bytes:
        assert self.pool is not None
        row = await self.pool.fetchrow(ORDER_BY_ID, int(key))
        if row is None:
            raise NotFound(f"order {key} does not exist")
        return dumps(order_row_dict(row))

    def _ceiling(self, kind: str) -> Fetch:
        async def fetch(key: str) -> bytes:
            return self.ceilings[kind]

        return fetch

    def _bare_get(self, client: Redis, kind: str, label: str) -> Fetch:
        spec, shop = KINDS[kind], self.shop("off", KINDS[kind].service)

        async def fetch(key: str) -> bytes:
            raw = cast(bytes | None, await client.get(raw_key(kind, key)))  # not decoded
            if raw is None:  # not expected after warm-up; counted so the report shows it
                self.loads[f"{label}:{kind}"] += 1
                return await spec.load(shop, key)
            return raw

        return fetch

    def _cashews(self, kind: str) -> Fetch:
        spec, shop = KINDS[kind], self.shop("off", KINDS[kind].service)

        async def load(key: str) -> bytes:
            self.loads[f"cashews:{kind}"] += 1
            return await spec.load(shop, key)

        fetch: Fetch = self.cashews(ttl="1h", key=f"bench:{kind}:{{key}}")(load)
        return fetch

    async def keys(self, kind: str) -> list[str]:
        """Every key of a kind that the load generator may ask for."""
        if kind == "item":
            sql = "SELECT id::text FROM items ORDER BY id"
        elif kind == "catalogue":
            sql = "SELECT DISTINCT category FROM items ORDER BY category"
        elif kind == "orders":
            return [s.value for s in OrderStatus]
        elif kind == "order":
            sql = "SELECT id::text FROM orders ORDER BY id"
        elif kind in ("client-orders", "crm-client-orders"):
            sql = "SELECT id::text FROM clients ORDER BY id"
        else:
            return ["all"]
        async with UnitOfWork(self.resources.sessions["shopdb"]) as uow:
            return list((await uow.session.scalars(text(sql))).all())

    async def warm(self, kind: str) -> dict[str, Any]:
        """Fill our cache, the bare-GET copies and cashews for every key of `kind`; check that
        every variant answers the same bytes for the first key; set the kind's ceiling."""
        keys = await self.keys(kind)
        ours, cashews_fetch = self.fetches["ours", kind], self.fetches["cashews", kind]

        near = self.fetches["near", kind]

        async def one(key: str) -> None:
            body = await ours(key)
            await self.redis.set(raw_key(kind, key), body, ex=RAW_TTL_S)
            await cashews_fetch(key)
            await near(key)  # into the long-lived near cache

        for start in range(0, len(keys), 16):  # a few at a time: warm, not a stampede
            await asyncio.gather(*(one(k) for k in keys[start : start + 16]))
        first = keys[0]
        self.ceilings[kind] = await ours(first)
        answers = {v: await self.fetches[v, kind](first) for v in VARIANTS if v != "ceiling"}
        differ = [v for v, body in answers.items() if body != answers["off"]]
        return {"keys": len(keys), "bytes": len(self.ceilings[kind]), "differ": differ}

    async def close(self) -> None:
        for cache in self.near_caches:
            await cache.close()
        for modes in self.modes.values():
            await modes.stop()
        for client in self.probes.values():
            await client.aclose()
        await self.cashews.close()
        if self.pool is not None:
            await self.pool.close()


async def _keep(conn: asyncpg.Connection) -> None:
    """A connection back in the floor's pool as it is: asyncpg's default reset (`RESET ALL`,
    `UNLISTEN *`, ...) is one more round trip per request, which the engine's pool never
    pays (kit/lean.py runs one statement and resets nothing)."""


def raw_key(kind: str, key: str) -> str:
    return f"bench:raw:{kind}:{key}"


def _modes(settings: Settings, mode: str) -> CacheModes:
    """The platform's cache switch with every service's reads set to `mode`; never started,
    so that nothing flips it during a run."""
    values = {"cache_shop": mode, "cache_crm": mode}
    return CacheModes(settings.model_copy(update=values), settings.redis_url)


class GcWatch:
    """Collections and their pauses per generation, seen through `gc.callbacks`.

    A full (generation 2) collection walks every live object of the process, tens of
    milliseconds in an app this size: a candidate for a p99 tail, so the bench records them.
    """

    def __init__(self) -> None:
        self.collections = [0, 0, 0]
        self.pause_s = [0.0, 0.0, 0.0]
        self.max_pause_s = [0.0, 0.0, 0.0]  # since the last `snapshot`
        self._started = 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
            return
        generation, paused = info["generation"], time.perf_counter() - self._started
        self.collections[generation] += 1
        self.pause_s[generation] += paused
        self.max_pause_s[generation] = max(self.max_pause_s[generation], paused)

    def snapshot(self) -> dict[str, Any]:
        """Totals so far, and the longest pauses since the previous snapshot."""
        taken = {
            "collections": list(self.collections),
            "pause_s": list(self.pause_s),
            "max_pause_s": list(self.max_pause_s),
        }
        self.max_pause_s = [0.0, 0.0, 0.0]
        return taken


GC_WATCH = GcWatch()


def counters() -> dict[str, Any]:
    """The process's Prometheus counters that the report needs, read in-process."""
    cache: Counter[str] = Counter()
    for sample in cache_metrics.REQUESTS.collect()[0].samples:
        if sample.name.endswith("_total"):
            cache[sample.labels["result"]] += int(sample.value)
    queries = sum(
        int(s.value)
        for s in kit_metrics.DB_QUERIES.collect()[0].samples
        if s.name.endswith("_total")
    )
    return {"cache": dict(cache), "db_queries": queries, "gc": GC_WATCH.snapshot()}


reads = APIRouter()
control = APIRouter(prefix="/bench")


def _bench(request: Request) -> Bench:
    bench: Bench = request.app.state.bench
    return bench


@reads.get("/r/{variant}/{kind}/{key}")
async def read(request: Request, variant: str, kind: str, key: str) -> JSONBytes:
    """One read of `kind` at `key` through `variant`."""
    fetch = _bench(request).fetches.get((variant, kind))
    if fetch is None:
        raise NotFound(f"no variant {variant} of {kind}")
    return JSONBytes(await fetch(key))


@control.get("/keys/{kind}")
async def keys_of(request: Request, kind: str) -> dict[str, list[str]]:
    return {"keys": await _bench(request).keys(kind)}


@control.post("/warm/{kind}")
async def warm(request: Request, kind: str) -> dict[str, Any]:
    return await _bench(request).warm(kind)


@control.get("/counters")
async def read_counters(request: Request) -> dict[str, Any]:
    return counters() | {"loads": dict(_bench(request).loads)}


@control.post("/gc/{mode}")
async def set_gc(mode: str) -> dict[str, Any]:
    """Change the server's garbage collector for a probe, and back:

    `unfreeze` puts what `create_app` froze at start-up back in the collector's sight (the
    state before that fix); `freeze` moves everything alive now out of it; `off` and `on`
    disable and enable it; `collect` times one full collection now.
    """
    if mode == "collect":
        started = time.perf_counter()
        gc.collect()
        took = time.perf_counter() - started
        return {"full_collection_ms": took * 1000, "tracked": len(gc.get_objects())}
    if mode == "unfreeze":
        gc.unfreeze()
    elif mode == "freeze":
        gc.collect()
        gc.freeze()
    elif mode == "off":
        gc.disable()
    elif mode == "on":
        gc.enable()
    else:
        raise NotFound(f"no collector mode {mode}")
    return {"enabled": gc.isenabled(), "frozen": gc.get_freeze_count()}


def build(settings: Settings) -> FastAPI:
    @asynccontextmanager
    async def bench_state(app: FastAPI, resources: Resources) -> AsyncIterator[None]:
        app.state.bench = Bench(settings, resources)
        await app.state.bench.open_pool()
        try:
            yield
        finally:
            await app.state.bench.close()

    return create_app(
        "bench",
        settings,
        databases=("shopdb",),
        namespace="shop",
        context=Sales.open,  # the app's own context; the variants build theirs (`Bench.shop`)
        routers=[control, reads],
        description="The read path, side by side (bench/reads.py).",
        extra=bench_state,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--cpu", type=int, default=None, help="pin the server to this core")
    args = parser.parse_args()
    if args.cpu is not None:
        os.sched_setaffinity(0, {args.cpu})
    gc.callbacks.append(GC_WATCH)
    settings = get_settings()
    uvicorn.run(
        build(settings),
        host="127.0.0.1",
        port=args.port,
        workers=1,
        loop="uvloop",
        http="httptools",
        access_log=False,
        log_level="warning",
    )


if __name__ == "__main__":
    main()
