"""The screens' render cost: a page's HTML beside the JSON of the same read, hit, cold and off.

    python -m perf.pages              # its own servers (the read bench's data set); `make bench`
    python -m perf.pages --platform   # beside `make run`, or the servers ORDERFLOW_* name

In-process (the Shop and the CRM apps behind httpx's ASGI transport), over the read bench's own
embedded servers and data set (`perf.bench.data.servers`, Redis emptied first so that cold pages
are cold), or with `--platform` over a running platform's, so that the figures are the service's
own work: wall time and, robust on a busy machine, this process's CPU time per
request. The Shop's catalogue page (`/?page=N`, 24 items) is set beside `GET /items?limit=24`,
the CRM's order list (`/?status=created&page=N`, 25 orders and the counts by status) beside
`GET /orders?status=created&limit=25`. "hit" repeats one page (every read a cache hit); "cold"
reads pages never read since Redis started (a miss that fills: start from an empty cache, or
pass `--first-cold-page`); "off" repeats one page with the cache switched off, "off, cold pages"
reads the cold figure's pages with it off. HTML and JSON read different pages when cold, as
they share the cache entries.
"""

import argparse
import asyncio
import statistics
import time
from argparse import Namespace
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
from redis.asyncio import Redis

from orderflow.cli import build_app
from orderflow.kit.settings import ServiceName, Settings
from perf.bench.data import servers
from perf.common import describe_machine, write_section

HEADING = "## Screens: a page's HTML beside its JSON (`perf.pages`)"

Url = Callable[[int], str]  # page number -> path
Samples = tuple[list[float], list[float]]  # wall ms, CPU ms


@asynccontextmanager
async def in_process(service: ServiceName, settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    app = build_app(service, settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
            yield client


async def timed(client: httpx.AsyncClient, paths: list[str]) -> Samples:
    wall, cpu = [], []
    for path in paths:
        start, start_cpu = time.perf_counter(), time.process_time()
        response = await client.get(path)
        cpu.append((time.process_time() - start_cpu) * 1000)
        wall.append((time.perf_counter() - start) * 1000)
        response.raise_for_status()
    return wall, cpu


def summary(samples: Samples) -> str:
    wall, cpu = samples
    return f"{statistics.median(wall):6.2f} ms (CPU {statistics.median(cpu):5.2f})"


async def rows_of(
    client: httpx.AsyncClient, html: Url, json: Url, first: int, n: int
) -> list[tuple[str, Samples, Samples]]:
    cold = n // 10
    cold_html = [html(first + i) for i in range(cold)]
    cold_json = [json(first + cold + i) for i in range(cold)]
    for path in (html(1), json(1)):
        await timed(client, [path] * 50)  # warm: code paths, the hit entries
    rows = [
        ("hit", await timed(client, [html(1)] * n), await timed(client, [json(1)] * n)),
        ("cold", await timed(client, cold_html), await timed(client, cold_json)),
    ]
    (await client.put("/admin/cache", json={"mode": "off"})).raise_for_status()
    try:
        rows.append(("off", await timed(client, [html(1)] * n), await timed(client, [json(1)] * n)))
        rows.append(
            ("off, cold pages", await timed(client, cold_html), await timed(client, cold_json))
        )
    finally:
        (await client.put("/admin/cache", json={"mode": "on"})).raise_for_status()
    return rows


def platform_settings() -> Settings:
    """The running platform's servers: configured ones, else `make run`'s embedded ones."""
    settings = Settings()
    host = "postgresql://postgres@127.0.0.1"
    return settings.model_copy(
        update={
            "shop_dsn": settings.shop_dsn or f"{host}:{settings.embedded_pg_port}/shopdb",
            "mes_dsn": settings.mes_dsn or f"{host}:{settings.embedded_pg_port}/mesdb",
            "redis_url": settings.redis_url
            or f"redis://127.0.0.1:{settings.embedded_redis_port}/0",
        }
    )


async def measure(
    settings: Settings, service: ServiceName, name: str, html: Url, json: Url, args: Namespace
) -> list[str]:
    async with in_process(service, settings) as client:
        rows = await rows_of(client, html, json, args.first_cold_page, args.n)
    lines = []
    for label, html_ms, json_ms in rows:
        ratio = statistics.median(html_ms[0]) / statistics.median(json_ms[0])
        lines.append(
            f"| {name} | {label} | {summary(html_ms)} | {summary(json_ms)} | {ratio:.2f} |"
        )
    return lines


def parse_args() -> Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("-n", type=int, default=400, help="requests per hit and off figure")
    parser.add_argument("--first-cold-page", type=int, default=2, help="pages before are warm")
    parser.add_argument("--platform", action="store_true", help="measure a running platform")
    parser.add_argument("--orders", type=int, default=1_000_000, help="orders in the data set")
    parser.add_argument("--data-dir", type=Path, default=Path(".orderflow/bench"))
    parser.add_argument("--docs", type=Path, default=Path("docs/performance.md"))
    return parser.parse_args()


async def table(settings: Settings, args: Namespace) -> list[str]:
    head = "| read | cache | HTML: median wall (CPU) | JSON: median wall (CPU) | HTML/JSON |"
    lines = [head, "|---|---|---|---|---|"]
    lines += await measure(
        settings,
        "shop",
        "catalogue",
        lambda p: f"/?page={p}",
        lambda p: f"/items?limit=24&offset={(p - 1) * 24}",
        args,
    )
    lines += await measure(
        settings,
        "crm",
        "CRM list",
        lambda p: f"/?status=created&page={p}",
        lambda p: f"/orders?status=created&limit=25&offset={(p - 1) * 25}",
        args,
    )
    return lines


def write(lines: list[str], settings: Settings, args: Namespace) -> None:
    body = "\n".join(lines)
    section = f"""{HEADING}

`python -m perf.pages` (part of `make bench`), on {args.orders:,} orders: one request at a time,
in-process, median of {args.n} requests (hit, off) or {args.n // 10} pages never read before
(cold). The catalogue page is 24 items and the categories; the CRM list is 25 orders and the
counts by status, which its JSON twin does not read.

{body}
"""
    write_section(args.docs, HEADING, section, describe_machine(settings))


def main() -> None:
    args = parse_args()
    if args.platform:
        print("\n".join(asyncio.run(table(platform_settings(), args))))
        return
    with servers(args.data_dir, args.orders, reseed=False) as settings:
        asyncio.run(_flush(settings.redis_url))
        lines = asyncio.run(table(settings, args))
        print("\n".join(lines))
        write(lines, settings, args)  # the machine's description asks the servers their versions


async def _flush(redis_url: str) -> None:
    """The bench's own Redis, emptied: cold pages must be misses."""
    redis = Redis.from_url(redis_url)
    try:
        await redis.flushall()
    finally:
        await redis.aclose()


if __name__ == "__main__":
    main()
