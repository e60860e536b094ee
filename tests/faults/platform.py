"""The whole platform on loopback, every process ours to kill, pause and restart."""

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

from rich.progress import Progress

from orderflow.data.migrations import upgrade
from orderflow.kit.embedded import EmbeddedPostgres, EmbeddedRedis, free_port
from orderflow.kit.settings import Settings
from orderflow.seed import Volumes, seed
from tests.clients import settings_env, wait_healthy

VOLUMES = Volumes(items=50, categories=5, clients=50, orders=500, operators=20)
APIS = ("shop", "crm", "mes")


@dataclass
class FaultPlatform:
    pg: EmbeddedPostgres
    redis: EmbeddedRedis
    settings: Settings
    ports: dict[str, int] = field(default_factory=dict)
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def url(self, service: str) -> str:
        return f"http://127.0.0.1:{self.ports[service]}"

    def start(self, name: str) -> None:
        args = ["relay"] if name == "relay" else ["serve", name, "--port", str(self.ports[name])]
        env = settings_env(self.settings, {"ORDERFLOW_RELAY_METRICS_PORT": "0"})
        self.procs[name] = subprocess.Popen([sys.executable, "-m", "orderflow", *args], env=env)
        if name in APIS:
            wait_healthy(self.url(name), self.procs[name], timeout_s=120)

    def kill(self, name: str) -> None:
        proc = self.procs[name]
        proc.send_signal(signal.SIGKILL)
        proc.wait()

    def stop_all(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs.values():
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()

    def pause_redis(self, paused: bool) -> None:
        assert self.redis.proc is not None
        os.kill(self.redis.proc.pid, signal.SIGSTOP if paused else signal.SIGCONT)


@asynccontextmanager
async def fault_platform(root: Path) -> AsyncIterator[FaultPlatform]:
    pg = EmbeddedPostgres(root / "pg" / "data", free_port(), durable=False)
    redis = EmbeddedRedis(root / "redis", free_port())
    await asyncio.to_thread(pg.start)
    redis.start()
    platform = None
    try:
        for db in ("shopdb", "mesdb"):
            pg.create_database(db)
        settings = Settings(
            shop_dsn=pg.dsn("shopdb"),
            mes_dsn=pg.dsn("mesdb"),
            redis_url=redis.url,
            db_connect_timeout_s=2.0,
            db_statement_timeout_s=5.0,
        )
        await asyncio.to_thread(upgrade, "shopdb", settings.shop_dsn)
        await asyncio.to_thread(upgrade, "mesdb", settings.mes_dsn)
        with Progress(disable=True) as progress:
            await seed(settings.shop_dsn, settings.mes_dsn, VOLUMES, progress=progress)
        platform = FaultPlatform(pg, redis, settings, {s: free_port() for s in APIS})
        for name in (*APIS, "relay"):
            await asyncio.to_thread(platform.start, name)
        yield platform
    finally:
        if platform is not None:
            platform.stop_all()
        redis.stop()
        pg.stop()
