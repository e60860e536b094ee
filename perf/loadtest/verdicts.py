"""Verdicts: the SLA capacity of each mode, the key figures, the per-group verdict table."""

from __future__ import annotations

import math
from typing import Any

from perf.loadtest.config import GROUPS
from perf.loadtest.results import (
    GroupAtStep,
    ProbeRow,
    Run,
    capacity,
    hit_ratio,
    queries_at_equal_load,
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
    cap = {mode: capacity(holds, mode) for mode in run.options.modes}
    off, on = cap.get("off"), cap.get("on")
    equal = queries_at_equal_load(run)
    return {
        "capacity": cap,
        "ratio": on / off if on and off else None,
        "equal_load": equal[-1] if equal else None,
        "item_hit_ratio": hit_ratio(run, "on", "item"),
        "holds": holds,
    }


def capacity_text(run: Run, key: dict[str, Any]) -> str:
    cap, parts = key["capacity"], []
    ran = {step.mode for step in run.steps}
    for mode in run.options.modes:
        users = cap[mode]
        if mode not in ran:
            parts.append(f"cache {mode}: not run")
            continue
        parts.append(
            f"cache {mode}: "
            + (f"{users} users" if users else f"no step (not even {run.options.steps[0]})")
        )
    ratio = key["ratio"]
    if ratio is not None:
        parts.append(f"on/off = {ratio:.1f}{X}")
    elif cap.get("on") and "off" in ran:
        parts.append("on/off: no ratio, off holds at no step")
    return "; ".join(parts)


def _cell(r: GroupAtStep | None) -> str:
    """p95 at a step; ✗ when the group misses the SLA there; * when too few requests to judge."""
    if r is None:
        return NONE
    return (
        fmt(r.summary.p95)
        + ("" if r.judged or r.limit_ms is None else "*")
        + ("" if r.holds else " ✗")
    )


def pivot(run: Run, table: list[list[Any]]) -> list[list[str]]:
    """One row per group: group, SLA, then per mode: holds to, p95 at the top step, probe p95,
    verdict (from `verdict_rows`)."""
    rows: dict[str, list[str]] = {}
    for group, _mode, sla, *p95s, best, probe, verdict in table:
        rows.setdefault(group, [group, sla]).extend([str(best), p95s[-1], probe, verdict])
    return list(rows.values())


def verdict_rows(run: Run, rows: list[GroupAtStep], probes: list[ProbeRow]) -> list[list[Any]]:
    """Per endpoint group and mode: the p95 at each step, the highest step that holds, the
    probe's p95 at the constant rate, and the verdict."""
    modes, steps = run.options.modes, run.options.steps
    by = {(r.mode, r.users, r.group): r for r in rows}
    probe_by = {(p.mode, p.endpoint): p for p in probes}
    table = []
    present = {r.group for r in rows}
    for group in [grp for grp in GROUPS if grp in present] + sorted(present - set(GROUPS)):
        for mode in modes:
            at = [by.get((mode, u, group)) for u in steps]
            ok = [r.holds for r in at if r is not None]
            best = None
            for u, r in zip(steps, at, strict=True):
                if r is not None and not r.holds:
                    break
                best = u if r is not None else best  # a step without requests proves nothing
            p = probe_by.get((mode, group))
            limit = run.options.sla.p95_limit(group)
            verdict = (
                "no data" if not ok else "PASS" if all(ok) and (p is None or p.holds) else "FAIL"
            )
            table.append(
                [
                    group,
                    mode,
                    "errors only" if limit is None else f"≤ {limit:.0f} ms",
                    *(_cell(r) for r in at),
                    best if best is not None else "none",
                    f"{fmt(p.p95)} ({p.failures} err)" if p else NONE,
                    verdict,
                ]
            )
    return table
