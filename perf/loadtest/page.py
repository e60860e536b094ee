"""report.html: one self-contained page (figures inlined as base64 data URIs)."""

from __future__ import annotations

import base64
from collections.abc import Iterable, Sequence
from html import escape
from pathlib import Path
from typing import Any

from perf.loadtest.config import GENERATOR_SATURATED, Options
from perf.loadtest.results import EqualLoad, GroupAtStep, ProbeRow, Run, total_rps
from perf.loadtest.verdicts import (
    NONE,
    X,
    capacity_text,
    fmt,
    group_rows,
    p95_rows,
    pct,
    step_users,
)

STYLE = """body{font:14px system-ui,sans-serif;margin:2em;max-width:1300px}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:3px 7px;
text-align:right}td:first-child,th:first-child{text-align:left}img{max-width:100%}
.warn{color:#b00}"""
STEP_HEAD = ("mode", "users", "req/s", "errors", "SLA holds", "PostgreSQL q/s", "item hits",
             "platform CPU, cores", "load generator CPU, cores", "other processes, cores",
             "machine busy cores")  # fmt: skip
PROBE_HEAD = ("endpoint", "mode", "sent", "sent/s", "errors", "p50", "p95", "p99", "max",
              "send lag p99", "SLA p95", "holds", "statuses")  # fmt: skip


def table(head: Sequence[str], body: Iterable[Sequence[Any]]) -> str:
    th = "".join(f"<th>{escape(str(h))}</th>" for h in head)
    cells = ("".join(f"<td>{escape(str(c))}</td>" for c in row) for row in body)
    return f"<table><tr>{th}</tr>{''.join(f'<tr>{tds}</tr>' for tds in cells)}</table>"


def ladder_text(o: Options) -> str:
    """`steps of 5, 8, 11, ... 1000 users (x1.5 from 5), each mode until its SLA breaks`."""
    return (
        f"steps of {', '.join(map(str, o.ladder))} users ({X}{o.growth:g} from "
        f"{o.start_users}, at most {o.max_users}), each mode climbing until its SLA breaks"
    )


def context(run: Run) -> list[list[str]]:
    o = run.options
    data = f"{run.items:,} items in {run.categories} categories, {run.orders or 0:,} orders"
    urls = ", ".join(f"{s} {u}" for s, u in o.urls.items())
    platform = "started by the test (`orderflow up`)" if run.started_platform else "already running"
    load = (
        f"{ladder_text(o)}, {o.step_seconds:.0f} s each, after a {o.warmup_seconds:.0f} s "
        f"warm-up; think time {o.think_ms:.0f} ms ± 50%; users 70% clients, 20% sellers, 10% "
        "operators"
    )
    rows = [["target", f"{urls} ({platform})"], ["data", data], ["load", load]]
    m = run.machine
    return [
        *rows,
        ["machine", m.line()],
        ["load average at start", ", ".join(f"{x:.2f}" for x in m.load_average)],
    ]


def _steps(run: Run, key: dict[str, Any]) -> list[list[Any]]:
    rows = []
    for s in run.steps:
        rps, failures = total_rps(run, s)
        holds = "yes" if key["holds"].get((s.mode, s.users)) else "no"
        queries, item = fmt(s.rates.queries_per_s["total"]), pct(s.rates.hit_ratio("item"))
        generator = fmt(s.generator_cores, 2) + (" saturated" if s.generator_saturated else "")
        others = fmt(s.others_cores, 2) if run.started_platform else NONE
        cpu = (fmt(s.platform_cores, 2), generator, others, fmt(s.rates.machine_busy_cores, 2))
        rows.append([s.mode, s.users, fmt(rps), failures, holds, queries, item, *cpu])
    return rows


def _probe(run: Run, probes: list[ProbeRow]) -> str:
    o = run.options
    if not probes:
        return "<p>not run (--probe-seconds 0, or interrupted)</p>"
    body = [
        [p.endpoint, p.mode, p.sent, fmt(p.rate), p.failures, fmt(p.p50), fmt(p.p95), fmt(p.p99),
         fmt(p.max_ms), fmt(p.lag_p99), fmt(p.limit_ms, 0), "yes" if p.holds else "no",
         p.statuses]
        for p in probes
    ]  # fmt: skip
    return (
        f"<p>{o.probe_rate:.0f} requests/s per endpoint for {o.probe_seconds:.0f} s, each sent "
        "at its scheduled time without waiting for earlier answers; latency in ms from the "
        "scheduled time (no coordinated omission), over every answer, errors included. Send lag: "
        "how late the sender itself was. Status 0: no answer (timeout, connection error, or "
        "dropped beyond 2,000 outstanding).</p>" + table(PROBE_HEAD, body)
    )


