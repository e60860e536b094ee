"""The `orderflow` command."""

import asyncio
import logging
import signal
from pathlib import Path
from typing import Annotated

import typer
import uvicorn
from prometheus_client import start_http_server

from orderflow import platform
from orderflow.kit.settings import ServiceName, Settings, get_settings
from orderflow.seed import Volumes

app = typer.Typer(help="orderflow: Shop, CRM and MES over PostgreSQL, cached in Redis.")


@app.command()
def up(
    data_dir: Annotated[Path | None, typer.Option(help="where embedded servers keep data")] = None,
) -> None:
    """Run the whole platform: servers (embedded unless configured), migrations, demo data,
    the three APIs and the relay. Ctrl-C stops everything; the data stays."""
    settings = get_settings()
    if data_dir is not None:
        settings = settings.model_copy(update={"data_dir": data_dir})
    platform.up(settings)


@app.command()
def serve(
    service: Annotated[str, typer.Argument(help="shop | crm | mes")],
    port: Annotated[int | None, typer.Option(help="default: ORDERFLOW_<SERVICE>_PORT")] = None,
) -> None:
    """Run one API process against configured servers."""
    if service not in ("shop", "crm", "mes"):
        raise typer.BadParameter("choose shop, crm or mes", param_hint="SERVICE")
    settings = _configured()
    name: ServiceName = service  # type: ignore[assignment]
    uvicorn.run(
        build_app(name, settings),
        host=settings.host,
        port=port or settings.port_of(name),
        access_log=False,
        log_level="warning",
        # Longer than clients keep idle connections (httpx: 5 s): a server that closes first
        # races the client's next request on that connection, which then fails unanswered.
        timeout_keep_alive=75,
        timeout_graceful_shutdown=10,
    )


def build_app(service: ServiceName, settings: Settings):  # type: ignore[no-untyped-def]
    if service == "shop":
        from orderflow.apps.shop.app import build
    elif service == "crm":
        from orderflow.apps.crm.app import build
    else:
        from orderflow.apps.mes.app import build
    return build(settings)


@app.command()
def relay() -> None:
    """Run the outbox relay between ShopDB and the MES db until SIGTERM or Ctrl-C."""
    settings = _configured()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s relay %(message)s")
    asyncio.run(_relay(settings))


async def _relay(settings: Settings) -> None:
    from orderflow.relay.relay import opened, run

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    _export_metrics(settings.host, settings.relay_metrics_port)
    async with opened(settings) as ways:
        await run(ways, stop, batch=settings.relay_batch_size, idle_s=settings.relay_idle_sleep_s)


def _export_metrics(host: str, port: int) -> None:
    """The relay has no API of its own: its Prometheus metrics get a small server."""
    if not port:
        return
    try:
        start_http_server(port, addr=host)
    except OSError as exc:  # a second relay on one machine: it relays all the same
        logging.warning("relay metrics not exported on port %s: %s", port, exc)


@app.command()
def migrate() -> None:
    """Bring both databases to the newest schema (embedded servers when none configured)."""
    with platform.servers(get_settings()) as live:
        platform.migrate(live)


@app.command("seed")
def seed_command(
    orders: Annotated[int, typer.Option(min=0)] = 200_000,
    clients: Annotated[int, typer.Option(min=1)] = 50_000,
    items: Annotated[int, typer.Option(min=1)] = 5_000,
    categories: Annotated[int, typer.Option(min=1, max=1000)] = 20,
    operators: Annotated[int, typer.Option(min=1)] = 20,
) -> None:
    """Load demo data into empty databases (migrating them first)."""
    volumes = Volumes(items, categories, clients, orders, operators)
    with platform.servers(get_settings()) as live:
        platform.migrate(live)
        platform.load(live, volumes)


