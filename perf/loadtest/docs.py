"""The `## Load test (perf/loadtest)` section of docs/performance.md.

The file is shared: other sections belong to other tools. `perf.common.write_section` replaces
only ours, from our heading to the next `## ` heading, or appends it when it is not there yet.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from perf import common
from perf.loadtest.results import GroupAtStep, ProbeRow, Run, Step, total_rps
from perf.loadtest.verdicts import NONE, capacity_text, pivot, verdict_rows

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


def _cpu(step: Step | None) -> str:
    if step is None:
        return NONE
    return f"{step.rates.machine_busy_cores:.1f} / {step.generator_cpu_percent:.0f}%"


def section(
    run: Run,
    key: dict[str, Any],
    rows: list[GroupAtStep],
    probes: list[ProbeRow],
    pngs: dict[str, Path],
    base: Path,
) -> str:
    o, m = run.options, run.machine
    cap = key["capacity"]
    rps = {}
    for step in run.steps:
        if cap.get(step.mode) == step.users:
            rps[step.mode] = total_rps(run, step)[0]
    equal = key["equal_load"]
    platform = (
        "started by the test (`orderflow up`: one process per API, the relay, embedded "
        "PostgreSQL and Redis)"
        if run.started_platform
        else "already running at the configured URLs"
    )
    top = {s.mode: s for s in run.steps if s.users == o.steps[-1]}
    out = [
        HEADING,
        "",
        f"Run {run.started:%Y-%m-%d %H:%M} UTC: `{o.command}`. Platform {platform}; "
        f"{run.items:,} items, {run.orders or 0:,} orders. Machine: {m.line()}; load average "
        f"at start {', '.join(f'{x:.2f}' for x in m.load_average)} (shared "
        "machine: other work ran beside it). The load generator (Locust, one process) runs on "
        "the same cores.",
        "",
        f"Locust users, 70% clients (Shop: catalogue pages and items with Zipf-skewed item "
        "popularity, own profile and orders, orders with an `Idempotency-Key`, a few "
        "cancellations), 20% sellers (CRM: lists by status, client and date, counts, one order, "
        "confirmations), 10% operators (MES: the queue, claims, completions; a 409 is an expected "
        f"outcome); think time {o.think_ms:.0f} ms ± 50%. For cache `off`, then `on` "
        f"(`PUT /admin/cache` on the three services): {o.warmup_seconds:.0f} s warm-up, then "
        f"steps of {', '.join(map(str, o.steps))} users, {o.step_seconds:.0f} s each; then an "
        f"open-model probe at {o.probe_rate:.0f} req/s per endpoint for {o.probe_seconds:.0f} s "
        "(latency from the scheduled send time). SLA: p95 ≤ "
        f"{o.sla.read_ms:.0f} ms reads, ≤ {o.sla.place_ms:.0f} ms order placement, ≤ "
        f"{o.sla.claim_ms:.0f} ms claims, {o.sla.max_errors} errors.",
        "",
        "| figure | cache off | cache on |",
        "|---|---|---|",
        f"| SLA capacity: highest step holding (users) | {cap.get('off') or 'none'} | "
        f"{cap.get('on') or 'none'} |",
        f"| throughput at that step, req/s | {_n(rps.get('off'))} | {_n(rps.get('on'))} |",
        f"| PostgreSQL statements/s at {equal.users if equal else NONE} users | "
        f"{_n(equal.off_qps if equal else None)} | {_n(equal.on_qps if equal else None)} |",
        "| PostgreSQL statements per request, same step | "
        f"{_n(equal.off_per_request if equal else None, 2)} | "
        f"{_n(equal.on_per_request if equal else None, 2)} |",
        f"| machine busy cores / Locust CPU % at {o.steps[-1]} users | "
        + " | ".join(_cpu(top.get(mode)) for mode in ("off", "on"))
        + " |",
        f"| item hit ratio (hits + near hits over reads) | {NONE} | "
        f"{_n(100 * key['item_hit_ratio'] if key['item_hit_ratio'] is not None else None, 1)}% |",
        "",
        f"- **Capacity**: {capacity_text(run, key)}.",
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
        f"- **PostgreSQL load at equal load** ({equal.users if equal else NONE} users): "
        f"{_n(equal.reduction if equal else None)}% fewer statements per second with the cache "
        f"on, {_n(equal.reduction_per_request if equal else None)}% fewer per request.",
        "",
        f"| endpoint group | SLA p95 | off: holds to | off: p95 @{o.steps[-1]} | off: probe p95 | "
        f"off | on: holds to | on: p95 @{o.steps[-1]} | on: probe p95 | on |",
        "|---|---|---|---|---|---|---|---|---|---|",
        *("| " + " | ".join(r) + " |" for r in pivot(run, verdict_rows(run, rows, probes))),
        "",
        "p95 in ms; holds to: the highest step (users) up to which the group meets its SLA at "
        "every step; ✗: misses it at that step; *: fewer than "
        f"{o.sla.min_samples} requests there, p95 not judged; the verdict needs every step and "
        "the probe. Other writes (register, cancel, confirm, complete) are judged on errors only.",
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
        "Run it: `make loadtest` (= `uv run --frozen python -m perf.loadtest`) against a running "
        "platform, or it starts one (`--start`, `--data-dir`). `python -m perf.loadtest --help` "
        "lists the options (steps, step and probe durations, probe rate, SLA). The HTML report "
        "and raw CSV files go to `reports/loadtest-<timestamp>/`. The default data set has 200,000 "
        "orders; for 1,000,000 load them into an empty data dir first, "
        "`ORDERFLOW_DATA_DIR=.orderflow-1m orderflow seed --orders 1000000`, then "
        "`python -m perf.loadtest --data-dir .orderflow-1m` (or `--orders 1000000` with a fresh "
        "`--data-dir`, passed to `orderflow up` as `ORDERFLOW_SEED_ORDERS`).",
        "",
    ]
    return "\n".join(out)
