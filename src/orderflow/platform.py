"""`orderflow up`: servers, migrations, demo data, then the APIs and the relay as children."""

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import httpx
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from orderflow.data.migrations import upgrade
from orderflow.kit.embedded import EmbeddedPostgres, EmbeddedRedis
from orderflow.kit.embedded_cluster import EmbeddedRedisCluster
from orderflow.kit.settings import ServiceName, Settings
from orderflow.seed import Volumes, is_empty, seed

console = Console(stderr=True)
SERVICES: tuple[ServiceName, ...] = ("shop", "crm", "mes")


@contextmanager
def servers(settings: Settings) -> Iterator[Settings]:
    """Yield settings whose URLs point at running servers, starting embedded ones as needed."""
    started: list[EmbeddedPostgres | EmbeddedRedis | EmbeddedRedisCluster] = []
    updates: dict[str, str] = {}
    try:
        if not (settings.shop_dsn and settings.mes_dsn):
            pg = EmbeddedPostgres(settings.data_dir.resolve() / "pg", settings.embedded_pg_port)
            console.print(f"starting PostgreSQL on 127.0.0.1:{pg.port} (data in {pg.data_dir})")
            pg.start()
            started.append(pg)
            for db in ("shopdb", "mesdb"):
                pg.create_database(db)
            updates |= {"shop_dsn": settings.shop_dsn or pg.dsn("shopdb")}
            updates |= {"mes_dsn": settings.mes_dsn or pg.dsn("mesdb")}
        if not settings.redis_url and settings.redis_cluster:
            cluster = start_redis_cluster(settings)
            started.append(cluster)
            updates["redis_url"] = cluster.url
        elif not settings.redis_url:
            redis = EmbeddedRedis(
                settings.data_dir.resolve() / "redis", settings.embedded_redis_port
            )
            console.print(f"starting redis-server on 127.0.0.1:{redis.port}")
            redis.start()
            started.append(redis)
            updates["redis_url"] = redis.url
        yield settings.model_copy(update=updates)
    finally:
        for server in reversed(started):
            server.stop()


def start_redis_cluster(settings: Settings) -> EmbeddedRedisCluster:
    """3 masters and 3 replicas of the embedded redis-server, a fresh cluster every time."""
    cluster = EmbeddedRedisCluster(
        settings.data_dir.resolve() / "redis-cluster", settings.embedded_redis_cluster_port
    )
    first, last = cluster.nodes[0], cluster.nodes[-1]
    console.print(
        f"starting a Redis Cluster of 3 masters and 3 replicas on 127.0.0.1:{first}-{last}"
    )
    started = time.perf_counter()
    cluster.start()
    masters = cluster.master_ports()
    pairs = ", ".join(f"{m} (replica {cluster.replica_of(m)})" for m in masters)
    console.print(
        f"Redis Cluster up after {time.perf_counter() - started:.1f}s: masters {pairs}; "
        "all 16384 slots served"
    )
    return cluster


def migrate(settings: Settings) -> None:
    upgrade("shopdb", settings.shop_dsn)
    upgrade("mesdb", settings.mes_dsn)


def progress_bar() -> Progress:
    columns = [TextColumn("{task.description:<30}"), BarColumn(), MofNCompleteColumn()]
    return Progress(*columns, TimeElapsedColumn(), console=console)


def seed_if_empty(settings: Settings) -> None:
    if not asyncio.run(is_empty(settings.shop_dsn)):
        console.print("databases already hold data: not seeding")
        return
    load(settings, volumes_of(settings))


def load(settings: Settings, volumes: Volumes) -> None:
    started = time.perf_counter()
    with progress_bar() as progress:
        asyncio.run(seed(settings.shop_dsn, settings.mes_dsn, volumes, progress=progress))
    console.print(f"seeded {volumes.orders:,} orders in {time.perf_counter() - started:.1f}s")


def volumes_of(settings: Settings) -> Volumes:
    return Volumes(
        items=settings.seed_items,
        categories=settings.seed_categories,
        clients=settings.seed_clients,
        orders=settings.seed_orders,
        operators=settings.seed_operators,
    )


def child_env(settings: Settings) -> dict[str, str]:
    env = dict(os.environ)
    env["ORDERFLOW_SHOP_DSN"] = settings.shop_dsn
    env["ORDERFLOW_MES_DSN"] = settings.mes_dsn
    env["ORDERFLOW_REDIS_URL"] = settings.redis_url
    env["ORDERFLOW_WORKERS"] = str(settings.workers)  # `serve` runs that many of each API
    env["ORDERFLOW_REDIS_CLUSTER"] = "true" if settings.redis_cluster else "false"
    return env


@dataclass
class Child:
    """A supervised child process: restarted if it dies, stopped with SIGTERM on shutdown."""

    name: str
    args: list[str]
    env: dict[str, str]
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        cmd = [sys.executable, "-m", "orderflow", *self.args]
        self.proc = subprocess.Popen(cmd, env=self.env, start_new_session=True)

    def check(self) -> None:
        if self.proc is not None and self.proc.poll() is not None:
            console.print(f"[yellow]{self.name} exited with {self.proc.returncode}; restarting")
            self.start()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()

    def wait(self, timeout_s: float) -> None:
        if self.proc is None:
            return
        try:
            self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def wait_healthy(settings: Settings, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    for service in SERVICES:
        url = f"http://{settings.host}:{settings.port_of(service)}/health"
        while True:
            try:
                if httpx.get(url, timeout=1.0).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{service} did not become healthy at {url}")
            time.sleep(0.1)


def up(settings: Settings) -> None:
    """Run everything until Ctrl-C (SIGINT) or SIGTERM; then stop every child in order."""
    started = time.perf_counter()
    stop = _stop_flag()
    with servers(settings) as live:
        console.print("migrating ShopDB and the MES db")
        migrate(live)
        seed_if_empty(live)
        env = child_env(live)
        children = [Child(s, ["serve", s], env) for s in SERVICES]
        children.append(Child("relay", ["relay"], env))
        for child in children:
            child.start()
        try:
            wait_healthy(live)
            _announce(live, time.perf_counter() - started)
            while not stop():
                for child in children:
                    child.check()
                time.sleep(0.2)
        finally:
            console.print("stopping the APIs and the relay")
            for child in children:
                child.stop()
            for child in children:
                child.wait(15)
            console.print("stopping the servers; the data stays for the next run")


def _stop_flag() -> "StopFlag":
    flag = StopFlag()
    signal.signal(signal.SIGINT, flag.set)
    signal.signal(signal.SIGTERM, flag.set)
    return flag


class StopFlag:
    def __init__(self) -> None:
        self.raised = False

    def set(self, *_: object) -> None:
        self.raised = True

    def __call__(self) -> bool:
        return self.raised


LOOPBACK = ("127.0.0.1", "localhost", "::1")


def _announce(settings: Settings, elapsed_s: float) -> None:
    console.print(f"[green]orderflow is up[/green] after {elapsed_s:.1f}s:")
    for service in SERVICES:
        base = f"http://{settings.host}:{settings.port_of(service)}"
        console.print(f"  {service:<5} {base}   (API docs: {base}/docs)")
    kind = "Redis Cluster (any node)" if settings.redis_cluster else "Redis"
    console.print(f"  {kind}: {settings.redis_url}")
    if settings.host not in LOOPBACK:
        console.print(
            f"[yellow]warning[/yellow]: listening on {settings.host}, not loopback: with no "
            "login, anyone who reaches these ports can write and switch the cache off "
            '(README, "Exposure")'
        )
    console.print("press Ctrl-C to stop")