def _equal(e: EqualLoad | None) -> str:
    if e is None:
        return f"<li>PostgreSQL statements at equal load: {NONE}</li>"
    return (
        f"<li>PostgreSQL statements/s at equal load ({e.users} users): off {fmt(e.off_qps)}, "
        f"on {fmt(e.on_qps)}: {fmt(e.reduction)}% fewer; per request: off "
        f"{fmt(e.off_per_request, 2)}, on {fmt(e.on_per_request, 2)}: "
        f"{fmt(e.reduction_per_request)}% fewer</li>"
    )


def page(
    run: Run,
    key: dict[str, Any],
    rows: list[GroupAtStep],
    probes: list[ProbeRow],
    pngs: dict[str, Path],
) -> str:
    o, equal = run.options, key["equal_load"]
    p95_head = ["group", "mode", "SLA p95", *(f"p95 @{u}u" for u in step_users(run)),
                "capacity (users)", "probe p95 ms"]  # fmt: skip
    capacity_head = ["group", "SLA p95"]
    for mode in o.modes:
        capacity_head += [f"{mode} capacity", f"{mode}: what stopped it"]
    capacity_head.append("on/off")
    figures = "".join(
        f'<h3>{name}</h3><img alt="{name}" src="data:image/png;base64,'
        f'{base64.b64encode(png.read_bytes()).decode()}">'
        for name, png in pngs.items()
    )
    errors = sorted(run.recorder.errors.items(), key=lambda kv: -kv[1])[:30]
    error_rows = [[m, grp, e, n] for (m, grp, e), n in errors]
    interrupted = "<b class=warn>interrupted: partial figures</b>" if run.interrupted else ""
    finished = run.finished or run.started
    return "\n".join([
        f"<!doctype html><html><head><meta charset='utf-8'><style>{STYLE}</style>",
        f"<title>orderflow load test {run.started:%Y-%m-%d %H:%M} UTC</title></head><body>",
        "<h1>orderflow load test</h1>",
        f"<p>{run.started:%Y-%m-%d %H:%M:%S} to {finished:%H:%M:%S} UTC {interrupted}</p>",
        f"<p><code>{escape(o.command)}</code></p>",
        table(["", ""], context(run)),
        "<h2>Key figures</h2><ul>",
        "<li>SLA capacity (the highest step at which every group holds, and at every lower "
        f"step): {escape(capacity_text(run, key))}</li>",
        _equal(equal),
        f"<li>item hit ratio, cache on, all steps: {pct(key['item_hit_ratio'])} "
        + (
            "(every item read once before the steps, as the quiet-window job warms them)"
            if o.warm_items
            else "(a cold start: every item's first read in the run is a miss)"
        )
        + "</li></ul>",
        "<h2>SLA capacity per endpoint group</h2>",
        f"<p>p95 ≤ {o.sla.read_ms:.0f} ms for reads, ≤ {o.sla.place_ms:.0f} ms for order "
        f"placement, ≤ {o.sla.claim_ms:.0f} ms for claims, at most {o.sla.max_errors} errors per "
        "group and step; other writes are judged on errors only. A 409 on a claim, confirm, "
        "cancel or complete is an expected outcome (a lost race, a status that moved on), not an "
        "error. Each mode climbs the ladder until a step breaks the SLA in any group; a group's "
        "capacity is the highest step up to which it held. ≥: it never broke (the ladder stopped "
        "for another group, its ceiling or the load generator), so the figure is a floor; <: it "
        f"broke at the first step. A step whose load generator was busier than "
        f"{GENERATOR_SATURATED:.0%} of a core per process measured the generator, not the "
        "platform: it ends the ladder without counting as a break.</p>",
        table(capacity_head, group_rows(run, rows)),
        "<h2>p95 per step</h2>",
        f"<p>✗: the group misses the SLA at that step; *: fewer than {o.sla.min_samples} "
        "requests at that step, p95 not judged.</p>",
        table(p95_head, p95_rows(run, rows, probes)),
        "<h2>Steps</h2>",
        f"<p>CPU in cores (CPU seconds per second). Platform: {escape(run.platform_cpu)}. "
        "Load generator: the Locust process (one, gevent, FastHttpUser), on the same cores."
        "</p>",
        table(STEP_HEAD, _steps(run, key)),
        "<h2>Open-model probe</h2>",
        _probe(run, probes),
        f"<h2>Figures</h2>{figures}",
        "<h2>Errors</h2>",
        table(["mode", "group", "error", "count"], error_rows) if errors else "<p>none</p>",
        "<p>Raw data beside this file: per_second.csv, steps.csv, step_metrics.csv, probe.csv, "
        "probe_summary.csv, errors.csv.</p></body></html>",
    ])  # fmt: skip
