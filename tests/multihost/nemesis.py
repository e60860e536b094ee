"""The nemesis: partitions made with nftables inside a host, host kills and pauses; each ends
with its heal and a wait until everything is healthy again (the time to recover).

A partition is a table of DROP rules in the namespace of one side; healing deletes the table.
Dropping, not rejecting, is what a partition does: the other side hears nothing and learns it
only from its own timeouts.
"""

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from tests.multihost import api_hosts, database
from tests.multihost.hosts import Host
from tests.multihost.lab import Lab

TABLE = "orderflow_nemesis"
PARTITION_S = 6.0  # longer than the APIs' timeouts (Redis 0.25 s, PostgreSQL 2 and 5 s)
PAUSE_S = 4.0  # an API host or a Redis host (> the cluster's node timeout, 1 s)
PRIMARY_PAUSE_S = 30.0  # > Patroni's ttl (20 s): the standbys elect a new primary meanwhile
NEW_PRIMARY_BOUND_S = 40.0
RECOVER_BOUND_S = 120.0
SETTLED_S = 3.0  # PostgreSQL counts as recovered once healthy this long (included)


@dataclass
class Injection:
    """One fault as it happened."""

    name: str
    started: float = 0.0
    healed: float = 0.0  # partition lifted, host restarted or resumed
    recovered_s: float | None = None  # from the heal until every server was healthy again
    database: bool = False  # the database was, or could be, away for some API while it lasted
    notes: list[str] = field(default_factory=list)


def cut(host: Host, matches: list[str]) -> None:
    """Inside `host`, DROP every packet in or out that one of `matches` (nft expressions)
    matches."""
    lines = [f"table inet {TABLE} {{"]
    for hook in ("input", "output"):
        lines.append(f"  chain {hook} {{")
        lines.append(f"    type filter hook {hook} priority 0; policy accept;")
        lines += [f"    {m} drop" for m in matches]
        lines.append("  }")
    lines.append("}")
    done = host.run("nft", "-f", "-", check=False, stdin="\n".join(lines) + "\n")
    if done.returncode != 0:
        raise RuntimeError(f"nft refused the partition in {host.name}: {done.stderr}")


def heal(host: Host) -> None:
    host.run("nft", "delete", "table", "inet", TABLE, check=False)


def peer(ip: str, port: int | None = None) -> list[str]:
    """Matches for the traffic with `ip` (only with its `port`, if given), both ways."""
    if port is None:
        return [f"ip saddr {ip}", f"ip daddr {ip}"]
    return [f"ip saddr {ip} tcp sport {port}", f"ip daddr {ip} tcp dport {port}"]


def loopback_port(port: int) -> list[str]:
    """Matches for the traffic with `port` on this host's own loopback, both ways."""
    return [f"tcp dport {port}", f"tcp sport {port}"]


