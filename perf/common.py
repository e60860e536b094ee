"""What every measurement under perf/ shares, each written once.

- percentiles: `percentile` (nearest rank);
- the machine and CPU accounting: `describe_machine`, `process_cpu_s`, `tree_cpu_s`,
  `machine_cpu_s`, `CpuMeter`, `wait_quiet`;
- starting servers: `databases` (PostgreSQL and Redis, embedded unless configured, migrated),
  `Child` (a `python -m` child process in its own session), `api_processes` (K
  `orderflow serve` processes);
- waiting for health: `healthy`, `listening`, `wait_until`;
- docs: `write_section` (one `## ` section of docs/performance.md), `write_json`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import fcntl
import functools
import json
import math
import os
import platform as py_platform
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from redis import Redis

from orderflow.data.migrations import upgrade
from orderflow.kit.db import asyncpg_dsn
from orderflow.kit.embedded import EmbeddedPostgres, EmbeddedRedis, free_port
from orderflow.kit.settings import ServiceName, Settings
from orderflow.platform import child_env

ROOT = Path(__file__).resolve().parent.parent  # the repository
PERFORMANCE_MD = ROOT / "docs" / "performance.md"
BENCH_DOCS = ROOT / "docs" / "bench"  # raw results and figures
TICKS = os.sysconf("SC_CLK_TCK")


def log(message: str) -> None:
    """A progress line, on stderr: stdout stays for what a tool is asked to print."""
    print(message, file=sys.stderr, flush=True)


def unwind_on_sigterm() -> None:
    """SIGTERM unwinds like Ctrl-C, so that every `finally` stops what it started."""

    def handler(*_: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, handler)


def run_unwinding(
    run: Callable[[argparse.Namespace], dict[str, Any]], args: argparse.Namespace
) -> tuple[dict[str, Any], datetime]:
    """`run(args)` with SIGTERM unwinding like Ctrl-C (`unwind_on_sigterm`); on either, every
    child is stopped on the way out and the process exits 130. Its results, and when it began."""
    unwind_on_sigterm()
    started = datetime.now(UTC)
    try:
        return run(args), started
    except KeyboardInterrupt:
        log("interrupted: every child stopped")
        sys.exit(130)


# ---------------------------------------------------------------- percentiles


def percentile(ordered: Sequence[float], p: float) -> float:
    """The nearest-rank `p`-th percentile (0 < p <= 100) of an ascending sequence: the
    smallest value with at least p% of the values at or below it. NaN when empty."""
    if not ordered:
        return math.nan
    rank = math.ceil(p / 100 * len(ordered) - 1e-9)  # 1e-9: 99.9% of 1,000 is rank 999
    return ordered[min(max(rank, 1), len(ordered)) - 1]


# ---------------------------------------------------------------- the machine


@dataclass(frozen=True)
class Machine:
    """The machine a measurement ran on, and the servers and packages it measured."""

    nproc: int
    cpu: str
    ram_gib: float
    kernel: str
    python: str
    load_average: tuple[float, float, float]  # at the start, before our own load
    postgresql: str | None = None
    redis: str | None = None
    packages: dict[str, str] = field(default_factory=dict)

    def line(self) -> str:
        """`2 cores (AMD EPYC), 23.5 GiB RAM, Linux 6.1, Python 3.11.7`."""
        return (
            f"{self.nproc} cores ({self.cpu}), {self.ram_gib} GiB RAM, Linux {self.kernel}, "
            f"Python {self.python}"
        )

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Machine:
        """From `write_json`'s form (older results: without a load average)."""
        known = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in d.items() if k in known}
        values["load_average"] = tuple(values.get("load_average") or (math.nan,) * 3)
        return cls(**values)


def describe_machine(settings: Settings | None = None, packages: Iterable[str] = ()) -> Machine:
    """This machine; with `settings`, the versions of its PostgreSQL and Redis too."""
    postgresql = redis = None
    if settings is not None:
        postgresql, redis = server_versions(settings)
    one, five, fifteen = os.getloadavg()
    return Machine(
        nproc=os.cpu_count() or 1,
        cpu=_proc_field("/proc/cpuinfo", "model name") or py_platform.processor() or "unknown",
        ram_gib=round(int(_proc_field("/proc/meminfo", "MemTotal").split()[0]) / 2**20, 1),
        kernel=py_platform.release(),
        python=py_platform.python_version(),
        load_average=(round(one, 2), round(five, 2), round(fifteen, 2)),
        postgresql=postgresql,
        redis=redis,
        packages={name: metadata.version(name) for name in packages},
    )


