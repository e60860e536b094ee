"""The fault suite on several hosts: the fault suite's load (`tests/faults/workload.py`) sent
through a balancer to two API hosts while the nemesis partitions, kills and pauses hosts, each
fault `rounds` times; then its checker: nothing acknowledged lost or duplicated, nothing older
than an acknowledged state served beyond the bound, no double claim, no 500.
"""

import asyncio
import itertools
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.faults.checks import REPAIR_BOUND_S
from tests.faults.history import Call, History
from tests.faults.rest import baseline, compare_at_rest
from tests.faults.suite import database_facts, examples, explain, settle, table
from tests.faults.verdict import Verdict, check
from tests.faults.workload import Workload
from tests.multihost import database
from tests.multihost.lab import Balancer, Lab
from tests.multihost.nemesis import FAULTS, Injection, Nemesis

QUIET_S = 2.0  # between two faults
# Faults that take a Redis node away from every API process: what the journal owes it waits for
# the heal (`FaultWindow.redis_back`, tests/faults/checks.py).
REDIS_AWAY = frozenset({"Redis host killed (a master and a replica)", "Redis host paused"})
JSON = Path("docs/bench/multihost.json")


def run_suite(
    lab: Lab, rounds: int, only: str | None, log: Callable[[str], None], skip: str | None = None
) -> int:
    faults = [f for f in FAULTS if (only or "").lower() in f[0].lower()]
    faults = [f for f in faults if not skip or skip.lower() not in f[0].lower()]
    if not faults:
        log(f"no fault's name holds {only!r} without {skip!r}")
        return 2
    try:
        lab.up(log)
        hosts = lab.table()
        print(hosts, flush=True)
        verdict, history, shots = asyncio.run(_run(lab, faults, rounds, log))
    finally:
        lab.down()
        log("lab removed")
    print()
    print(fault_table(shots, history))
    print()
    print(table(verdict, history))
    found = examples(verdict)
    if found:
        print(found)
        print(explain(verdict, history))
        print(explain_lost(verdict, history))
    JSON.parent.mkdir(parents=True, exist_ok=True)
    JSON.write_text(json.dumps(_summary(rounds, shots, verdict, history), indent=2))
    return 1 if any(verdict.failures().values()) or any(s.recovered_s is None for s in shots) else 0


async def _run(
    lab: Lab, faults: list[Any], rounds: int, log: Callable[[str], None]
) -> tuple[Verdict, History, list[Injection]]:
    balancer = Balancer(lab, lab.settings())
    history = History()
    before = await baseline(balancer)  # type: ignore[arg-type]  (duck-typed platform)
    done, checking = asyncio.Event(), asyncio.Event()
    shots: list[Injection] = []
    nemesis = Nemesis(lab, log)

    async def inject() -> None:
        await asyncio.sleep(QUIET_S)
        for turn in range(rounds):
            for name, fault, takes_database in faults:
                shot = Injection(name, database=takes_database)
                await fault(nemesis, shot, turn)
                shot.recovered_s = await nemesis.recovered(shot.healed)
                if takes_database:
                    leader = await asyncio.to_thread(database.leader, lab.dbs)
                    shot.notes.append(f"{leader.name if leader else 'none'} primary after")
                back = shot.healed if name in REDIS_AWAY else None
                history.fault(name, shot.started, database=takes_database, redis_back=back)
                shots.append(shot)
                said = (
                    "not within the bound"
                    if shot.recovered_s is None
                    else (f"{shot.recovered_s:.1f} s")
                )
                log(f"{name} ({'; '.join(shot.notes)}): recovered after {said}")
                await asyncio.sleep(QUIET_S)
        await asyncio.sleep(REPAIR_BOUND_S + 1.0)
        done.set()

    checks = asyncio.create_task(balancer.check(checking))
    try:
        await asyncio.gather(Workload(balancer, history).run(done), inject())  # type: ignore[arg-type]
        log("load stopped")
        await settle(balancer, history)  # type: ignore[arg-type]
        await asyncio.sleep(REPAIR_BOUND_S)
        at_rest = await compare_at_rest(balancer, history)  # type: ignore[arg-type]
        facts = await database_facts(balancer, history)  # type: ignore[arg-type]
    finally:
        checking.set()
        await checks
    return check(history, **facts, baseline=before, at_rest=at_rest), history, shots