@app.command()
def loadtest(
    start: Annotated[
        bool | None,
        typer.Option(
            "--start/--no-start",
            help="start `orderflow up` for the test and stop it after (default: only when "
            "nothing answers /health at the configured URLs)",
        ),
    ] = None,
    data_dir: Annotated[
        Path | None, typer.Option(help="data dir of a platform we start; default .orderflow")
    ] = None,
    orders: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="ORDERFLOW_SEED_ORDERS of a platform we start in a fresh --data-dir; for "
            "1,000,000 orders `orderflow seed --orders 1000000` into an empty data dir first",
        ),
    ] = None,
    steps: Annotated[
        str, typer.Option(help="users at each step, comma-separated")
    ] = "5,10,20,40,80",
    step_seconds: Annotated[float, typer.Option(min=1)] = 30.0,
    warmup_seconds: Annotated[float, typer.Option(min=0)] = 30.0,
    think_ms: Annotated[float, typer.Option(min=0, help="mean pause between tasks")] = 300.0,
    probe_rate: Annotated[float, typer.Option(min=1, help="open-model requests/s")] = 200.0,
    probe_seconds: Annotated[float, typer.Option(min=0, help="per endpoint; 0: no probe")] = 20.0,
    warm_items: Annotated[
        bool,
        typer.Option(
            "--warm-items/--cold-items",
            help="cache on: read every item once before the steps, as the quiet-window job "
            "warms them in production (--cold-items: measure from a cold cache)",
        ),
    ] = True,
    sla_read_ms: Annotated[float, typer.Option(help="p95 target of reads")] = 50.0,
    sla_order_ms: Annotated[float, typer.Option(help="p95 target of order placement")] = 150.0,
    sla_claim_ms: Annotated[float, typer.Option(help="p95 target of claims")] = 100.0,
    sla_errors: Annotated[int, typer.Option(min=0, help="errors allowed per group")] = 0,
    sla_min_samples: Annotated[
        int, typer.Option(min=1, help="fewer requests of a group at a step: p95 not judged")
    ] = 20,
    reports: Annotated[Path, typer.Option(help="reports/loadtest-<timestamp>/ go here")] = Path(
        "reports"
    ),
    docs: Annotated[
        bool, typer.Option("--docs/--no-docs", help="write our section of docs/performance.md")
    ] = True,
) -> None:
    """Locust users of the three roles against a running platform (started when none runs):
    cache off then on, a step load and an open-model probe; SLA verdicts and an HTML report."""
    import sys

    from orderflow.loadtest.config import Options, Sla
    from orderflow.loadtest.runner import run

    settings = get_settings()
    try:
        counts = tuple(int(n) for n in steps.split(","))
    except ValueError as exc:
        raise typer.BadParameter("comma-separated user counts", param_hint="--steps") from exc
    if not counts or min(counts) < 1:
        raise typer.BadParameter("comma-separated user counts", param_hint="--steps")
    options = Options(
        urls={s: f"http://{settings.host}:{settings.port_of(s)}" for s in platform.SERVICES},
        start=start,
        data_dir=data_dir or settings.data_dir,
        orders=orders,
        steps=counts,
        step_seconds=step_seconds,
        warmup_seconds=warmup_seconds,
        think_ms=think_ms,
        probe_rate=probe_rate,
        probe_seconds=probe_seconds,
        warm_items=warm_items,
        sla=Sla(sla_read_ms, sla_order_ms, sla_claim_ms, sla_errors, sla_min_samples),
        reports_dir=reports,
        docs=Path("docs/performance.md") if docs else None,
        command=" ".join(["orderflow", *sys.argv[1:]]),
    )
    if run(options) is None:
        raise typer.Exit(1)


def _configured() -> Settings:
    settings = get_settings()
    missing = [n for n in ("shop_dsn", "mes_dsn") if not getattr(settings, n)]
    if missing:
        names = ", ".join(f"ORDERFLOW_{n.upper()}" for n in missing)
        raise typer.BadParameter(f"set {names} (or use `orderflow up`, which starts servers)")
    return settings
