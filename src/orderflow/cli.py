"""The `orderflow` command."""

import asyncio
import logging
import os
import shutil
import signal
import tempfile
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
import uvicorn
from prometheus_client import start_http_server

from orderflow import platform
from orderflow.kit import trace_config, trace_gate
from orderflow.kit.metrics import MULTIPROC_DIR
from orderflow.kit.server import uvicorn_options
from orderflow.kit.settings import ServiceName, Settings, get_settings
from orderflow.seed import Volumes

if TYPE_CHECKING:
    from fastapi import FastAPI

app = typer.Typer(help="orderflow: Shop, CRM and MES over PostgreSQL, cached in Redis.")


@app.command()
def up(
    data_dir: Annotated[Path | None, typer.Option(help="where embedded servers keep data")] = None,
    redis_cluster: Annotated[
        bool,
        typer.Option(
            "--redis-cluster",
            help="Redis is a cluster (ORDERFLOW_REDIS_CLUSTER): with no ORDERFLOW_REDIS_URL, "
            "start 3 masters + 3 replicas of the embedded redis-server",
        ),
    ] = False,
    workers: Annotated[
        int | None,
        typer.Option(min=1, help="processes of each API on its port (ORDERFLOW_WORKERS, 1)"),
    ] = None,
) -> None:
    """Run the whole platform: servers (embedded unless configured), migrations, demo data,
    the three APIs and the relay. Ctrl-C stops everything; the data stays."""
    settings = get_settings()
    if data_dir is not None:
        settings = settings.model_copy(update={"data_dir": data_dir})
    if workers is not None:
        settings = settings.model_copy(update={"workers": workers})
    if redis_cluster:
        settings = settings.model_copy(update={"redis_cluster": True})
    platform.up(settings)


@app.command()
def serve(
    service: Annotated[str, typer.Argument(help="shop | crm | mes")],
    port: Annotated[int | None, typer.Option(help="default: ORDERFLOW_<SERVICE>_PORT")] = None,
    workers: Annotated[
        int | None, typer.Option(min=1, help="processes on the port (ORDERFLOW_WORKERS, 1)")
    ] = None,
) -> None:
    """Run one API (one process, or `--workers N` processes sharing its port) against
    configured servers."""
    if service not in ("shop", "crm", "mes"):
        raise typer.BadParameter("choose shop, crm or mes", param_hint="SERVICE")
    settings = _configured()
    name: ServiceName = service  # type: ignore[assignment]
    processes = workers or settings.workers
    options = uvicorn_options(settings) | {"port": port or settings.port_of(name)}
    if settings.host not in platform.LOOPBACK:
        typer.echo(
            f"warning: {name} listens on {settings.host}, not loopback: with no login, anyone "
            "who reaches the port can write and switch the cache off (README, Exposure)",
            err=True,
        )
    if processes == 1:
        uvicorn.run(build_app(name, settings), **options)
        return
    # uvicorn's supervisor spawns the workers (and starts a dead one again): each imports the
    # factory below and builds the app from ORDERFLOW_* variables, which it inherits. Each runs
    # the whole lifespan: its own near cache, switch listener, upkeep journal worker, boards'
    # stream reader; the broadcast's registry counts every one of them (service_cache/broadcast.py).
    with multiprocess_metrics(name):
        uvicorn.run(f"orderflow.cli:{name}_app", factory=True, workers=processes, **options)


@contextmanager
def multiprocess_metrics(service: str) -> Iterator[None]:
    """Prometheus's multiprocess mode for the workers: each writes its samples to files in
    PROMETHEUS_MULTIPROC_DIR and `/metrics`, whichever worker answers, adds up every worker's
    (counters and histograms summed, dead workers' counts kept; gauges one series per `pid`).
    A fresh directory per run and API (under the variable's directory if it is set, so that
    the APIs of one `up` never add up each other's samples), removed at the end."""
    parent = os.environ.get(MULTIPROC_DIR)
    directory = tempfile.mkdtemp(prefix=f"orderflow-{service}-metrics-", dir=parent or None)
    os.environ[MULTIPROC_DIR] = directory  # read by the spawned workers' prometheus_client
    try:
        yield
    finally:
        if parent:
            os.environ[MULTIPROC_DIR] = parent
        else:
            del os.environ[MULTIPROC_DIR]
        shutil.rmtree(directory, ignore_errors=True)


def shop_app() -> "FastAPI":
    """The factory each worker of `serve shop --workers N` calls."""
    return build_app("shop", get_settings())  # type: ignore[no-any-return]


def crm_app() -> "FastAPI":
    return build_app("crm", get_settings())  # type: ignore[no-any-return]


def mes_app() -> "FastAPI":
    return build_app("mes", get_settings())  # type: ignore[no-any-return]


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
    trace_config.install_log_context()  # log lines carry the trace id
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s relay trace=%(trace_id)s %(message)s"
    )
    _run_fast(_relay(settings))


def _run_fast(main: Coroutine[Any, Any, None]) -> None:
    """`asyncio.run` on uvloop where there is one, as uvicorn runs the APIs: the relay is a
    loop of small database and Redis round trips, and the pure-Python loop's selector and
    socket writes were half of its profile under load."""
    try:
        import uvloop
    except ImportError:  # Windows
        asyncio.run(main)
    else:
        uvloop.run(main)


async def _relay(settings: Settings) -> None:
    from orderflow.relay.bell import listening
    from orderflow.relay.relay import opened, run

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    _export_metrics(settings.host, settings.relay_metrics_port)
    async with opened(settings) as ways, listening([settings.shop_dsn, settings.mes_dsn]) as bell:
        batch, idle_s = settings.relay_batch_size, settings.relay_idle_sleep_s
        with trace_gate.untraced():  # as `kit.tasks.background`: its batches' spans record
            await run(ways, stop, batch=batch, idle_s=idle_s, bell=bell)


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


def _configured() -> Settings:
    settings = get_settings()
    missing = [n for n in ("shop_dsn", "mes_dsn") if not getattr(settings, n)]
    if missing:
        names = ", ".join(f"ORDERFLOW_{n.upper()}" for n in missing)
        raise typer.BadParameter(f"set {names} (or use `orderflow up`, which starts servers)")
    return settings
