"""The lab: twelve hosts on one machine, started, watched and stopped as one.

    client   10.77.0.10   the load and the checks (this process moves into it)
    api1-2   10.77.0.11-  Shop, CRM, MES, a relay, HAProxy (`api_hosts.py`)
    redis1-3 10.77.0.21-  two Redis Cluster nodes each (`redis_hosts.py`)
    db1-3    10.77.0.31-  Patroni and PostgreSQL (`database.py`)
    etcd1-3  10.77.0.41-  an etcd member each, the store Patroni elects its leader in

`platform()` gives the fault suite's load what it needs (`url`, `settings`): a balancer in
front of the API hosts that sends each request to the next host whose service answered its
last /health (twice a second), as a load balancer would.
"""

import asyncio
import contextlib
import itertools
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import httpx
import redis
from rich.progress import Progress

from orderflow.data.migrations import upgrade
from orderflow.kit.db import asyncpg_dsn
from orderflow.kit.embedded import EmbeddedServerError
from orderflow.kit.settings import Settings
from orderflow.seed import seed
from tests.faults.platform import VOLUMES
from tests.multihost import api_hosts, database, hosts
from tests.multihost.hosts import Host
from tests.multihost.redis_hosts import HostedRedisCluster, redis_cluster

ROOT = Path("/tmp/orderflow-multihost")
Log = Callable[[str], None]
START_TIMEOUT_S = 120.0


def lab_hosts() -> list[Host]:
    return [
        Host("client", 10, "client"),
        Host("api1", 11, "api"),
        Host("api2", 12, "api"),
        Host("redis1", 21, "redis"),
        Host("redis2", 22, "redis"),
        Host("redis3", 23, "redis"),
        Host("db1", 31, "db"),
        Host("db2", 32, "db"),
        Host("db3", 33, "db"),
        Host("etcd1", 41, "etcd"),
        Host("etcd2", 42, "etcd"),
        Host("etcd3", 43, "etcd"),
    ]


