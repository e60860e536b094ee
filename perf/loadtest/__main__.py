"""`python -m perf.loadtest` (`make loadtest`): the load test's command line.

Each mode (cache off, then on) climbs a ladder of users, `--start-users` times `--growth` a
step, `--step-seconds` a step, until a step breaks the SLA (any endpoint group's p95 over its
target, or more errors than `--sla-errors`), saturates the load generator, or reaches
`--max-users`; its capacity is the highest step that held. The full run, on 1,000,000 orders
(what `make loadtest` runs, with the ladder's defaults spelled out):

    uv run --frozen python -m perf.loadtest --data-dir .orderflow-1m --orders 1000000 \
        --start-users 5 --growth 1.5 --max-users 1000 --step-seconds 30

It seeds `.orderflow-1m` on first use (~2 min) and takes about 25-45 minutes. A smoke run on a
small data set, on ports of its own (`ORDERFLOW_SHOP_PORT` etc.) and without docs/performance.md:

    uv run --frozen python -m perf.loadtest --data-dir /tmp/lt --orders 20000 \
        --start-users 5 --growth 2 --max-users 80 --step-seconds 10 --warmup-seconds 5 \
        --probe-seconds 3 --docs-file /tmp/lt/performance.md
"""

import sys
from pathlib import Path
from typing import Annotated

import typer

from orderflow import platform
from orderflow.kit.settings import get_settings

app = typer.Typer(add_completion=False)


@app.command()
def loadtest(
    start: Annotated[
        bool | None,
        typer.Option(
            "--start/--no-start",
            help="start `orderflow up` for the test and stop it after (default: only when "
            "nothing answers /health at the configured URLs)",
        ),
    ] = None,
    data_dir: Annotated[
        Path | None, typer.Option(help="data dir of a platform we start; default .orderflow")
    ] = None,
    pg_cpus: Annotated[
        float | None,
        typer.Option(
            min=0.05,
            help="hold the PostgreSQL of a platform we start to this many cores (a cgroup, "
            "10 ms CFS periods; throttled periods reported per step), as a shared database "
            "server is: where the database is the scarce resource",
        ),
    ] = None,
    orders: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="ORDERFLOW_SEED_ORDERS of a platform we start in a fresh --data-dir; for "
            "1,000,000 orders `orderflow seed --orders 1000000` into an empty data dir first",
        ),
    ] = None,
    start_users: Annotated[
        int, typer.Option(min=1, help="users at the first step (and during the warm-up)")
    ] = 5,
    growth: Annotated[
        float, typer.Option(min=1.05, help="users at each step: the previous step's times this")
    ] = 1.5,
    max_users: Annotated[
        int,
        typer.Option(
            min=1,
            help="the ladder's ceiling: a mode still holding its SLA here is reported as "
            "'≥ N (ladder ceiling reached)', not as a capacity",
        ),
    ] = 1000,
    step_seconds: Annotated[float, typer.Option(min=1, help="measured seconds of a step")] = 30.0,
    warmup_seconds: Annotated[float, typer.Option(min=0)] = 30.0,
    think_ms: Annotated[float, typer.Option(min=0, help="mean pause between tasks")] = 300.0,
    probe_rate: Annotated[float, typer.Option(min=1, help="open-model requests/s")] = 200.0,
    probe_seconds: Annotated[float, typer.Option(min=0, help="per endpoint; 0: no probe")] = 20.0,
    warm_items: Annotated[
        bool,
        typer.Option(
            "--warm-items/--cold-items",
            help="cache on: read every item once before the steps, as the quiet-window job "
            "warms them in production (--cold-items: measure from a cold cache)",
        ),
    ] = True,
    sla_read_ms: Annotated[float, typer.Option(help="p95 target of reads")] = 50.0,
    sla_order_ms: Annotated[float, typer.Option(help="p95 target of order placement")] = 150.0,
    sla_claim_ms: Annotated[float, typer.Option(help="p95 target of claims")] = 100.0,
    sla_errors: Annotated[int, typer.Option(min=0, help="errors allowed per group")] = 0,
    sla_min_samples: Annotated[
        int, typer.Option(min=1, help="fewer requests of a group at a step: p95 not judged")
    ] = 20,
    reports: Annotated[Path, typer.Option(help="reports/loadtest-<timestamp>/ go here")] = Path(
        "reports"
    ),
    docs: Annotated[
        bool, typer.Option("--docs/--no-docs", help="write our section of docs/performance.md")
    ] = True,
    docs_file: Annotated[
        Path,
        typer.Option(
            help="the file of that section; its figures go to bench/ beside it (a smoke run "
            "points this elsewhere, to leave the long run's figures in place)"
        ),
    ] = Path("docs/performance.md"),
) -> None:
    """Locust users of the three roles against a running platform (started when none runs):
    cache off then on, each climbing a ladder of users until its SLA breaks, then an
    open-model probe; SLA capacity per mode and endpoint group, and an HTML report."""
    # Imported here, not at the top: Locust monkey-patches the standard library on import.
    from perf.loadtest.config import Options, Sla
    from perf.loadtest.runner import run

    settings = get_settings()
    if pg_cpus is not None and start is False:
        raise typer.BadParameter("needs a platform the test starts", param_hint="--pg-cpus")
    if max_users < start_users:
        raise typer.BadParameter("at least --start-users", param_hint="--max-users")
    options = Options(
        urls={s: f"http://{settings.host}:{settings.port_of(s)}" for s in platform.SERVICES},
        start=start,
        data_dir=data_dir or settings.data_dir,
        orders=orders,
        pg_cpus=pg_cpus,
        start_users=start_users,
        growth=growth,
        max_users=max_users,
        step_seconds=step_seconds,
        warmup_seconds=warmup_seconds,
        think_ms=think_ms,
        probe_rate=probe_rate,
        probe_seconds=probe_seconds,
        warm_items=warm_items,
        sla=Sla(sla_read_ms, sla_order_ms, sla_claim_ms, sla_errors, sla_min_samples),
        reports_dir=reports,
        docs=docs_file if docs else None,
        command=" ".join(["python -m perf.loadtest", *sys.argv[1:]]),
    )
    if run(options) is None:
        raise typer.Exit(1)


if __name__ == "__main__":
    app(prog_name="python -m perf.loadtest")