def _proc_field(path: str, name: str) -> str:
    with contextlib.suppress(OSError), open(path) as f:
        for line in f:
            if line.startswith(name):
                return line.split(":", 1)[1].strip()
    return ""


def server_versions(settings: Settings) -> tuple[str, str]:
    """(PostgreSQL's, Redis's) version, as the servers report them."""

    async def postgresql() -> str:
        conn = await asyncpg.connect(asyncpg_dsn(settings.shop_dsn))
        try:
            return str(await conn.fetchval("SHOW server_version"))
        finally:
            await conn.close()

    client = Redis.from_url(settings.redis_url)
    try:
        redis = str(client.info("server")["redis_version"])
    finally:
        client.close()
    return asyncio.run(postgresql()), redis


# ---------------------------------------------------------------- CPU accounting


def _stat(pid: int | str) -> list[str] | None:
    """The fields of /proc/<pid>/stat after the command name; None once it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()  # the name may hold spaces and ')'
    except OSError:
        return None


def process_cpu_s(pid: int) -> float:
    """User + system CPU seconds of process `pid` so far, all its threads; 0 once gone."""
    fields = _stat(pid)
    return (int(fields[11]) + int(fields[12])) / TICKS if fields else 0.0


def tree_cpu_s(root: int) -> float:
    """CPU seconds of `root` and every process descended from it (servers, their backends),
    including descendants that exited meanwhile (PostgreSQL's parallel workers): their time
    is in the reaping parent's cutime and cstime."""
    parents: dict[int, int] = {}
    spent: dict[int, float] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (fields := _stat(entry)) is not None:
            parents[int(entry)] = int(fields[1])
            spent[int(entry)] = sum(int(v) for v in fields[11:15]) / TICKS  # u, s, cu, cs
    total = 0.0
    for pid, seconds in spent.items():
        ancestor = pid
        while ancestor > 1 and ancestor != root:
            ancestor = parents.get(ancestor, 0)
        total += seconds if ancestor == root else 0.0
    return total


def machine_cpu_s() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot, every core (/proc/stat).
    Busy is everything but idle and iowait: user, nice, system, irq, softirq and steal."""
    with open("/proc/stat") as f:
        values = [int(v) for v in f.readline().split()[1:9]]  # guest is already in user
    total = sum(values)
    return (total - values[3] - values[4]) / TICKS, total / TICKS


@dataclass(frozen=True)
class CpuUse:
    """What `CpuMeter` measured over one interval."""

    wall_s: float
    seconds: dict[str, float]  # per group
    busy_s: float  # the whole machine, every core
    ours_s: float  # the meter's root and its descendants

    def cores(self, group: str) -> float:
        """How many cores `group` kept busy on average."""
        return self.seconds[group] / self.wall_s if self.wall_s else 0.0

    @property
    def busy_cores(self) -> float:
        return self.busy_s / self.wall_s if self.wall_s else 0.0

    @property
    def others_s(self) -> float:
        """CPU seconds taken by processes outside ours: the machine is shared."""
        return max(0.0, self.busy_s - self.ours_s)

    @property
    def others_cores(self) -> float:
        return self.others_s / self.wall_s if self.wall_s else 0.0


# ---------------------------------------------------------------- the platform's processes

PLATFORM_GROUPS = ("shop", "crm", "mes", "relay", "PostgreSQL", "Redis", "supervisor")
ProcessTimes = dict[int, tuple[str, float]]  # pid -> (group, CPU seconds so far)


def group_of(cmdline: list[str], name: str) -> str | None:
    """Which part of the platform a process is, from its command line (None: not ours)."""
    if name.startswith("postgres") or (cmdline and cmdline[0].startswith("postgres")):
        return "PostgreSQL"
    if name.startswith("redis-server"):
        return "Redis"
    if "orderflow" in cmdline:
        command = cmdline[cmdline.index("orderflow") + 1 :]
        if command[:1] == ["serve"] and len(command) > 1:
            return command[1]
        if command[:1] == ["relay"]:
            return "relay"
        return "supervisor"
    return None


def platform_times(root: int) -> ProcessTimes:
    """Every process under `root` (itself included) that is part of the platform: its group
    and its CPU seconds (with its reaped children's: PostgreSQL's parallel workers)."""
    parents: dict[int, int] = {}
    spent: dict[int, float] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (fields := _stat(entry)) is not None:
            parents[int(entry)] = int(fields[1])
            spent[int(entry)] = sum(int(v) for v in fields[11:15]) / TICKS
    found: ProcessTimes = {}
    for pid in parents:
        ancestor = pid
        while ancestor not in (root, 0, 1) and ancestor in parents:
            ancestor = parents[ancestor]
        if ancestor != root:
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmdline = [part.decode(errors="replace") for part in f.read().split(b"\0") if part]
            with open(f"/proc/{pid}/comm") as f:
                name = f.read().strip()
        except OSError:
            continue
        if (group := group_of(cmdline, name)) is not None:
            found[pid] = (group, spent[pid])
    return found


def cores_by_group(before: ProcessTimes, after: ProcessTimes, seconds: float) -> dict[str, float]:
    """Cores each group used between two `platform_times` (a process that started between
    them: all its time; one that ended: what it used before the first)."""
    used = dict.fromkeys(PLATFORM_GROUPS, 0.0)
    for pid, (group, now) in after.items():
        then = before.get(pid, (group, 0.0))[1]
        used[group] = used.get(group, 0.0) + max(0.0, now - then)
    return {group: round(value / max(seconds, 1e-9), 4) for group, value in used.items()}


@dataclass
class CpuMeter:
    """CPU seconds of groups of processes between `start()` and `stop()`, with the machine's
    busy time and that of `root`'s process tree (by default this process and its children)."""

    groups: dict[str, Callable[[], float]] = field(default_factory=dict)  # seconds so far
    root: int = field(default_factory=os.getpid)
    _begun: tuple[float, dict[str, float], float, float] | None = field(
        default=None, init=False, repr=False
    )

    def _sample(self) -> tuple[float, dict[str, float], float, float]:
        busy, _ = machine_cpu_s()
        found = {name: spent() for name, spent in self.groups.items()}
        return time.perf_counter(), found, busy, tree_cpu_s(self.root)

    def start(self) -> None:
        self._begun = self._sample()

    def stop(self) -> CpuUse:
        assert self._begun is not None, "start() first"
        (t0, groups0, busy0, ours0), (t1, groups1, busy1, ours1) = self._begun, self._sample()
        seconds = {name: groups1[name] - groups0[name] for name in groups1}
        return CpuUse(t1 - t0, seconds, busy1 - busy0, ours1 - ours0)


def wait_quiet(limit_cores: float, max_wait_s: float) -> tuple[float, float]:
    """Wait (at most `max_wait_s`) until processes outside ours use under `limit_cores`: on a
    shared machine a measurement started while another job runs measures that job.
    Returns (seconds waited, the others' cores at the last look)."""
    started = time.monotonic()
    while True:
        meter = CpuMeter()
        meter.start()
        time.sleep(1.0)
        cores = meter.stop().others_cores
        waited = time.monotonic() - started
        if cores < limit_cores or waited >= max_wait_s:
            return waited, cores


def pin_cpus() -> tuple[int | None, int | None]:
    """Two cores, for a server and its load generator; (None, None) with fewer allowed."""
    allowed = sorted(os.sched_getaffinity(0))
    return (allowed[0], allowed[1]) if len(allowed) >= 2 else (None, None)


# ---------------------------------------------------------------- waiting for health


class StartFailed(RuntimeError):
    """A server exited, or did not answer in time."""


def healthy(base_url: str, timeout_s: float = 2.0) -> bool:
    """`GET <base_url>/health` answers 200."""
    try:
        return httpx.get(f"{base_url}/health", timeout=timeout_s).status_code == 200
    except httpx.HTTPError:
        return False


def listening(port: int, host: str = "127.0.0.1") -> bool:
    """Something accepts TCP connections on `port` (a server without /health)."""
    with socket.socket() as s:
        return s.connect_ex((host, port)) == 0


def wait_until(
    ready: Callable[[], bool],
    what: str,
    *,
    timeout_s: float = 60.0,
    children: Sequence[Child] = (),
    stopping: Callable[[], bool] = lambda: False,
    poll_s: float = 0.1,
    note: Callable[[float], None] | None = None,
) -> float:
    """Poll `ready` until it holds; the seconds that took. Raises StartFailed when one of
    `children` exits, `stopping()` turns true or `timeout_s` passes. `note(waited)` is
    called every 15 s of waiting (a long seed)."""
    started = time.monotonic()
    next_note = started + 15.0
    while not ready():
        for child in children:
            if child.returncode is not None:
                raise StartFailed(f"{child} exited with {child.returncode}; see {child.log}")
        if stopping():
            raise StartFailed(f"interrupted while waiting for {what}")
        if time.monotonic() - started > timeout_s:
            raise StartFailed(f"{what}: not ready after {timeout_s:.0f}s")
        if note is not None and time.monotonic() > next_note:
            note(time.monotonic() - started)
            next_note += 15.0
        time.sleep(poll_s)
    return time.monotonic() - started


# ---------------------------------------------------------------- starting servers


class Child:
    """`python -m <module> <args>` as a child in its own session (a Ctrl-C in the terminal
    reaches only us, and we stop the children in order), its output into `log` when given.
    `root`: the repository whose code it runs; another tree than this one (an earlier commit,
    `perf.bench.versus`) runs with its own virtualenv's Python, in its own directory."""

    def __init__(
        self,
        module: str,
        args: Sequence[str],
        env: dict[str, str] | None = None,
        log: Path | None = None,
        *,
        root: Path = ROOT,
    ) -> None:
        env = dict(os.environ if env is None else env)
        # perf.* modules run from any directory: the repository goes on their path.
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(root), env.get("PYTHONPATH")]))
        python = sys.executable if root == ROOT else str(root / ".venv" / "bin" / "python")
        self.name, self.log = f"`python -m {module} {' '.join(args)}`", log
        out = None
        if log is not None:
            log.parent.mkdir(parents=True, exist_ok=True)
            out = log.open("ab")
        try:
            self.proc = subprocess.Popen(
                [python, "-m", module, *args],
                cwd=None if root == ROOT else root,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT if out else None,
                start_new_session=True,
            )
        finally:
            if out is not None:
                out.close()  # the child holds its own descriptor

    def __str__(self) -> str:
        return self.name

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def returncode(self) -> int | None:
        """None while it runs."""
        return self.proc.poll()

    def terminate(self) -> None:
        """SIGTERM: uvicorn and `orderflow up` shut down gracefully on it."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)

    def stop(self, timeout_s: float = 15.0) -> None:
        """SIGTERM, then after `timeout_s` SIGKILL to its whole session."""
        self.terminate()
        try:
            self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            log(f"{self} did not stop within {timeout_s:.0f}s: SIGKILL")
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


@dataclass
class Databases:
    """Migrated ShopDB and MES db, and Redis; the embedded servers when we started them."""

    settings: Settings
    postgres: EmbeddedPostgres | None = None
    redis: EmbeddedRedis | None = None

    def pids(self) -> dict[str, int]:
        """The embedded servers' main processes: "PostgreSQL" (the postmaster) and "Redis"."""
        found = {}
        if self.postgres is not None and self.postgres.proc is not None:
            found["PostgreSQL"] = self.postgres.proc.pid
        if self.redis is not None and self.redis.proc is not None:
            found["Redis"] = self.redis.proc.pid
        return found


