"""The fault suite: a running platform under load from all three roles while processes are
killed, paused, restarted and made to crash between a commit and its cache write; then the
history is checked against PostgreSQL, and, at a quiet end, what the APIs serve too.

    python -m tests.faults.suite --seconds 120     # the long run (make faults)
    python -m tests.faults.suite --cluster         # on a Redis Cluster: masters killed, paused
"""

import argparse
import asyncio
import json
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import orjson

from orderflow.kit.db import asyncpg_dsn
from tests.faults.checks import REPAIR_BOUND_S, bound
from tests.faults.cluster import master_killed, master_paused
from tests.faults.history import Ack, History
from tests.faults.platform import APIS, FaultPlatform, fault_platform
from tests.faults.rest import baseline, compare_at_rest
from tests.faults.verdict import Verdict, check
from tests.faults.workload import Workload


@dataclass
class Fault:
    name: str
    inject: Callable[[FaultPlatform], Awaitable[None]]


async def redis_killed(p: FaultPlatform) -> None:
    p.redis.kill()
    await asyncio.sleep(1.5)
    await asyncio.to_thread(p.redis.start)


async def redis_paused(p: FaultPlatform) -> None:
    p.pause_redis(True)  # calls time out rather than fail
    await asyncio.sleep(1.5)
    p.pause_redis(False)


async def postgres_restarted(p: FaultPlatform) -> None:
    await asyncio.to_thread(p.pg.stop)
    await asyncio.sleep(1.0)
    await asyncio.to_thread(p.pg.start)


async def relay_killed(p: FaultPlatform) -> None:
    async with p.lock("relay"):
        p.kill("relay")
        await asyncio.sleep(1.0)
        await asyncio.to_thread(p.start, "relay")


async def api_killed(p: FaultPlatform, service: str) -> None:
    await p.replace(service)  # SIGKILL mid-request: clients see resets and retry


CRASH_WINDOW_S = 5.0


async def crashes_after_commit(p: FaultPlatform) -> None:
    """For a few seconds clients are sent to a second process of each API, started with
    ORDERFLOW_CRASH_AFTER_COMMIT: it exits between a commit and its cache write, clients retry
    (on the service's own process while it is down), `keep_alive` starts it again."""
    await p.crashing(APIS, on=True)
    await asyncio.sleep(CRASH_WINDOW_S)
    await p.crashing(APIS, on=False)


REDIS_FAULTS = [
    Fault("Redis killed (SIGKILL) and restarted", redis_killed),
    Fault("Redis paused (SIGSTOP/SIGCONT)", redis_paused),
]
# On a Redis Cluster the Redis faults hit one master each time (`tests/faults/cluster.py`).
CLUSTER_REDIS_FAULTS = [
    Fault("Redis master killed (SIGKILL), replica promoted, rejoined", master_killed),
    Fault("Redis master paused 0.5 s (SIGSTOP/SIGCONT)", master_paused),
]
OTHER_FAULTS = [
    Fault("PostgreSQL restarted", postgres_restarted),
    Fault("relay killed (SIGKILL) mid-batch", relay_killed),
    Fault("Shop API killed mid-request", lambda p: api_killed(p, "shop")),
    Fault("MES API killed mid-request", lambda p: api_killed(p, "mes")),
    Fault("APIs crash between commit and cache write", crashes_after_commit),
]
FAULTS = REDIS_FAULTS + OTHER_FAULTS
CLUSTER_FAULTS = CLUSTER_REDIS_FAULTS + OTHER_FAULTS


async def inject_faults(
    platform: FaultPlatform,
    history: History,
    seconds: float,
    done: asyncio.Event,
    faults: list[Fault] = FAULTS,
) -> None:
    """Every fault in turn, with quiet gaps between: at least once each, then until `seconds`
    are up; then, once what the last one left has been read again, `done` stops the load."""
    until = time.monotonic() + seconds
    await asyncio.sleep(1.0)
    i = 0
    while i < len(faults) or time.monotonic() < until:
        fault = faults[i % len(faults)]
        started = time.monotonic()
        await fault.inject(platform)
        history.fault(fault.name, started)
        log(f"{fault.name}: {time.monotonic() - started:.1f} s")
        await asyncio.sleep(1.0)
        i += 1
    await asyncio.sleep(REPAIR_BOUND_S + 1.0)  # the last fault's retried acknowledgements rechecked
    done.set()