def explain_lost(verdict: Verdict, history: History, n: int = 5) -> str:
    """For the first lost orders: each attempt at placing it (seconds since the first request,
    its answer) and the faults under way then."""
    zero = min((c.started for c in history.calls), default=0.0)
    lines = []
    for lost in verdict.lost_orders[:n]:
        key = lost.split(":")[0]
        body = history.requested[key]
        lines.append(f"lost {lost}:")
        attempts = [
            c
            for c in history.calls
            if c.path == "/orders" and c.method == "POST" and c.body is not None
            and isinstance(c.body, dict) and c.body.get("client_id") == body["client_id"]
            and c.body.get("id") == history.placed[key]["id"]
        ]  # fmt: skip
        for c in attempts:
            lines.append(f"  {c.started - zero:8.3f}-{c.ended - zero:8.3f} {c.status}")
        at = history.placed[key]
        faults = [
            f"{f.name} {f.started - zero:.1f}-{f.ended - zero:.1f}"
            for f in history.faults
            if attempts and f.started - 15 <= attempts[0].started <= f.ended + 15
        ]
        lines.append(f"  v{at['version']} {at['status']}; faults near: {faults}")
    return "\n".join(lines)


def _during(calls: list[Call], shot: Injection) -> list[Call]:
    until = shot.healed + (shot.recovered_s or 0.0)
    return [c for c in calls if shot.started <= c.started <= until]


def _longest_without_order(calls: list[Call], shot: Injection) -> float:
    """The longest stretch, from the fault's start until it recovered, in which no order was
    acknowledged (201) by any API host."""
    until = shot.healed + (shot.recovered_s or 0.0)
    placed = sorted(
        c.ended
        for c in calls
        if c.method == "POST" and c.path == "/orders" and c.status == 201
        and shot.started <= c.ended <= until
    )  # fmt: skip
    edges = [shot.started, *placed, until]
    return max(b - a for a, b in itertools.pairwise(edges))


def fault_table(shots: list[Injection], history: History) -> str:
    lines = [
        "| fault | what it hit | requests | orders acknowledged | 503s | 500s |"
        " longest without an order (s) | recovered after the heal (s) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for shot in shots:
        calls = _during(history.calls, shot)
        acked = sum(1 for c in calls if c.path == "/orders" and c.status == 201)
        errors = sum(1 for c in calls if c.status is not None and c.status >= 500)
        recovered = "not within 120" if shot.recovered_s is None else f"{shot.recovered_s:.1f}"
        lines.append(
            f"| {shot.name} | {'; '.join(shot.notes)} | {len(calls)} | {acked} | "
            f"{sum(1 for c in calls if c.status == 503)} | "
            f"{errors - sum(1 for c in calls if c.status == 503)}"
            f" | {_longest_without_order(history.calls, shot):.1f} | {recovered} |"
        )
    return "\n".join(lines)


def _summary(
    rounds: int, shots: list[Injection], verdict: Verdict, history: History
) -> dict[str, Any]:
    return {
        "rounds": rounds,
        "faults": [
            {
                "fault": s.name,
                "hit": s.notes,
                "lasted_s": round(s.healed - s.started, 2),
                "recovered_s": s.recovered_s and round(s.recovered_s, 2),
                "longest_without_an_order_s": round(_longest_without_order(history.calls, s), 2),
            }
            for s in shots
        ],
        "requests": verdict.requests,
        "orders_acknowledged": verdict.orders_acknowledged,
        **verdict.failures(),
        "at": time.strftime("%Y-%m-%d %H:%M"),
    }