def data_arguments(parser: argparse.ArgumentParser, orders: int) -> None:
    """The options every bench that seeds its own data set takes: its size and where it lives."""
    parser.add_argument("--orders", type=int, default=orders, help="orders in the database")
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=Path(".orderflow/bench"),
        help="embedded servers' data, in a subdirectory per order count; seeded when empty",
    )
    parser.add_argument("--reseed", action="store_true", help="reseed a data dir of another size")


@contextlib.contextmanager
def databases(data_dir: Path, *, configured: bool) -> Iterator[Databases]:
    """PostgreSQL with shopdb and mesdb migrated, and Redis: with `configured`, the ones
    ORDERFLOW_SHOP_DSN / _MES_DSN / _REDIS_URL name, else (and for any not named) embedded
    servers on free loopback ports with their data under `data_dir` (kept for the next
    run), durable like `orderflow up`. Embedded servers are stopped on exit."""
    base = Settings() if configured else Settings(shop_dsn="", mes_dsn="", redis_url="")
    found, updates = Databases(base), {}
    data_dir = data_dir.resolve()
    try:
        if not (base.shop_dsn and base.mes_dsn):
            found.postgres = EmbeddedPostgres(data_dir / "pg", free_port())
            log(f"starting PostgreSQL on 127.0.0.1:{found.postgres.port} (data in {data_dir})")
            found.postgres.start()
            for db in ("shopdb", "mesdb"):
                found.postgres.create_database(db)
            updates["shop_dsn"] = base.shop_dsn or found.postgres.dsn("shopdb")
            updates["mes_dsn"] = base.mes_dsn or found.postgres.dsn("mesdb")
        if not base.redis_url:
            found.redis = EmbeddedRedis(data_dir / "redis", free_port())
            log(f"starting redis-server on 127.0.0.1:{found.redis.port}")
            found.redis.start()
            updates["redis_url"] = found.redis.url
        found.settings = base.model_copy(update=updates | {"data_dir": data_dir})
        log("migrating ShopDB and the MES db")
        upgrade("shopdb", found.settings.shop_dsn)
        upgrade("mesdb", found.settings.mes_dsn)
        yield found
    finally:
        for server in (found.redis, found.postgres):
            if server is not None:
                server.stop()


