"""The whole platform on loopback, every process ours to kill, pause and restart.

Each API may have a second process started with ORDERFLOW_CRASH_AFTER_COMMIT, which clients
are sent to while the crash-after-commit fault lasts (and while it is up). A process that dies
on its own is started again by `keep_alive`; faults and `keep_alive` take a process's lock to
replace it.

With `cluster=True` the platform's Redis is an embedded Redis Cluster of 3 masters and 3
replicas (`EmbeddedRedisCluster`) and every process runs with ORDERFLOW_REDIS_CLUSTER=true.

With `workers` > 1 each API is that many processes behind uvicorn's supervisor on its port
(`serve --workers`). Each API runs in a process group of its own, and a kill takes the whole
group, as a machine or a container going down; a worker that crashes after a commit is started
again by the supervisor, not by `keep_alive` (the table then lists no exits).
"""

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

from rich.progress import Progress

from orderflow.data.migrations import upgrade
from orderflow.kit.embedded import EmbeddedPostgres, EmbeddedRedis, free_port, free_port_range
from orderflow.kit.embedded_cluster import EmbeddedRedisCluster
from orderflow.kit.settings import Settings
from orderflow.seed import Volumes, seed
from tests.clients import settings_env, wait_healthy
from tests.faults.history import Failover

VOLUMES = Volumes(items=50, categories=5, clients=50, orders=500, operators=20)
APIS = ("shop", "crm", "mes")
CRASH_AFTER_COMMIT = "ORDERFLOW_CRASH_AFTER_COMMIT"
CRASHING = "-crashing"  # the name of a service's second process, made to crash


@dataclass
class FaultPlatform:
    pg: EmbeddedPostgres
    redis: EmbeddedRedis | EmbeddedRedisCluster
    settings: Settings
    ports: dict[str, int] = field(default_factory=dict)
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    locks: dict[str, asyncio.Lock] = field(default_factory=dict)
    healthy: set[str] = field(default_factory=set)  # started and answered /health
    routes: dict[str, str] = field(default_factory=dict)  # service -> the process clients use
    workers: int = 1  # processes per API
    crash_probability: float = 0.3  # per commit that owes the cache something
    crashers: "asyncio.Task[None] | None" = None  # `start_crashing`, under way or done
    # On a cluster, each master killed and how many were paused (`tests/faults/cluster.py`).
    failovers: list[Failover] = field(default_factory=list)
    pauses: int = 0

    def url(self, service: str) -> str:
        """Where clients send `service`'s requests: its crashing process while the fault routes
        there and that process is up; its own otherwise (a balancer that skips a dead one)."""
        name = self.routes.get(service, service)
        if name not in self.healthy or self.procs[name].poll() is not None:
            name = service
        return f"http://127.0.0.1:{self.ports[name]}"

    def lock(self, name: str) -> asyncio.Lock:
        return self.locks.setdefault(name, asyncio.Lock())

    def start(self, name: str) -> None:
        """Start `name`; an API, until it answers /health (or, for a crashing one, until it
        exited: `keep_alive` starts it again)."""
        service, crashing = name.removesuffix(CRASHING), name.endswith(CRASHING)
        port = str(self.ports.get(name))  # the relay has none
        args = ["relay"] if service == "relay" else ["serve", service, "--port", port]
        extra = {"ORDERFLOW_RELAY_METRICS_PORT": "0", "ORDERFLOW_WORKERS": str(self.workers)}
        if crashing:
            extra[CRASH_AFTER_COMMIT] = str(self.crash_probability)
        env = settings_env(self.settings, extra)
        self.healthy.discard(name)
        self.procs[name] = subprocess.Popen(
            [sys.executable, "-m", "orderflow", *args], env=env, start_new_session=True
        )
        if service in APIS:
            try:
                wait_healthy(f"http://127.0.0.1:{port}", self.procs[name], timeout_s=120)
            except AssertionError:  # it exited before answering /health
                if not crashing:
                    raise
                print(f"{name} exited while starting: left to keep_alive", file=sys.stderr)
            else:
                self.healthy.add(name)

    def kill(self, name: str) -> None:
        proc = self.procs[name]
        _signal_group(proc, signal.SIGKILL)
        proc.wait()

    async def replace(self, name: str) -> None:
        """Kill `name` (SIGKILL) and start it again."""
        async with self.lock(name):
            self.kill(name)
            await asyncio.to_thread(self.start, name)

    async def start_crashing(self) -> None:
        """Start the second process of each API, the one made to crash, where it is not running
        (the first time in the background while the first faults run: seven processes starting
        at once slow a small machine down)."""

        async def start(name: str) -> None:
            async with self.lock(name):
                if name not in self.procs or self.procs[name].poll() is not None:
                    await asyncio.to_thread(self.start, name)

        await asyncio.gather(*(start(s + CRASHING) for s in APIS))

    async def crashing(self, services: tuple[str, ...], on: bool) -> None:
        """Send `services`' clients to (or back from) the second process of each, started with
        ORDERFLOW_CRASH_AFTER_COMMIT: started first where it is not running; one that dies while
        clients are sent to it is started again by `keep_alive`, one that died at the end of a
        window only when the next one begins (no start for nothing at the end of a run)."""
        if on:
            if self.crashers is not None:
                await self.crashers
            await self.start_crashing()
        for service in services:
            if on:
                self.routes[service] = service + CRASHING
            else:
                self.routes.pop(service, None)

    async def keep_alive(self, died: Callable[[str, int], None], until: asyncio.Event) -> None:
        """Start again every process that exited on its own (each on its own, at once; a
        crashing one only while clients are sent to it), until `until` is set; then wait for
        the starts under way."""
        told: set[int] = set()  # pids whose exit was reported

        async def restart(name: str) -> None:
            async with self.lock(name):
                proc = self.procs[name]
                if proc.poll() is None:
                    return
                if proc.pid not in told:
                    told.add(proc.pid)
                    died(name, proc.returncode)
                if wanted(name):
                    await asyncio.to_thread(self.start, name)

        def wanted(name: str) -> bool:
            return not name.endswith(CRASHING) or name in self.routes.values()

        starting: set[asyncio.Task[None]] = set()
        while not until.is_set():
            await asyncio.sleep(0.2)
            for name, proc in list(self.procs.items()):
                dead = proc.poll() is not None and not self.lock(name).locked()
                if dead and (proc.pid not in told or wanted(name)):
                    task = asyncio.create_task(restart(name))
                    starting.add(task)
                    task.add_done_callback(starting.discard)
        await asyncio.gather(*starting)

    def stop_all(self) -> None:
        for proc in self.procs.values():
            _signal_group(proc, signal.SIGTERM)
        for proc in self.procs.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(10)
            _signal_group(proc, signal.SIGKILL)  # whatever is left of the group

    @property
    def cluster(self) -> EmbeddedRedisCluster:
        assert isinstance(self.redis, EmbeddedRedisCluster), "not a Redis Cluster platform"
        return self.redis

    def pause_redis(self, paused: bool) -> None:
        assert isinstance(self.redis, EmbeddedRedis) and self.redis.proc is not None
        os.kill(self.redis.proc.pid, signal.SIGSTOP if paused else signal.SIGCONT)


