"""A Redis Cluster from the embedded `redis-server` (or `valkey-server`, by
`ORDERFLOW_EMBEDDED_REDIS`): masters and replicas on loopback ports.

`orderflow up --redis-cluster` and the cluster tests start one; nothing is persisted (a cache).
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import redis

from orderflow.kit.embedded import (
    CLUSTER_BUS_OFFSET,
    EmbeddedServerError,
    port_free,
    redis_binaries,
    wait_for_port,
)


@dataclass(frozen=True)
class ClusterNodeRow:
    """One line of `CLUSTER NODES`, as seen by some node."""

    node_id: str
    port: int
    flags: frozenset[str]
    master_id: str | None  # a replica's master; None for a master
    slots: tuple[tuple[int, int], ...]  # a master's slot ranges, inclusive

    @property
    def is_master(self) -> bool:
        return "master" in self.flags

    @property
    def failed(self) -> bool:
        return bool({"fail", "fail?", "handshake", "noaddr"} & self.flags)


def _parse_cluster_nodes(text: str) -> list[ClusterNodeRow]:
    rows = []
    for line in text.strip().splitlines():
        fields = line.split()
        address = fields[1].split("@")[0]
        slots: list[tuple[int, int]] = []
        for item in fields[8:]:
            if item.startswith("["):  # a slot being migrated or imported
                continue
            low, _, high = item.partition("-")
            slots.append((int(low), int(high or low)))
        rows.append(
            ClusterNodeRow(
                node_id=fields[0],
                port=int(address.rsplit(":", 1)[1]),
                flags=frozenset(fields[2].split(",")),
                master_id=None if fields[3] == "-" else fields[3],
                slots=tuple(slots),
            )
        )
    return rows


@dataclass
class EmbeddedRedisCluster:
    """A Redis Cluster on 127.0.0.1:`base_port`... : `masters` masters with one replica each.

    Every node is the same embedded `redis-server`, a pure cache (nothing persisted) with
    `cluster-require-full-coverage no`, so a dead master stops only its own slots. It starts
    fresh every time (old node tables are deleted). Each node's cluster bus listens on its
    port + 10000 (Redis 6.2 has no `cluster-port`), so `base_port` must leave room for that.
    """

    data_dir: Path
    base_port: int
    masters: int = 3
    node_timeout_ms: int = 1000
    procs: dict[int, subprocess.Popen[bytes]] = field(default_factory=dict, init=False)

    @property
    def nodes(self) -> list[int]:
        """Every node's port (a master and its replica each; roles change on failover)."""
        return list(range(self.base_port, self.base_port + 2 * self.masters))

    def address(self, port: int) -> str:
        """The address the node on `port` listens on and announces (a lab of several hosts
        puts nodes on other addresses)."""
        return "127.0.0.1"

    @property
    def url(self) -> str:
        """Every node's URL, joined by commas (`kit.redis.cluster_client`): a client started
        while one node is down finds the cluster from another."""
        return ",".join(f"redis://{self.address(port)}:{port}/0" for port in self.nodes)

    def node_dir(self, port: int) -> Path:
        return self.data_dir / f"node-{port}"

    def _args(self, port: int) -> list[str]:
        node_dir = self.node_dir(port)
        server, _ = redis_binaries()
        args = [str(server), "--port", str(port), "--bind", self.address(port)]
        args += ["--cluster-announce-ip", self.address(port)]
        args += ["--cluster-enabled", "yes"]
        args += ["--cluster-config-file", str(node_dir / f"nodes-{port}.conf")]
        args += ["--cluster-node-timeout", str(self.node_timeout_ms)]
        args += ["--cluster-require-full-coverage", "no"]
        # A cache has nothing to lose by promoting a replica that lagged: always fail over.
        args += ["--cluster-replica-validity-factor", "0"]
        # Redis 7+ and Valkey sync replicas diskless, after waiting 5 s for more replicas to
        # share the transfer (Redis 6.2 syncs through a file, no wait): one replica each, so
        # no wait. Else a Valkey cluster starts in 7 s, not 2, and a rejoined master idles.
        args += ["--repl-diskless-sync-delay", "0"]
        args += ["--save", "", "--appendonly", "no", "--dir", str(node_dir)]
        args += ["--maxmemory", "1gb", "--maxmemory-policy", "volatile-lru"]
        args += ["--logfile", str(node_dir / "redis.log")]
        return args

    def _wait_listening(self, port: int, timeout_s: float) -> None:
        log = self.node_dir(port) / "redis.log"
        wait_for_port(port, timeout_s, self.procs[port], log, self.address(port))

    def _spawn(self, port: int) -> None:
        self.procs[port] = subprocess.Popen(self._args(port), start_new_session=True)

    def start(self, timeout_s: float = 30.0) -> None:
        busy = [p for p in self.nodes if not port_free(p) or not port_free(p + CLUSTER_BUS_OFFSET)]
        if busy:
            raise EmbeddedServerError(
                f"ports {busy} (or their cluster bus ports +{CLUSTER_BUS_OFFSET}) are in use"
            )
        for port in self.nodes:  # a pure cache: start from an empty node table every time
            shutil.rmtree(self.node_dir(port), ignore_errors=True)
            self.node_dir(port).mkdir(parents=True)
        try:
            for port in self.nodes:
                self._spawn(port)
            for port in self.nodes:
                self._wait_listening(port, timeout_s)
            create = [str(redis_binaries()[1]), "--cluster", "create"]
            create += [f"{self.address(p)}:{p}" for p in self.nodes]
            create += ["--cluster-replicas", "1", "--cluster-yes"]
            done = subprocess.run(create, capture_output=True, text=True, timeout=timeout_s)
            if done.returncode != 0:
                raise EmbeddedServerError(f"redis-cli --cluster create failed:\n{done.stdout}")
            self.wait_healthy(timeout_s)
        except BaseException:
            self.stop()
            raise

    def wait_healthy(self, timeout_s: float = 30.0) -> None:
        """Until every live node says cluster_state:ok with all 16384 slots served, and
        every replica is in sync with its master."""
        deadline = time.monotonic() + timeout_s
        while True:
            problem = self._health_problem()
            if problem is None:
                return
            if time.monotonic() > deadline:
                raise EmbeddedServerError(f"cluster not healthy within {timeout_s}s: {problem}")
            time.sleep(0.05)

    def _health_problem(self) -> str | None:
        for port in self.live_ports():
            try:
                info = _cluster_info(self.address(port), port)
                rows = self.cluster_nodes(port)
                replication = _replication(self.address(port), port)
            except redis.RedisError as exc:
                return f"node {port}: {exc}"
            if info.get("cluster_state") != "ok" or info.get("cluster_slots_ok") != "16384":
                return f"node {port}: {info}"
            if len(rows) != len(self.nodes) or any(r.failed for r in rows):
                return f"node {port} does not see every node up"
            if replication.get("role") == "slave" and replication.get("master_link_status") != "up":
                return f"replica {port} not in sync"
        return None

    def live_ports(self) -> list[int]:
        return [p for p, proc in self.procs.items() if proc.poll() is None]

    def cluster_nodes(self, port: int | None = None) -> list[ClusterNodeRow]:
        """The node table as seen by `port` (default: the first live node)."""
        port = port if port is not None else self.live_ports()[0]
        return _parse_cluster_nodes(_node_command(self.address(port), port, "CLUSTER", "NODES"))

    def master_ports(self) -> list[int]:
        """The ports of the masters that serve slots, as the first live node sees them."""
        return sorted(
            r.port for r in self.cluster_nodes() if r.is_master and r.slots and not r.failed
        )

    def replica_of(self, port: int) -> int | None:
        """A replica of the master on `port`, None when it has none."""
        rows = self.cluster_nodes()
        master = next(r for r in rows if r.port == port)
        replicas = sorted(r.port for r in rows if r.master_id == master.node_id)
        return replicas[0] if replicas else None

    def slots_of(self, port: int) -> tuple[tuple[int, int], ...]:
        return next(r.slots for r in self.cluster_nodes() if r.port == port)

    def kill(self, port: int) -> None:
        """SIGKILL one node: no goodbye to the others, as a crash or a power cut."""
        proc = self.procs.get(port)
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()

    def freeze(self, port: int) -> None:
        """SIGSTOP one node: it keeps its sockets but answers nothing (a hung server)."""
        self.procs[port].send_signal(signal.SIGSTOP)

    def thaw(self, port: int) -> None:
        self.procs[port].send_signal(signal.SIGCONT)

    def restart(self, port: int, timeout_s: float = 30.0) -> None:
        """Start a killed node again with its node table: it rejoins (a replica, if its
        slots were taken over meanwhile). Returns once it says cluster_state:ok."""
        self.kill(port)
        self._spawn(port)
        self._wait_listening(port, timeout_s)
        deadline = time.monotonic() + timeout_s
        while _cluster_info(self.address(port), port).get("cluster_state") != "ok":
            if time.monotonic() > deadline:
                raise EmbeddedServerError(f"node {port} did not rejoin within {timeout_s}s")
            time.sleep(0.05)

    def rejoin(self, port: int, replica: int | None, timeout_s: float = 20.0) -> None:
        """Bring back the killed master on `port` once `replica` took over its slots: it
        rejoins as that replica's replica, and the cluster is whole again."""
        deadline = time.monotonic() + timeout_s
        while replica is not None and replica not in self.master_ports():
            if time.monotonic() > deadline:
                raise EmbeddedServerError(f"{replica} did not replace {port} in {timeout_s}s")
            time.sleep(0.1)
        self.restart(port, timeout_s)
        while replica is not None and self.replica_of(replica) != port:
            if time.monotonic() > deadline + timeout_s:
                raise EmbeddedServerError(f"{port} did not rejoin as {replica}'s replica")
            time.sleep(0.1)
        self.wait_healthy()

    def stop(self, timeout_s: float = 10.0) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGCONT)  # a frozen node would not see SIGTERM
                proc.terminate()
        for proc in self.procs.values():
            try:
                proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _node(host: str, port: int) -> redis.Redis:
    return redis.Redis(
        host=host,
        port=port,
        socket_timeout=1.0,
        socket_connect_timeout=1.0,
        decode_responses=True,
    )


def _node_command(host: str, port: int, *args: str) -> str:
    """One command to one node, its reply as text (CLUSTER replies are not parsed)."""
    with _node(host, port) as client:
        return str(client.execute_command(*args))


def _replication(host: str, port: int) -> dict[str, object]:
    with _node(host, port) as client:
        return dict(client.info("replication"))


def _fields(text: str) -> dict[str, str]:
    return dict(line.split(":", 1) for line in text.split() if ":" in line)


def _cluster_info(host: str, port: int) -> dict[str, str]:
    return _fields(_node_command(host, port, "CLUSTER", "INFO"))