@contextlib.contextmanager
def api_processes(
    settings: Settings, service: ServiceName, count: int, env: dict[str, str] | None = None
) -> Iterator[list[tuple[str, Child]]]:
    """`count` `orderflow serve <service>` processes on free ports, against `settings`'
    servers, each healthy before this yields [(base URL, process)]; stopped on exit."""
    env = child_env(settings) | (env or {})
    started: list[tuple[str, Child]] = []
    try:
        for _ in range(count):
            port = free_port()
            url = f"http://{settings.host}:{port}"
            started.append((url, Child("orderflow", ["serve", service, "--port", str(port)], env)))
        for url, child in started:
            wait_until(functools.partial(healthy, url, 1.0), url, children=[child])
        yield started
    finally:
        for _, child in started:
            child.terminate()  # all at once: they shut down in parallel
        for _, child in started:
            child.stop()


# ---------------------------------------------------------------- docs


def header(machine: Machine) -> str:
    """The top of a new docs/performance.md."""
    servers = ""
    if machine.postgresql or machine.redis:
        servers = f"; PostgreSQL {machine.postgresql}, Redis {machine.redis}"
    return (
        "# Performance\n\n"
        "Each `## ` section belongs to one tool under `perf/`, which rewrites only its own "
        "section when it runs again.\n\n"
        f"The machine of the first run: {machine.line()}{servers} (shared with other work, "
        "so figures are noisy).\n"
    )