async def run(
    root: Path,
    seconds: float,
    faults: list[Fault] = FAULTS,
    *,
    cluster: bool = False,
    workers: int = 1,
) -> tuple[Verdict, History]:
    """`cluster`: on a Redis Cluster (give it CLUSTER_FAULTS); `workers` processes per API."""
    history = History()
    async with fault_platform(root, cluster=cluster, workers=workers) as platform:
        log("platform up")
        before = await baseline(platform)
        done, finished = asyncio.Event(), asyncio.Event()

        def died(name: str, code: int) -> None:
            history.crashes.append((time.monotonic(), name, code))
            log(f"{name} exited ({code})")

        watchdog = asyncio.create_task(platform.keep_alive(died, finished))
        try:
            await asyncio.gather(
                Workload(platform, history).run(done),
                inject_faults(platform, history, seconds, done, faults),
            )
            log("load stopped")
            await settle(platform, history)
            log("relay settled")
            await asyncio.sleep(REPAIR_BOUND_S)  # the quiet end: every repair is due by now
            at_rest = await compare_at_rest(platform, history)
            log("compared at rest")
            facts = await database_facts(platform, history)
        finally:
            finished.set()
            await watchdog
            history.failovers = platform.failovers
    return check(history, **facts, baseline=before, at_rest=at_rest), history


T0 = time.monotonic()


def log(what: str) -> None:
    print(f"[{time.monotonic() - T0:6.1f} s] {what}", file=sys.stderr, flush=True)


