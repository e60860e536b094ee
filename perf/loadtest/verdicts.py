"""Verdicts: the SLA capacity of each mode and group, the key figures, the p95 table."""

from __future__ import annotations

import math
from typing import Any

from perf.loadtest.config import GROUPS
from perf.loadtest.results import (
    Capacity,
    GroupAtStep,
    ProbeRow,
    Run,
    group_capacity,
    hit_ratio,
    mode_capacity,
    queries_at_equal_load,
    ratio,
    step_holds,
)

NONE = "\N{EN DASH}"  # spelled out: ruff flags the bare signs as ambiguous
X = "\N{MULTIPLICATION SIGN}"


def fmt(value: float | None, digits: int = 1) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return NONE
    return f"{value:,.{digits}f}"


def pct(value: float | None) -> str:
    return NONE if value is None else f"{100 * value:.1f}%"


def headline(run: Run, rows: list[GroupAtStep]) -> dict[str, Any]:
    """The key figures: capacity per mode, their ratio, queries at equal load, item hits."""
    holds = step_holds(rows)
    cap = {mode: mode_capacity(run, mode, holds) for mode in run.options.modes}
    equal = queries_at_equal_load(run)
    off, on = cap.get("off"), cap.get("on")
    return {
        "capacity": cap,
        "ratio": ratio(on, off) if on and off else NONE,
        "ratio_rps": ratio(on, off, "rps") if on and off else NONE,
        "equal_load": equal[-1] if equal else None,
        "item_hit_ratio": hit_ratio(run, "on", "item"),
        "holds": holds,
    }


def capacity_text(run: Run, key: dict[str, Any]) -> str:
    """`cache off: 11 users (41 req/s), SLA broken at 17 users: ...; cache on: ...; on/off =
    2.3x in users, 2.4x in req/s`."""
    parts = []
    for mode in run.options.modes:
        c: Capacity = key["capacity"][mode]
        if mode not in run.ends:
            parts.append(f"cache {mode}: not run")
            continue
        rps = f" ({c.rps:,.0f} req/s)" if c.rps is not None else ""
        users = f"{c.value()} users" if c.users is not None else "no step counts"
        parts.append(f"cache {mode}: {users}{rps}, {c.reason}")
    parts.append(f"on/off = {key['ratio']} in users, {key['ratio_rps']} in req/s")
    return "; ".join(parts)


def group_rows(run: Run, rows: list[GroupAtStep]) -> list[list[str]]:
    """Per endpoint group: SLA, then per mode its capacity and what stopped it, then on/off."""
    table = []
    present = {r.group for r in rows}
    for group in [grp for grp in GROUPS if grp in present] + sorted(present - set(GROUPS)):
        limit = run.options.sla.p95_limit(group)
        cells = [group, "errors only" if limit is None else f"≤ {limit:.0f} ms"]
        caps = {mode: group_capacity(run, mode, group, rows) for mode in run.options.modes}
        for c in caps.values():
            cells += [c.text(), c.reason]
        on, off = caps.get("on"), caps.get("off")
        cells.append(ratio(on, off) if on and off else NONE)
        table.append(cells)
    return table


def _cell(r: GroupAtStep | None) -> str:
    """p95 at a step; ✗ when the group misses the SLA there; * when too few requests to judge."""
    if r is None:
        return NONE
    return (
        fmt(r.summary.p95)
        + ("" if r.judged or r.limit_ms is None else "*")
        + ("" if r.holds else " ✗")
    )


def step_users(run: Run) -> list[int]:
    """Every step's users, either mode's, lowest first."""
    return sorted({s.users for s in run.steps})


def p95_rows(run: Run, rows: list[GroupAtStep], probes: list[ProbeRow]) -> list[list[Any]]:
    """Per endpoint group and mode: the p95 at each step (`step_users`), the capacity, and the
    probe's p95 at its constant rate."""
    by = {(r.mode, r.users, r.group): r for r in rows}
    probe_by = {(p.mode, p.endpoint): p for p in probes}
    table = []
    present = {r.group for r in rows}
    for group in [grp for grp in GROUPS if grp in present] + sorted(present - set(GROUPS)):
        for mode in run.options.modes:
            p = probe_by.get((mode, group))
            limit = run.options.sla.p95_limit(group)
            table.append(
                [
                    group,
                    mode,
                    "errors only" if limit is None else f"≤ {limit:.0f} ms",
                    *(_cell(by.get((mode, u, group))) for u in step_users(run)),
                    group_capacity(run, mode, group, rows).text(),
                    f"{fmt(p.p95)} ({p.failures} err)" if p else NONE,
                ]
            )
    return table
