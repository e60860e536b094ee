"""The fault suite: a running platform under load from all three roles while processes are
killed, paused and restarted; then the history is checked against PostgreSQL.

    python -m tests.faults.suite --seconds 120     # the long run (make faults)
"""

import argparse
import asyncio
import json
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import orjson

from orderflow.kit.db import asyncpg_dsn
from tests.faults.history import History, Verdict, check
from tests.faults.platform import FaultPlatform, fault_platform
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
    p.kill("relay")
    await asyncio.sleep(1.0)
    await asyncio.to_thread(p.start, "relay")


async def api_killed(p: FaultPlatform, service: str) -> None:
    p.kill(service)  # mid-request: clients see resets and retry
    await asyncio.to_thread(p.start, service)


FAULTS = [
    Fault("Redis killed (SIGKILL) and restarted", redis_killed),
    Fault("Redis paused (SIGSTOP/SIGCONT)", redis_paused),
    Fault("PostgreSQL restarted", postgres_restarted),
    Fault("relay killed (SIGKILL) mid-batch", relay_killed),
    Fault("Shop API killed mid-request", lambda p: api_killed(p, "shop")),
    Fault("MES API killed mid-request", lambda p: api_killed(p, "mes")),
]


async def inject_faults(
    platform: FaultPlatform, history: History, seconds: float, done: asyncio.Event
) -> None:
    """Every fault in turn, with quiet gaps between: at least once each, then until `seconds`
    are up; then `done` stops the workload."""
    until = time.monotonic() + seconds
    await asyncio.sleep(1.0)
    i = 0
    while i < len(FAULTS) or time.monotonic() < until:
        fault = FAULTS[i % len(FAULTS)]
        history.fault(fault.name)
        await fault.inject(platform)
        await asyncio.sleep(1.0)
        i += 1
    done.set()


async def run(root: Path, seconds: float) -> tuple[Verdict, History]:
    history = History()
    async with fault_platform(root) as platform:
        done = asyncio.Event()
        await asyncio.gather(
            Workload(platform, history).run(done),
            inject_faults(platform, history, seconds, done),
        )
        await settle(platform, history)
        facts = await database_facts(platform, history)
    return check(history, **facts), history


async def settle(platform: FaultPlatform, history: History, timeout_s: float = 60) -> None:
    """Wait until the relay has carried every hand-off (it has up to `timeout_s`)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        facts = await database_facts(platform, history)
        if all(facts["production"].get(o) for o in history.confirmed) and all(
            facts["shop_status"].get(o) == "ready" for o in history.completed
        ):
            return
        await asyncio.sleep(0.5)


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
            "WHERE to_status = 'queued' AND order_id = ANY($1) GROUP BY order_id",
            list(history.confirmed),
        )
        statuses = await shop.fetch(
            "SELECT id, status FROM orders WHERE id = ANY($1)", list(history.completed)
        )
        overlapping = await mes.fetch(
            "SELECT DISTINCT a.order_id FROM assignments a JOIN assignments b "
            "ON a.order_id = b.order_id AND a.id < b.id "
            "AND (a.ended_at IS NULL OR a.ended_at > b.claimed_at)"
        )
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
    faults = sorted({name for _, name in history.faults})
    lines = ["| what | count |", "|---|---|"]
    lines += [
        f"| fault injected: {name} | {sum(1 for _, n in history.faults if n == name)} |"
        for name in faults
    ]
    lines += [
        f"| requests made | {verdict.requests} |",
        f"| answered / unanswered (killed processes) | {verdict.answered} / {verdict.unanswered} |",
        f"| orders acknowledged | {verdict.orders_acknowledged} |",
        f"| confirmed / completed | {len(history.confirmed)} / {len(history.completed)} |",
        f"| reads checked for staleness | {len(history.reads)} |",
        f"| slowest answer | {verdict.slowest_s:.2f} s |",
    ]
    lines += [f"| **{name}** | **{n}** |" for name, n in verdict.failures().items()]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=120)
    parser.add_argument("--json", type=Path, default=Path("docs/bench/faults.json"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="orderflow-faults-") as root:
        verdict, history = asyncio.run(run(Path(root), args.seconds))
    print(table(verdict, history))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"seconds": args.seconds, **verdict.failures()}, indent=2))
    raise SystemExit(1 if any(verdict.failures().values()) else 0)


if __name__ == "__main__":
    main()