@asynccontextmanager
async def fault_platform(
    root: Path, cluster: bool = False, workers: int = 1
) -> AsyncIterator[FaultPlatform]:
    pg = EmbeddedPostgres(root / "pg" / "data", free_port(), durable=False)
    redis: EmbeddedRedis | EmbeddedRedisCluster
    if cluster:
        redis = EmbeddedRedisCluster(root / "redis-cluster", free_port_range(6))
    else:
        redis = EmbeddedRedis(root / "redis", free_port())
    await asyncio.to_thread(pg.start)
    try:
        await asyncio.to_thread(redis.start)
    except BaseException:
        pg.stop()
        raise
    platform = None
    try:
        for db in ("shopdb", "mesdb"):
            pg.create_database(db)
        settings = Settings(
            shop_dsn=pg.dsn("shopdb"),
            mes_dsn=pg.dsn("mesdb"),
            redis_url=redis.url,
            redis_cluster=cluster,
            db_connect_timeout_s=2.0,
            db_statement_timeout_s=5.0,
        )
        await asyncio.to_thread(upgrade, "shopdb", settings.shop_dsn)
        await asyncio.to_thread(upgrade, "mesdb", settings.mes_dsn)
        with Progress(disable=True) as progress:
            await seed(settings.shop_dsn, settings.mes_dsn, VOLUMES, progress=progress)
        ports = {n: free_port() for s in APIS for n in (s, s + CRASHING)}
        platform = FaultPlatform(pg, redis, settings, ports, workers=workers)
        await asyncio.gather(*(asyncio.to_thread(platform.start, n) for n in (*APIS, "relay")))
        platform.crashers = asyncio.create_task(platform.start_crashing())
        yield platform
    finally:
        if platform is not None:
            if platform.crashers is not None:
                await asyncio.wait([platform.crashers])  # no process may start after stop_all
            platform.stop_all()
        redis.stop()
        pg.stop()


def _signal_group(proc: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    """`sig` to the process group `proc` leads (its uvicorn workers included), if any is left."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, sig)
