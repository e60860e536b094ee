"""The report: CSV files, PNG figures, a self-contained report.html, a terminal summary, and
the load-test section of docs/performance.md."""

from __future__ import annotations

import csv
import shutil
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from rich import box
from rich.console import Console
from rich.table import Table

from perf.loadtest import page, plots
from perf.loadtest.docs import write_section
from perf.loadtest.results import (
    GroupAtStep,
    ProbeRow,
    Run,
    Step,
    as_dict,
    groups_at_steps,
    probe_rows,
    total_rps,
)
from perf.loadtest.samples import per_second
from perf.loadtest.verdicts import capacity_text, group_rows, headline, pct


def _csv(path: Path, rows: Iterable[dict[str, Any]], fields: Sequence[str] = ()) -> None:
    rows = list(rows)
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]) if rows else list(fields))
        writer.writeheader()
        writer.writerows(rows)


def write(run: Run, out: Path) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    rows = groups_at_steps(run)
    probes = probe_rows(run)
    seconds = per_second(run.recorder.samples)
    key = headline(run, rows)
    _write_csvs(run, out, rows, probes, seconds)
    figures = {
        "latency": plots.latency(run, seconds),
        "latency-groups": plots.latency_by_group(run, rows),
        "throughput": plots.throughput(run, seconds),
        "hit-ratio": plots.hit_ratio(run),
        "queries": plots.queries(run),
    }
    if probes:
        figures["probe"] = plots.probe(run, probes)
    pngs = {name: plots.save(fig, out / f"loadtest-{name}.png") for name, fig in figures.items()}
    (out / "report.html").write_text(page.page(run, key, rows, probes, pngs))
    docs = run.options.docs
    if docs is not None and not run.interrupted:
        bench = docs.parent / "bench"
        bench.mkdir(parents=True, exist_ok=True)
        copied = {name: shutil.copy(png, bench / png.name) for name, png in pngs.items()}
        write_section(docs, run, key, rows, probes, {n: Path(p) for n, p in copied.items()})
    _terminal(run, key, rows, probes, out / "report.html")
    return out


def _write_csvs(
    run: Run,
    out: Path,
    rows: list[GroupAtStep],
    probes: list[ProbeRow],
    seconds: dict[tuple[str, int, str], Any],
) -> None:
    _csv(
        out / "per_second.csv",
        (
            {"mode": m, "second": t, "group": grp, **as_dict(s)}
            for (m, t, grp), s in seconds.items()
        ),
    )
    _csv(
        out / "steps.csv",
        (
            {
                "mode": r.mode,
                "users": r.users,
                "group": r.group,
                "rps": round(r.rps, 2),
                **as_dict(r.summary),
                "p95_limit_ms": r.limit_ms,
                "holds": r.holds,
            }
            for r in rows
        ),
    )
    _csv(out / "step_metrics.csv", (_step_metrics(run, step) for step in run.steps))
    _csv(out / "probe.csv", (as_dict(p) for p in run.probes))
    _csv(out / "probe_summary.csv", (as_dict(p) for p in probes))
    _csv(
        out / "errors.csv",
        (
            {"mode": m, "group": grp, "error": e, "count": n}
            for (m, grp, e), n in sorted(run.recorder.errors.items())
        ),
        ("mode", "group", "error", "count"),
    )


def _step_metrics(run: Run, step: Step) -> dict[str, Any]:
    rps, failures = total_rps(run, step)
    row: dict[str, Any] = {
        "mode": step.mode,
        "users": step.users,
        "seconds": round(step.rates.seconds, 2),
        "rps": round(rps, 2),
        "failures": failures,
    }
    row |= {f"db_{db}_qps": round(v, 2) for db, v in sorted(step.rates.queries_per_s.items())}
    for entity in plots.ENTITIES:
        ratio = step.rates.hit_ratio(entity)
        row[f"hit_ratio_{entity}"] = None if ratio is None else round(ratio, 4)
    row["machine_busy_cores"] = round(step.rates.machine_busy_cores, 2)
    row["platform_cores"] = round(step.platform_cores, 2)
    row["generator_cores"] = round(step.generator_cores, 2)
    row["generator_processes"] = step.generator_processes
    row["generator_saturated"] = step.generator_saturated
    row["others_cores"] = round(step.others_cores, 2) if run.started_platform else None
    row |= {f"cores_{group}": cores for group, cores in step.process_cores.items()}
    if (throttled := step.pg_throttling) is not None:
        row["pg_periods_throttled"] = throttled.throttled
        row["pg_periods"] = throttled.periods
        row["pg_throttled_s"] = round(throttled.throttled_s, 2)
    return row


def _terminal(
    run: Run, key: dict[str, Any], rows: list[GroupAtStep], probes: list[ProbeRow], path: Path
) -> None:
    """One line per endpoint group: each mode's capacity and what stopped it, and on/off."""
    console = Console(soft_wrap=True)
    if not console.is_terminal:
        console = Console(soft_wrap=True, width=200)
    table = Table(title="SLA capacity per endpoint group (users)", box=box.SIMPLE)
    table.add_column("group")
    table.add_column("SLA p95")
    for mode in run.options.modes:
        table.add_column(f"{mode} capacity", justify="right")
        table.add_column(f"{mode}: what stopped it", overflow="fold", max_width=48)
    table.add_column("on/off", justify="right")
    for cells in group_rows(run, rows):
        table.add_row(*cells)
    console.print(table)
    if run.interrupted:
        console.print("[yellow]interrupted: partial figures; docs/performance.md left as it was")
    console.print(f"capacity: {capacity_text(run, key)}")
    if equal := key["equal_load"]:
        console.print(
            f"PostgreSQL at {equal.users} users: off {equal.off_qps:.0f} q/s, on "
            f"{equal.on_qps:.0f} q/s ({equal.reduction:.0f}% fewer; per request "
            f"{equal.off_per_request:.2f} vs {equal.on_per_request:.2f}, "
            f"{equal.reduction_per_request:.0f}% fewer)"
        )
    console.print(f"item hit ratio (cache on): {pct(key['item_hit_ratio'])}")
    console.print(f"report: {path}")
