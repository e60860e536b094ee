"""`python -m perf.bench.claims` (`make bench-claims`): the run, start to finish."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import functools
import os
import shutil
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from perf.bench.claims.data import Held, held_orders, prepare
from perf.bench.claims.load import Load, run_load
from perf.bench.claims.params import Params, parse_args
from perf.bench.claims.report import HEADING, print_summary, section
from perf.bench.claims.results import (
    ClaimsResult,
    CpuCores,
    checks,
    failed_attempts,
    figures,
    latencies,
)
from perf.common import (
    Child,
    CpuMeter,
    Databases,
    Machine,
    api_processes,
    databases,
    describe_machine,
    log,
    process_cpu_s,
    server_versions,
    tree_cpu_s,
    unwind_on_sigterm,
    write_json,
    write_section,
)


def cpu_meter(found: Databases, mes: list[Child]) -> CpuMeter:
    """The MES processes, this process (operators and boards), and our embedded servers."""
    groups: dict[str, Callable[[], float]] = {
        "MES processes": lambda: sum(tree_cpu_s(m.pid) for m in mes),
        "benchmark client": functools.partial(process_cpu_s, os.getpid()),
    }
    for name, pid in found.pids().items():  # PostgreSQL: the postmaster and its backends
        groups[name] = functools.partial(tree_cpu_s, pid)
    return CpuMeter(groups)


@dataclasses.dataclass(frozen=True)
class Measured:
    machine: Machine
    postgresql_embedded: bool
    redis_embedded: bool
    load: Load
    held: list[Held]  # what PostgreSQL holds afterwards


def measure(params: Params, workdir: Path) -> Measured:
    """Servers, data, K MES processes, then the claims."""
    machine = describe_machine()  # before we add our own load
    with databases(workdir, configured=True) as found:
        settings = found.settings
        postgresql, redis = server_versions(settings)
        machine = dataclasses.replace(machine, postgresql=postgresql, redis=redis)
        dataset = asyncio.run(prepare(settings, params.operators, params.orders))
        log(f"{params.orders} queued orders from id {dataset.order_ids[0]}")
        log(f"starting {params.processes} MES processes")
        with api_processes(settings, "mes", params.processes) as mes:
            meter = cpu_meter(found, [child for _, child in mes])
            load = asyncio.run(run_load(params, [url for url, _ in mes], dataset, meter))
        held = asyncio.run(held_orders(settings.mes_dsn, dataset.order_ids))
    embedded = (found.postgres is not None, found.redis is not None)
    return Measured(machine, *embedded, load, held)


def run(params: Params, workdir: Path) -> ClaimsResult:
    started_at = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    m = measure(params, workdir)
    assert m.load.cpu is not None, "the claims ran"
    return ClaimsResult(
        benchmark="perf/bench/claims",
        started_at=started_at,
        command=params.command(),
        parameters=params,
        machine=m.machine,
        postgresql_embedded=m.postgresql_embedded,
        redis_embedded=m.redis_embedded,
        figures=figures(m.load),
        checks=checks(m.load, m.held),
        latency_ms=latencies(m.load),
        cpu_cores=CpuCores.of(m.load.cpu),
        errors=failed_attempts(m.load),
    )


def main(argv: list[str] | None = None) -> int:
    params, outputs = parse_args(argv)
    unwind_on_sigterm()
    workdir = Path(tempfile.mkdtemp(prefix="orderflow-bench-claims-"))
    try:
        result = run(params, workdir)
    except KeyboardInterrupt:
        log("interrupted: every child stopped")
        return 130
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print_summary(result)
    write_section(outputs.markdown, HEADING, section(result), result.machine)
    write_json(outputs.json, result)
    log(f"wrote {outputs.markdown} ({HEADING[3:]}) and {outputs.json}")
    return 1 if result.checks.failed() else 0  # a run cut short by --seconds is not failed


if __name__ == "__main__":
    sys.exit(main())