@dataclass
class Lab:
    all: list[Host] = field(default_factory=lab_hosts)
    root: Path = ROOT
    redis: HostedRedisCluster | None = None

    def role(self, role: str) -> list[Host]:
        return [h for h in self.all if h.role == role]

    @property
    def client(self) -> Host:
        return self.role("client")[0]

    @property
    def apis(self) -> list[Host]:
        return self.role("api")

    @property
    def dbs(self) -> list[Host]:
        return self.role("db")

    @property
    def etcds(self) -> list[Host]:
        return self.role("etcd")

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def cluster(self) -> HostedRedisCluster:
        assert self.redis is not None, "the lab is not up"
        return self.redis

    def host(self, name: str) -> Host:
        return next(h for h in self.all if h.name == name)

    def settings(self) -> Settings:
        return api_hosts.settings_for_checks(self.dbs, self.cluster.url)

    def up(self, log: Log) -> None:
        """Build the hosts, start every server, create and seed the databases, start the APIs."""
        shutil.rmtree(self.root, ignore_errors=True)
        self.logs.mkdir(parents=True)
        self.root.chmod(0o755)
        hosts.build(self.all)
        hosts.enter(self.client)
        log(f"{len(self.all)} hosts on bridge {hosts.BRIDGE}")
        database.configure(self.dbs, self.etcds, self.root)
        for host in self.etcds + self.dbs:
            host.start(self.logs)
        self.redis = redis_cluster(self.role("redis"), self.root, self.logs)
        self.redis.start(START_TIMEOUT_S)
        log("Redis Cluster up (3 masters, 3 replicas)")
        took = database.wait_healthy(self.dbs, START_TIMEOUT_S)
        log(f"PostgreSQL under Patroni up ({took:.1f} s: a leader, a sync standby, a replica)")
        asyncio.run(self._databases())
        log("databases created, migrated and seeded")
        for host in self.apis:
            api_hosts.configure(host, self.dbs, self.cluster.url, self.root, sys.executable)
            host.start(self.logs)
        asyncio.run(self.wait_apis())
        log("APIs up on " + ", ".join(h.name for h in self.apis))

    async def _databases(self) -> None:
        leader = database.leader(self.dbs)
        assert leader is not None
        user, password = database.SUPERUSER
        direct = f"postgresql+asyncpg://{user}:{password}@{leader.ip}:{database.PORT}"
        conn = await asyncpg.connect(asyncpg_dsn(f"{direct}/postgres"))
        try:
            for db in ("shopdb", "mesdb"):
                await conn.execute(f"CREATE DATABASE {db}")
        finally:
            await conn.close()
        for db in ("shopdb", "mesdb"):
            await asyncio.to_thread(upgrade, db, f"{direct}/{db}")  # type: ignore[arg-type]
        with Progress(disable=True) as progress:
            await seed(f"{direct}/shopdb", f"{direct}/mesdb", VOLUMES, progress=progress)

    async def api_health(self, http: httpx.AsyncClient) -> dict[tuple[str, str], str]:
        """(host, service) -> its /health status ("ok", "degraded", "unavailable") or why not."""

        async def one(host: Host, api: str) -> str:
            url = f"http://{host.ip}:{api_hosts.PORTS[api]}/health"
            try:
                reply = await http.get(url, timeout=1.0)
                return str(reply.json().get("status", reply.status_code))
            except (httpx.HTTPError, ValueError) as exc:
                return type(exc).__name__

        pairs = [(h, a) for h in self.apis for a in api_hosts.APIS]
        found = await asyncio.gather(*(one(h, a) for h, a in pairs))
        return {(h.name, a): status for (h, a), status in zip(pairs, found, strict=True)}

    async def wait_apis(self, timeout_s: float = START_TIMEOUT_S, want: str = "ok") -> float:
        """Seconds until every API on every API host says `want` on /health."""
        started = time.monotonic()
        async with httpx.AsyncClient() as http:
            while True:
                health = await self.api_health(http)
                if all(s == want for s in health.values()):
                    return time.monotonic() - started
                if time.monotonic() - started > timeout_s:
                    raise EmbeddedServerError(f"APIs not {want} in {timeout_s:.0f} s: {health}")
                await asyncio.sleep(0.2)

    def table(self) -> str:
        """Every host: its address, its processes and what its servers say of themselves."""
        api = asyncio.run(self._api_table())
        members = {m["name"]: m for m in database.cluster_view(self.dbs)}
        redis_roles = self._redis_roles()
        lines = ["| host | address | processes | state |", "|---|---|---|---|"]
        for host in self.all:
            running = sorted(n for n, p in host.running.items() if p.poll() is None)
            if host.role == "db":
                m = members.get(host.name, {})
                state = f"{m.get('role', '?')} {m.get('state', 'not answering')}"
                state += f", lag {m['lag']}" if "lag" in m else ""
            elif host.role == "redis":
                state = ", ".join(redis_roles.get(p, f"{p} ?") for p in self.cluster.ports_on(host))
            elif host.role == "api":
                state = ", ".join(f"{a} {api[host.name, a]}" for a in api_hosts.APIS)
            elif host.role == "etcd":
                state = database.etcd_health(host)
            else:
                state = "runs the load and the checks"
            procs = ", ".join(running) or ("this process" if host.role == "client" else "none")
            lines.append(f"| {host.name} | {host.ip} | {procs} | {state} |")
        return "\n".join(lines)

    async def _api_table(self) -> dict[tuple[str, str], str]:
        async with httpx.AsyncClient() as http:
            return await self.api_health(http)

    def _redis_roles(self) -> dict[int, str]:
        try:
            rows = self.cluster.cluster_nodes()
        except Exception as exc:  # noqa: BLE001  a table reports, it does not fail
            return {p: f"{p} {type(exc).__name__}" for p in self.cluster.nodes}
        roles = {}
        for row in rows:
            role = "master" if row.is_master and row.slots else "replica"
            roles[row.port] = f"{row.port} {role}" + (" (failed)" if row.failed else "")
        return roles

    def redis_placement(self, timeout_s: float = 30.0) -> None:
        """Put the Redis masters back on the nodes they began on (one per Redis host): a host
        killed or paused comes back with replicas only, and the next fault on the host that
        then carries two masters would take a majority of the masters, which no failover
        survives. `CLUSTER FAILOVER` asked of a replica swaps it with its master, no loss."""
        cluster = self.cluster
        first = cluster.nodes[: cluster.masters]
        deadline = time.monotonic() + timeout_s
        while demoted := [p for p in first if p not in cluster.master_ports()]:
            if time.monotonic() > deadline:
                raise EmbeddedServerError(f"nodes {demoted} not masters again in {timeout_s} s")
            for port in demoted:
                with redis.Redis(host=cluster.address(port), port=port, socket_timeout=2) as node:
                    if node.info("replication").get("master_link_status") == "up":
                        node.execute_command("CLUSTER", "FAILOVER")
            time.sleep(1.0)
        cluster.wait_healthy(timeout_s)

    def down(self) -> None:
        if self.redis is not None:
            self.redis.stop()
        hosts.teardown()


@dataclass
class Balancer:
    """The fault suite's `platform` on the lab: `url(service)` is the next API host whose
    `service` answered its last /health check; `settings` point the checker at the primary."""

    lab: Lab
    settings: Settings
    up: dict[tuple[str, str], bool] = field(default_factory=dict)
    turn: "itertools.count[int]" = field(default_factory=itertools.count)

    def url(self, service: str) -> str:
        healthy = [h for h in self.lab.apis if self.up.get((h.name, service), True)]
        host = (healthy or self.lab.apis)[next(self.turn) % len(healthy or self.lab.apis)]
        return f"http://{host.ip}:{api_hosts.PORTS[service]}"

    async def check(self, until: asyncio.Event) -> None:
        """The balancer's health checks, every 0.5 s, until `until` is set."""
        async with httpx.AsyncClient() as http:
            while not until.is_set():
                health = await self.lab.api_health(http)
                self.up = {key: s in ("ok", "degraded") for key, s in health.items()}
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(until.wait(), 0.5)