async def settle(platform: FaultPlatform, history: History, timeout_s: float = 60) -> None:
    """Wait until the relay has carried every hand-off (it has up to `timeout_s`)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        facts = await database_facts(platform, history)
        if all(facts["production"].get(o) for o in history.confirmed) and all(
            facts["shop_status"].get(o) in ("ready", "shipped", "delivered")
            for o in history.completed
        ):
            return
        await asyncio.sleep(0.5)


# An order claimed twice: a claim (to in_progress) right after another one in its history, or
# an assignment never ended with a later one after it. The history's ids follow the order's row
# lock; timestamps do not: `now()` is a transaction's start, and a claim that began before a
# release committed, then waited for its row lock, is stamped before the release it followed
# (the multi-host run of 14:51 counted such a pair as a double claim).
DOUBLE_CLAIMS = (
    "SELECT order_id FROM (SELECT order_id, to_status, lag(to_status) OVER "
    "(PARTITION BY order_id ORDER BY id) AS before FROM status_history) h "
    "WHERE to_status = 'in_progress' AND before = 'in_progress' "
    "UNION SELECT a.order_id FROM assignments a JOIN assignments b "
    "ON a.order_id = b.order_id AND a.id < b.id WHERE a.ended_at IS NULL"
)


async def database_facts(platform: FaultPlatform, history: History) -> dict[str, Any]:
    shop = await asyncpg.connect(asyncpg_dsn(platform.settings.shop_dsn))
    mes = await asyncpg.connect(asyncpg_dsn(platform.settings.mes_dsn))
    try:
        keys = list(history.requested)
        rows = await shop.fetch(
            "SELECT o.idempotency_key AS key, o.id, json_agg(json_build_object("
            "'item_id', l.item_id, 'quantity', l.quantity) ORDER BY l.line_no) AS lines "
            "FROM orders o JOIN order_lines l ON l.order_id = o.id "
            "WHERE o.idempotency_key = ANY($1) GROUP BY o.id",
            keys,
        )
        by_key: dict[str, list[dict[str, Any]]] = {}
        for row in rows:
            by_key.setdefault(row["key"], []).append(
                {"id": row["id"], "lines": orjson.loads(row["lines"])}
            )
        queued = await mes.fetch(
            "SELECT order_id, count(*) AS n FROM status_history "
            "WHERE from_status IS NULL AND to_status = 'queued' AND order_id = ANY($1) "
            "GROUP BY order_id",  # queued by the relay (a release queues it again)
            list(history.confirmed),
        )
        statuses = await shop.fetch(
            "SELECT id, status FROM orders WHERE id = ANY($1)", list(history.completed)
        )
        overlapping = await mes.fetch(DOUBLE_CLAIMS)
    finally:
        await shop.close()
        await mes.close()
    return {
        "orders_by_key": by_key,
        "production": {r["order_id"]: r["n"] for r in queued},
        "shop_status": {r["id"]: r["status"] for r in statuses},
        "overlapping_holders": [r["order_id"] for r in overlapping],
    }


def table(verdict: Verdict, history: History) -> str:
    faults = sorted({f.name for f in history.faults})
    lines = ["| what | count |", "|---|---|"]
    lines += [
        f"| fault injected: {name} | {sum(1 for f in history.faults if f.name == name)} |"
        for name in faults
    ]
    crashed = sorted({name for _, name, _ in history.crashes})
    lines += [
        f"| {name} exited on its own | {sum(1 for c in history.crashes if c[1] == name)} |"
        for name in crashed
    ]
    learned = sum(1 for a in history.acks if a.via_409)
    lines += [
        f"| requests made | {verdict.requests} |",
        f"| answered / unanswered (killed processes) | {verdict.answered} / {verdict.unanswered} |",
        f"| orders acknowledged | {verdict.orders_acknowledged} |",
        f"| confirmed / completed | {len(history.confirmed)} / {len(history.completed)} |",
        f"| states learned from a 409 | {learned} |",
        f"| reads checked for staleness (list members included) | {len(history.reads)} |",
        f"| list pages / count reads checked | {len(history.lists)} / {len(history.counts)} |",
        f"| slowest answer | {verdict.slowest_s:.2f} s |",
    ]
    if verdict.failovers:
        served = ", ".join(f"{f.served_s:.2f}" for f in verdict.failovers)
        healthy = ", ".join(_seconds(f.healthy_s) for f in verdict.failovers)
        lines += [
            f"| master killed: its slots served by its replica after (s) | {served} |",
            f"| master killed: every API's cache healthy again after (s) | {healthy} |",
        ]
    lines += [f"| **{name}** | **{n}** |" for name, n in verdict.failures().items()]
    return "\n".join(lines)


def _seconds(s: float | None) -> str:
    return "not within the bound" if s is None else f"{s:.2f}"


def examples(verdict: Verdict, n: int = 5) -> str:
    """The first few of each failure, to start looking from."""
    found = [
        f"{name}: {getattr(verdict, attr)[:n]}"
        for name, attr in verdict.failure_fields().items()
        if getattr(verdict, attr)
    ]
    return "\n".join(found)


def explain(verdict: Verdict, history: History, n: int = 3) -> str:
    """For the first few stale reads: that object's acknowledgements and reads around the
    stale one, and the faults under way then (seconds since the first request)."""
    zero = min((r.started for r in history.reads), default=0.0)
    lines = []
    for kind, oid, served, acked in verdict.stale_reads[:n]:
        reads = [r for r in history.reads if (r.kind, r.id) == (kind, oid)]
        acks = [a for a in history.acks if (a.kind, a.id, a.version) == (kind, oid, acked)]
        due = min(a.at + bound(a, history) for a in acks)  # as `stale_reads` counts it
        stale = next(r for r in reads if r.version == served and r.started > due)
        since, until = stale.started - 10, stale.started + 3
        lines.append(f"{kind} {oid}, stale read {stale.started - zero:.3f} s ({stale.where}):")
        events = [
            (
                a.at,
                f"ack v{a.version} {a.status} ({a.where}, began {a.started - zero:.3f}{_how(a)})",
            )
            for a in history.acks
            if (a.kind, a.id) == (kind, oid) and since <= a.at <= until
        ]
        events += [
            (r.started, f"read v{r.version} {r.status} ({r.where}, ended {r.ended - zero:.3f})")
            for r in reads
            if since <= r.started <= until
        ]
        events += [
            (f.started, f"fault {f.name} until {f.ended - zero:.3f}")
            for f in history.faults
            if f.started <= until and since <= f.ended
        ]
        lines += [f"  {at - zero:9.3f}  {what}" for at, what in sorted(events)]
    return "\n".join(lines)


def _how(ack: Ack) -> str:
    said = [("deferred", ack.deferred), ("via 409", ack.via_409), ("retried", ack.retried)]
    return "".join(f", {word}" for word, true in said if true)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=120)
    parser.add_argument(
        "--json",
        type=Path,
        help="default docs/bench/faults[-cluster][-workersN].json",
    )
    parser.add_argument(
        "--only", metavar="WORD", help="only the faults whose name holds WORD (e.g. crash)"
    )
    parser.add_argument(
        "--cluster",
        action="store_true",
        help="on an embedded Redis Cluster (3 masters, 3 replicas): masters killed and paused",
    )
    parser.add_argument(
        "--workers", type=int, default=1, help="processes per API (`serve --workers N`)"
    )
    args = parser.parse_args()
    every = CLUSTER_FAULTS if args.cluster else FAULTS
    faults = [f for f in every if (args.only or "").lower() in f.name.lower()]
    if not faults:
        parser.error(f"no fault's name holds {args.only!r}")
    with tempfile.TemporaryDirectory(prefix="orderflow-faults-") as root:
        verdict, history = asyncio.run(
            run(Path(root), args.seconds, faults, cluster=args.cluster, workers=args.workers)
        )
    print(table(verdict, history))
    print(examples(verdict), file=sys.stderr)
    print(explain(verdict, history), file=sys.stderr)
    name = "faults-cluster" if args.cluster else "faults"
    name += f"-workers{args.workers}.json" if args.workers > 1 else ".json"
    args.json = args.json or Path("docs/bench") / name
    args.json.parent.mkdir(parents=True, exist_ok=True)
    found: dict[str, Any] = {"seconds": args.seconds, "workers": args.workers}
    found |= verdict.failures()
    if args.cluster:
        found["failovers"] = [
            {"served_s": f.served_s, "healthy_s": f.healthy_s} for f in verdict.failovers
        ]
    args.json.write_text(json.dumps(found, indent=2))
    raise SystemExit(1 if any(verdict.failures().values()) else 0)


if __name__ == "__main__":
    main()
