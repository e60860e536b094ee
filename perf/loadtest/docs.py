"""The `## Load test (perf/loadtest)` section of docs/performance.md.

The file is shared: other sections belong to other tools. `perf.common.write_section` replaces
only ours, from our heading to the next `## ` heading, or appends it when it is not there yet.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from perf import common
from perf.loadtest.config import GENERATOR_SATURATED
from perf.loadtest.page import ladder_text
from perf.loadtest.results import Capacity, GroupAtStep, ProbeRow, Run, total_rps
from perf.loadtest.verdicts import NONE, capacity_text, group_rows

HEADING = "## Load test (perf/loadtest)"


def write_section(
    docs: Path,
    run: Run,
    key: dict[str, Any],
    rows: list[GroupAtStep],
    probes: list[ProbeRow],
    pngs: dict[str, Path],
) -> None:
    text = section(run, key, rows, probes, pngs, docs.parent)
    common.write_section(docs, HEADING, text, run.machine)


def _n(value: float | None, digits: int = 0) -> str:
    if value is None or math.isnan(value):
        return NONE
    return f"{value:,.{digits}f}"


FULL_RUN = (
    "uv run --frozen python -m perf.loadtest --data-dir .orderflow-1m --orders 1000000 "
    "--start-users 5 --growth 1.5 --max-users 1000 --step-seconds 30"
)


def run_it() -> str:
    """The closing paragraph: how to run it, on 1,000,000 orders."""
    return (
        "Run it: `make loadtest`, which on 1,000,000 orders is, with the ladder spelled out, "
        f"`{FULL_RUN}` (it seeds `.orderflow-1m` on first use, ~2 min; with a platform already "
        "running at the configured URLs it tests that one instead). Each mode climbs from "
        "`--start-users`, times `--growth` a step (rounded), `--step-seconds` a step, until a "
        "step breaks the SLA, saturates the load generator or reaches `--max-users`. The full "
        "run takes about 25-45 minutes: two ladders of a few minutes each, the probe of six "
        "endpoints per mode, and the waits for an overloaded platform to drain. "
        "`python -m perf.loadtest --help` lists the options (ladder, step and probe durations, "
        "probe rate, SLA). The HTML report and raw CSV files go to "
        "`reports/loadtest-<timestamp>/`. The default data set has 200,000 orders; for "
        "1,000,000 load them into an empty data dir first, "
        "`ORDERFLOW_DATA_DIR=.orderflow-1m orderflow seed --orders 1000000`, then "
        "`python -m perf.loadtest --data-dir .orderflow-1m` (or `--orders 1000000` with a fresh "
        "`--data-dir`, passed to `orderflow up` as `ORDERFLOW_SEED_ORDERS`)."
    )


def _steps(run: Run, key: dict[str, Any]) -> list[str]:
    rows = []
    for step in run.steps:
        rps, failures = total_rps(run, step)
        held = key["holds"].get((step.mode, step.users), True)
        generator = f"{step.generator_cores:.2f}" + (
            " **saturated: not a platform measurement**" if step.generator_saturated else ""
        )
        others = f"{step.others_cores:.2f}" if run.started_platform else NONE
        processes = ", ".join(f"{g} {c:.2f}" for g, c in step.process_cores.items()) or NONE
        if (throttled := step.pg_throttling) is not None:
            processes += f"; PostgreSQL budget: {throttled.text()}"
        rows.append(
            f"| {step.mode} | {step.users} | {_n(rps)} | {failures} | "
            f"{'holds' if held else 'broken'} | {step.platform_cores:.2f} | {generator} | "
            f"{others} | {step.rates.machine_busy_cores:.2f} | {processes} |"
        )
    return rows


def section(
    run: Run,
    key: dict[str, Any],
    rows: list[GroupAtStep],
    probes: list[ProbeRow],
    pngs: dict[str, Path],
    base: Path,
) -> str:
    o, m = run.options, run.machine
    cap: dict[str, Capacity] = key["capacity"]
    off, on = cap.get("off"), cap.get("on")
    equal = key["equal_load"]
    platform = (
        "started by the test (`orderflow up`: one process per API, the relay, embedded "
        "PostgreSQL and Redis)"
        if run.started_platform
        else "already running at the configured URLs"
    )
    if o.pg_cpus is not None:
        platform += (
            f", its PostgreSQL held to {o.pg_cpus:g} cores (a cgroup with 10 ms CFS periods; "
            "each step's throttling is in the steps' table)"
        )
    ends = {
        mode: run.ends[mode].text(short=True) if mode in run.ends else "not run" for mode in o.modes
    }
    hits = key["item_hit_ratio"]
    out = [
        HEADING,
        "",
        f"Run {run.started:%Y-%m-%d %H:%M} UTC: `{o.command}`. Platform {platform}; "
        f"{run.items:,} items, {run.orders or 0:,} orders. Machine: {m.line()}; load average "
        f"at start {', '.join(f'{x:.2f}' for x in m.load_average)} (shared "
        "machine: other work ran beside it). The load generator (Locust, one process, "
        "`FastHttpUser`) runs on the same cores; its CPU is in the steps' table.",
        "",
        f"Locust users, 70% clients (Shop: catalogue pages and items with Zipf-skewed item "
        "popularity, own profile and orders, orders with an `Idempotency-Key`, a few "
        "cancellations), 20% sellers (CRM: lists by status, client and date, counts, one order, "
        "confirmations), 10% operators (MES: the queue, claims, completions; a 409 is an expected "
        f"outcome); think time {o.think_ms:.0f} ms ± 50%. For cache `off`, then `on` "
        f"(`PUT /admin/cache` on the three services): {o.warmup_seconds:.0f} s warm-up, then "
        f"{ladder_text(o)}, {o.step_seconds:.0f} s a step; then an open-model probe at "
        f"{o.probe_rate:.0f} req/s per endpoint for {o.probe_seconds:.0f} s (latency from the "
        "scheduled send time). SLA, per endpoint group and step: p95 ≤ "
        f"{o.sla.read_ms:.0f} ms reads, ≤ {o.sla.place_ms:.0f} ms order placement, ≤ "
        f"{o.sla.claim_ms:.0f} ms claims, at most {o.sla.max_errors} errors (other writes: errors "
        "only). A step breaks the SLA when any group misses it; that ends the mode's ladder, and "
        "its capacity is the step below.",
        "",
        "| figure | cache off | cache on |",
        "|---|---|---|",
        f"| SLA capacity: highest step holding (users) | {_cap(off)} | {_cap(on)} |",
        f"| throughput at that step, req/s | {_n(off.rps if off else None)} | "
        f"{_n(on.rps if on else None)} |",
        f"| what ended the ladder | {ends.get('off', NONE)} | {ends.get('on', NONE)} |",
        f"| PostgreSQL statements/s at {equal.users if equal else NONE} users | "
        f"{_n(equal.off_qps if equal else None)} | {_n(equal.on_qps if equal else None)} |",
        "| PostgreSQL statements per request, same step | "
        f"{_n(equal.off_per_request if equal else None, 2)} | "
        f"{_n(equal.on_per_request if equal else None, 2)} |",
        f"| item hit ratio (hits + near hits over reads) | {NONE} | "
        f"{_n(100 * hits if hits is not None else None, 1)}% |",
        "",
        f"- **Capacity**: {capacity_text(run, key)}. A bound (≥, ≤, >, <) means a mode's "
        "figure is not a measured break: its ladder reached the ceiling, the load generator's "
        "limit or an interruption (≥), or it broke at the first step (<); the ratio is then a "
        "bound too, never a number.",
        (
            "- **Item hit ratio**: before the `on` steps every item was read once, as the "
            "quiet-window job warms them in production (`--warm-items`); the ratio is the "
            "steady state, and misses are items edited during the run or expired near copies "
            "that Redis no longer held."
            if o.warm_items
            else "- **Item hit ratio** counts every item's first read in the run as a miss "
            "(`--cold-items`): a fresh cache starts cold, so the ratio grows with the run's "
            "length and is higher against a platform that has served before."
        ),
        f"- **PostgreSQL load at equal load** ({equal.users if equal else NONE} users, the "
        f"highest step both modes ran): {_n(equal.reduction if equal else None)}% fewer "
        "statements per second with the cache on, "
        f"{_n(equal.reduction_per_request if equal else None)}% fewer per request.",
        "",
        f"Steps. CPU in cores (CPU seconds per second); platform: {run.platform_cpu}; load "
        f"generator: the Locust process, saturated above {GENERATOR_SATURATED:.0%} of a core "
        "(such a step measured the generator: it ends the ladder and counts as no break); "
        "other processes: the rest of the machine's busy cores, work beside the test on a "
        "shared machine; by process: the platform's CPU by part (its processes found under "
        "`orderflow up`, so only when the test started the platform).",
        "",
        "| mode | users | req/s | errors | SLA | platform CPU | load generator CPU | "
        "other processes | machine busy | platform CPU by process |",
        "|---|---|---|---|---|---|---|---|---|---|",
        *_steps(run, key),
        "",
        "| endpoint group | SLA p95 | off: capacity | off: what stopped it | on: capacity | "
        "on: what stopped it | on/off |",
        "|---|---|---|---|---|---|---|",
        *("| " + " | ".join(r) + " |" for r in group_rows(run, rows)),
        "",
        "Capacity in users: the highest step up to which the group held at every step with "
        "its requests. ≥: the group never broke, the ladder stopped for another group, its "
        "ceiling or the load generator (a floor, not a measurement); <: it broke at the first "
        "step. The report's HTML has every group's p95 at every step.",
        "",
        f"Open-model probe, {o.probe_rate:.0f} req/s per endpoint for {o.probe_seconds:.0f} s "
        "(ms from the scheduled send, every answer counted; status 0: no answer):",
        "",
        "| endpoint | mode | sent/s | p50 | p95 | p99 | statuses |",
        "|---|---|---|---|---|---|---|",
        *(
            f"| {p.endpoint} | {p.mode} | {p.rate:.0f} | {_n(p.p50, 1)} | {_n(p.p95, 1)} | "
            f"{_n(p.p99, 1)} | {p.statuses} |"
            for p in probes
        ),
        "",
        *(f"![{name}]({png.resolve().relative_to(base.resolve())})" for name, png in pngs.items()),
        "",
        run_it(),
        "",
    ]
    return "\n".join(out)


def _cap(c: Capacity | None) -> str:
    return c.text() if c else NONE