def replace_section(text: str, heading: str, section: str) -> str:
    """`text` with the section under `heading` (up to the next `## `) replaced by `section`,
    or `section` appended; every other section untouched."""
    lines = text.splitlines(keepends=True)
    start = next((i for i, line in enumerate(lines) if line.rstrip() == heading), None)
    if start is None:
        return text.rstrip("\n") + "\n\n" + section
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
    tail = "".join(lines[end:])
    return "".join(lines[:start]) + section + ("\n" + tail if tail else "")


def publish(
    results: dict[str, Any],
    section: Callable[[dict[str, Any]], str],
    heading: str,
    *,
    json_path: Path | None,
    markdown: Path,
) -> None:
    """A bench's results: printed as its section (`json_path` None: write nothing), or written to
    `json_path` first (the data outlives a bug in the report), then as its section of `markdown`."""
    if json_path is None:
        print(section(results))
        return
    write_json(json_path, results)
    write_report(results, section, heading, markdown)
    log(f"wrote {json_path} and the section {heading!r} of {markdown}")


def write_report(
    results: dict[str, Any], section: Callable[[dict[str, Any]], str], heading: str, markdown: Path
) -> None:
    """A bench's section of `markdown`, from its results (also `--from-json`)."""
    write_section(markdown, heading, section(results), Machine.from_dict(results["machine"]))


def write_section(path: Path, heading: str, section: str, machine: Machine) -> None:
    """Put `section` (starting with `heading`, ending in a newline) into `path`, under an
    exclusive lock: another tool may be writing its own section at the same time."""
    assert section.startswith(heading + "\n"), "a section starts with its heading"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a+", encoding="utf-8") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        f.seek(0)
        text = f.read() or header(machine)
        f.seek(0)
        f.truncate()
        f.write(replace_section(text, heading, section))


def plain(value: Any) -> Any:
    """`value` as JSON can hold it: dataclasses as dicts, tuples as lists, NaN as null."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, Path):
        return str(value)
    return value


def write_json(path: Path, value: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(plain(value), indent=1) + "\n", encoding="utf-8")