class Nemesis:
    def __init__(self, lab: Lab, log: Callable[[str], None]) -> None:
        self.lab, self.log = lab, log

    def primary(self) -> Host:
        leader = database.leader(self.lab.dbs)
        assert leader is not None, "no PostgreSQL primary to hit"
        return leader

    async def new_primary(self, old: Host, since: float, shot: Injection) -> None:
        """Wait until another database host is the primary; note how long it took."""
        others = [h for h in self.lab.dbs if h is not old]
        while time.monotonic() - since < NEW_PRIMARY_BOUND_S:
            leader = await asyncio.to_thread(database.leader, others)
            if leader is not None:
                shot.notes.append(
                    f"{leader.name} primary {time.monotonic() - since:.1f} s after the fault"
                )
                return
            await asyncio.sleep(0.2)
        shot.notes.append(f"no new primary within {NEW_PRIMARY_BOUND_S:.0f} s")

    # The faults. Each returns once it is healed; `run` then waits for the recovery.

    async def api_cut_from_redis_master(self, shot: Injection, turn: int) -> None:
        api = self.lab.apis[turn % 2]
        port = self.lab.cluster.master_ports()[turn % 3]
        shot.notes.append(f"{api.name} from {self.lab.cluster.address(port)}:{port}")
        await self._partition(api, peer(self.lab.cluster.address(port), port), shot)

    async def api_cut_from_primary(self, shot: Injection, turn: int) -> None:
        api, primary = self.lab.apis[turn % 2], self.primary()
        shot.notes.append(f"{api.name} from {primary.name}")
        await self._partition(api, peer(primary.ip), shot)

    async def primary_cut_from_standbys(self, shot: Injection, turn: int) -> None:
        """From the other database hosts and from etcd (as when etcd lived beside them): the
        primary can no longer renew its leader key, and steps down."""
        primary = self.primary()
        others = [h for h in self.lab.dbs + self.lab.etcds if h is not primary]
        shot.notes.append(f"{primary.name} from {', '.join(h.name for h in others)}")
        cut(primary, [m for h in others for m in peer(h.ip)])
        shot.started = time.monotonic()
        await self.new_primary(primary, shot.started, shot)
        heal(primary)
        shot.healed = time.monotonic()

    async def relay_cut_from_a_database(self, shot: Injection, turn: int) -> None:
        db = ("shopdb", "mesdb")[turn % 2]
        port = api_hosts.PROXY[f"relay-{db}"]
        shot.notes.append(f"every relay from {db}")
        for api in self.lab.apis:
            cut(api, loopback_port(port))
        shot.started = time.monotonic()
        await asyncio.sleep(PARTITION_S)
        for api in self.lab.apis:
            heal(api)
        shot.healed = time.monotonic()

    async def _partition(self, host: Host, matches: list[str], shot: Injection) -> None:
        cut(host, matches)
        shot.started = time.monotonic()
        await asyncio.sleep(PARTITION_S)
        heal(host)
        shot.healed = time.monotonic()

    async def api_host_killed(self, shot: Injection, turn: int) -> None:
        api = self.lab.apis[turn % 2]
        shot.notes.append(api.name)
        shot.started = time.monotonic()
        api.kill()
        await asyncio.sleep(1.0)
        api.start(self.lab.logs)
        shot.healed = time.monotonic()

    async def redis_host_killed(self, shot: Injection, turn: int) -> None:
        cluster = self.lab.cluster
        host = cluster.host_of(cluster.master_ports()[turn % 3])
        shot.notes.append(f"{host.name} ({', '.join(map(str, cluster.ports_on(host)))})")
        shot.started = time.monotonic()
        host.kill()
        await asyncio.sleep(3.0)  # > the node timeout: the replicas elsewhere take over
        for port in cluster.ports_on(host):
            await asyncio.to_thread(cluster.restart, port)
        shot.healed = time.monotonic()

    async def primary_host_killed(self, shot: Injection, turn: int) -> None:
        primary = self.primary()
        shot.notes.append(primary.name)
        shot.started = time.monotonic()
        primary.kill()
        await self.new_primary(primary, shot.started, shot)
        primary.start(self.lab.logs)
        shot.healed = time.monotonic()

    async def api_host_paused(self, shot: Injection, turn: int) -> None:
        await self._pause(self.lab.apis[turn % 2], PAUSE_S, shot)

    async def redis_host_paused(self, shot: Injection, turn: int) -> None:
        cluster = self.lab.cluster
        await self._pause(cluster.host_of(cluster.master_ports()[turn % 3]), PAUSE_S, shot)

    async def primary_host_paused(self, shot: Injection, turn: int) -> None:
        await self._pause(self.primary(), PRIMARY_PAUSE_S, shot)

    async def _pause(self, host: Host, seconds: float, shot: Injection) -> None:
        shot.notes.append(f"{host.name} for {seconds:.0f} s")
        host.pause(True)
        shot.started = time.monotonic()
        try:
            await asyncio.sleep(seconds)
        finally:
            host.pause(False)
        shot.healed = time.monotonic()

    async def recovered(self, since: float) -> float | None:
        """Seconds from `since` until PostgreSQL has a primary and both standbys, the Redis
        Cluster serves every slot with every replica in sync, and every API says ok; first
        moving the Redis masters back where they began (a failover may have left two on one
        host)."""
        deadline = since + RECOVER_BOUND_S
        for waiting in (self._database_healthy, self._redis_healthy):
            if not await waiting(deadline):
                return None
        try:
            await self.lab.wait_apis(timeout_s=max(1.0, deadline - time.monotonic()))
        except Exception as exc:  # noqa: BLE001  reported as not recovered
            self.log(f"APIs not healthy: {exc}")
            return None
        return time.monotonic() - since

    async def _database_healthy(self, deadline: float) -> bool:
        """Healthy for `SETTLED_S` in a row: just after a heal, a primary can be healthy for a
        moment and then step down and back up, with no synchronous standby for a while."""
        since = None
        while time.monotonic() < deadline:
            if await asyncio.to_thread(database.health_problem, self.lab.dbs) is not None:
                since = None
            elif since is None:
                since = time.monotonic()
            elif time.monotonic() - since >= SETTLED_S:
                return True
            await asyncio.sleep(0.2)
        self.log(f"PostgreSQL: {database.health_problem(self.lab.dbs)}")
        return False

    async def _redis_healthy(self, deadline: float) -> bool:
        cluster = self.lab.cluster
        try:
            await asyncio.to_thread(cluster.wait_healthy, max(1.0, deadline - time.monotonic()))
            await asyncio.to_thread(self.lab.redis_placement)
        except Exception as exc:  # noqa: BLE001  reported as not recovered
            self.log(f"Redis Cluster: {exc}")
            return False
        return True


Fault = Callable[[Nemesis, Injection, int], Awaitable[None]]
# (name, the fault, whether it takes the database away from some API)
FAULTS: list[tuple[str, Fault, bool]] = [
    ("API host cut from a Redis master", Nemesis.api_cut_from_redis_master, False),
    ("API host cut from the PostgreSQL primary", Nemesis.api_cut_from_primary, True),
    ("PostgreSQL primary cut from its standbys", Nemesis.primary_cut_from_standbys, True),
    ("relays cut from one database", Nemesis.relay_cut_from_a_database, False),
    ("API host killed (every process)", Nemesis.api_host_killed, False),
    ("Redis host killed (a master and a replica)", Nemesis.redis_host_killed, False),
    ("PostgreSQL primary's host killed", Nemesis.primary_host_killed, True),
    ("API host paused", Nemesis.api_host_paused, False),
    ("Redis host paused", Nemesis.redis_host_paused, False),
    ("PostgreSQL primary's host paused", Nemesis.primary_host_paused, True),
]
