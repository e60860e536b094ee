"""One load test: the platform, cache off then on, the step load, the probe, the report."""

from __future__ import annotations

import functools
import os
import signal
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import gevent
import httpx
from locust.env import Environment
from locust.runners import LocalRunner

from perf.common import cores_by_group, platform_times, process_cpu_s, tree_cpu_s
from perf.loadtest import report, target, users
from perf.loadtest.config import Mode, Options
from perf.loadtest.pg_budget import PgBudget
from perf.loadtest.probe import ENDPOINTS, probe
from perf.loadtest.results import (
    GroupAtStep,
    ModeEnd,
    Run,
    Step,
    groups_at_step,
    probe_rows,
    total_rps,
)
from perf.loadtest.samples import by_group
from perf.loadtest.scrape import rates, snapshot
from perf.loadtest.target import Platform, console

RAMP_TIMEOUT_S = 30.0
SETTLE_S = 2.0  # the least pause between phases
SETTLE_MAX_S = 300.0  # the most: a platform still busy after this is measured as it is
SETTLE_FAST_S = 0.2  # drained: every service's /health answers within this, three times running


class Stop:
    """Set by SIGINT/SIGTERM; every loop of the run checks it at least every 0.25 s."""

    def __init__(self) -> None:
        self.raised = False

    def set(self) -> None:
        if not self.raised:
            console.print(
                "\n[yellow]stopping: finishing the step, restoring the cache, cleaning up"
            )
        self.raised = True

    def __call__(self) -> bool:
        return self.raised


def sleep(seconds: float, stop: Stop) -> None:
    end = time.monotonic() + seconds
    while not stop() and (left := end - time.monotonic()) > 0:
        gevent.sleep(min(left, 0.25))


def run(opts: Options) -> Path | None:
    """Run the whole test; the report's directory, or None when nothing was measured."""
    stop = Stop()
    handlers = [gevent.signal_handler(s, stop.set) for s in (signal.SIGINT, signal.SIGTERM)]
    target.require_loopback(opts.urls)
    started = datetime.now(UTC)
    out = opts.reports_dir / f"loadtest-{started:%Y%m%d-%H%M%S}"
    result = Run(opts, started)
    platform: Platform | None = None
    runner: LocalRunner | None = None
    budget: PgBudget | None = None
    try:
        platform = _ensure_platform(opts, out, stop)
        result.started_platform = platform is not None
        platform_cpu: Callable[[], float] | None = None
        if platform is not None and platform.child is not None:
            platform_cpu = functools.partial(tree_cpu_s, platform.child.pid)
            result.platform_pid = platform.child.pid
            result.platform_cpu = "`orderflow up` and every process under it"
            if opts.pg_cpus is not None:
                budget = PgBudget(opts.pg_cpus, platform.child.pid)
                console.print(
                    f"PostgreSQL held to {opts.pg_cpus:g} cores ({budget.held} processes, "
                    f"cgroup {budget.path})"
                )
        elif opts.pg_cpus is not None:
            raise SystemExit("--pg-cpus needs a platform the test starts (--start)")
        categories, result.items = target.catalogue(opts.urls)
        result.categories, result.orders = len(categories), target.order_count(opts.urls)
        console.print(
            f"target: {result.items:,} items in {len(categories)} categories, "
            f"{result.orders or 0:,} orders"
        )
        users.configure(opts.urls, categories, result.items, opts.think_ms)
        env = Environment(user_classes=[users.ClientUser, users.SellerUser, users.OperatorUser])
        env.events.request.add_listener(result.recorder.on_request)  # type: ignore[no-untyped-call]
        runner = env.create_local_runner()
        for mode in opts.modes:
            if stop():
                break
            _settle(opts.urls, stop)  # what the last phase queued must not run into this one
            applied = target.set_cache(opts.urls, mode)
            acks = ", ".join(f"{s} by {a.get('applied_by')}" for s, a in applied.items())
            console.print(f"[bold]cache {mode}[/bold] (applied: {acks})")
            if mode == "on" and opts.warm_items and result.items:
                took = target.warm_items(opts.urls, result.items, stop)
                console.print(f"  warmed {result.items:,} items in {took:.1f}s")
            _steps(runner, result, mode, stop, platform_cpu, budget)
            if opts.probe_seconds > 0 and not stop():
                _probe(result, mode, stop)
    finally:
        if runner is not None:
            runner.quit()
        result.interrupted = stop()
        _restore_cache(opts)
        if platform is not None:
            platform.stop()
        if budget is not None:
            budget.release()
        for handler in handlers:
            handler.cancel()
    result.finished = datetime.now(UTC)
    if not result.steps:
        console.print("[yellow]no step completed: no report")
        return None
    return report.write(result, out)


def _ensure_platform(opts: Options, out: Path, stop: Stop) -> Platform | None:
    answers = target.health(opts.urls)
    running = all(answers.values())
    if any(answers.values()) and not running:
        raise SystemExit(f"only part of the platform answers /health: {answers}")
    if running and opts.start:
        raise SystemExit("a platform already answers at the configured URLs; drop --start")
    if running:
        console.print("platform already running: testing it (--start would start one)")
        return None
    if opts.start is False:
        raise SystemExit(f"no platform answers /health at {opts.urls} (and --no-start)")
    platform = Platform(opts.data_dir, opts.orders, out / "platform.log")
    platform.start()
    try:
        platform.wait_healthy(opts.urls, opts.start_timeout_s, stop)
    except BaseException:
        platform.stop()
        raise
    return platform


def _settle(urls: dict[str, str], stop: Stop) -> None:
    """Wait until the platform has worked off what the last phase queued (an overloaded
    cache-off platform can take minutes): /health reads the database through the same pool
    as the requests, so it answers fast only once that queue is gone."""
    started, fast = time.monotonic(), 0
    sleep(SETTLE_S, stop)
    while fast < 3 and not stop() and time.monotonic() - started < SETTLE_MAX_S:
        t = time.monotonic()
        healthy = all(target.health(urls).values())
        fast = fast + 1 if healthy and time.monotonic() - t < SETTLE_FAST_S * len(urls) else 0
        if fast < 3:
            sleep(0.5, stop)
    waited = time.monotonic() - started
    if fast < 3 and not stop():
        console.print(f"  [yellow]the platform is still busy after {waited:.0f}s: going on")
    elif waited > SETTLE_S + 5:
        console.print(f"  waited {waited:.0f}s for the platform to drain")


def _ramp(runner: LocalRunner, count: int, stop: Stop) -> None:
    runner.start(count, spawn_rate=min(100.0, max(10.0, float(count))))
    deadline = time.monotonic() + RAMP_TIMEOUT_S
    while runner.user_count < count and time.monotonic() < deadline and not stop():
        gevent.sleep(0.1)
    if runner.user_count < count and not stop():
        console.print(
            f"  [yellow]only {runner.user_count} of {count} users after {RAMP_TIMEOUT_S:.0f}s "
            "(is the load generator saturated?)"
        )


def _steps(
    runner: LocalRunner,
    result: Run,
    mode: Mode,
    stop: Stop,
    platform_cpu: Callable[[], float] | None,
    budget: PgBudget | None = None,
) -> None:
    """Climb the ladder until a step breaks the SLA (or saturates the load generator, or
    reaches the ceiling); every step stays in the results, the breaking one too."""
    opts, rec, me = result.options, result.recorder, os.getpid()
    ladder = opts.ladder
    rec.begin(mode)
    console.print(
        f"  warm-up: {ladder[0]} users for {opts.warmup_seconds:.0f}s; then up to "
        f"{ladder[-1]} users ({', '.join(map(str, ladder))}), {opts.step_seconds:.0f}s each, "
        "until the SLA breaks"
    )
    _ramp(runner, ladder[0], stop)
    sleep(opts.warmup_seconds, stop)
    end = ModeEnd("interrupted", None)
    for count in ladder:
        if stop():
            break
        _ramp(runner, count, stop)
        before, start = snapshot(opts.urls), rec.now()
        t0, gen0 = time.monotonic(), process_cpu_s(me)
        plat0 = platform_cpu() if platform_cpu else 0.0
        procs0 = platform_times(result.platform_pid) if result.platform_pid else {}
        throttled0 = budget.stat() if budget else None
        sleep(opts.step_seconds, stop)
        wall, gen1 = time.monotonic() - t0, process_cpu_s(me)
        plat1 = platform_cpu() if platform_cpu else 0.0
        procs1 = platform_times(result.platform_pid) if result.platform_pid else {}
        throttled = budget.stat().since(throttled0) if budget and throttled0 else None
        after, end_s = snapshot(opts.urls), rec.now()
        if stop():
            break  # a cut-short step would skew the figures
        r = rates(before, after)
        generator = (gen1 - gen0) / wall
        platform = (plat1 - plat0) / wall if platform_cpu else r.machine_busy_cores - generator
        by_group = cores_by_group(procs0, procs1, wall) if procs0 else {}
        step = Step(
            mode, count, start, end_s, r, generator, max(0.0, platform), process_cores=by_group,
            pg_throttling=throttled,
        )  # fmt: skip
        result.steps.append(step)
        broken = [row for row in groups_at_step(result, step) if not row.holds]
        _print_step(result, step, after.missing, broken)
        end = ModeEnd("interrupted", count)
        if step.generator_saturated:
            end = ModeEnd("generator", count, f"{generator:.0%} of a core")
            break
        if broken:
            detail = "; ".join(f"{row.group} {row.why()}" for row in broken)
            end = ModeEnd("sla", count, detail, len(broken))
            break
        if count == ladder[-1]:
            end = ModeEnd("ceiling", count)
    runner.stop()
    result.ends[mode] = end
    console.print(f"  [bold]cache {mode}[/bold]: {end.text()}")


def by_process(step: Step) -> str:
    """`shop 0.35, crm 0.12, ...`: the step's cores by part of the platform."""
    return ", ".join(f"{group} {cores:.2f}" for group, cores in step.process_cores.items())


def _print_step(result: Run, step: Step, missing: list[str], broken: list[GroupAtStep]) -> None:
    rps, failures = total_rps(result, step)
    window = result.recorder.window(step.mode, step.start_s, step.end_s)
    worst = max(by_group(window).items(), key=lambda kv: kv[1].p95, default=None)
    slowest = f"{worst[0]} {worst[1].p95:.0f} ms" if worst else "-"
    item = step.rates.hit_ratio("item")
    hit = f"{item:.0%}" if item is not None else "-"
    saturated = " [red](saturated)[/red]" if step.generator_saturated else ""
    console.print(
        f"  {step.mode:>3} {step.users:>4} users: {rps:7.1f} req/s, {failures} errors, "
        f"slowest p95 {slowest}; PostgreSQL {step.rates.queries_per_s['total']:.0f} q/s; "
        f"item hits {hit}; CPU cores: platform {step.platform_cores:.2f}, load generator "
        f"{step.generator_cores:.2f}{saturated}, others {step.others_cores:.2f}, machine "
        f"{step.rates.machine_busy_cores:.2f}; "
        + (f"by process: {by_process(step)}; " if step.process_cores else "")
        + (f"PostgreSQL budget: {t.text()}; " if (t := step.pg_throttling) else "")
        + ("SLA holds" if not broken else f"[red]SLA broken by {len(broken)} groups[/red]")
        + (f" [yellow](no /metrics from {', '.join(missing)})" if missing else "")
    )


def _probe(result: Run, mode: Mode, stop: Stop) -> None:
    opts = result.options
    console.print(
        f"  probe: {opts.probe_rate:.0f} req/s per endpoint, {opts.probe_seconds:.0f}s each"
    )
    email = f"loadtest.probe.{time.time_ns()}@example.com"
    resp = httpx.post(
        f"{opts.urls['shop']}/clients", json={"name": "Probe", "email": email}, timeout=10.0
    ).raise_for_status()
    client_id = int(resp.json()["id"])
    for endpoint in ENDPOINTS:
        _settle(opts.urls, stop)  # the backlog of the step or of the previous endpoint drains
        if stop():
            break
        samples = probe(
            mode,
            endpoint,
            opts.urls[endpoint.service],
            opts.probe_rate,
            opts.probe_seconds,
            client_id,
            stop,
        )
        if stop():
            break
        result.probes.extend(samples)
        row = next(r for r in probe_rows(result) if (r.mode, r.endpoint) == (mode, endpoint.group))
        console.print(
            f"    {endpoint.group:<32} sent {row.rate:6.1f}/s  p50 {row.p50:7.1f}  "
            f"p95 {row.p95:7.1f}  p99 {row.p99:7.1f} ms  errors {row.failures}"
        )


def _restore_cache(opts: Options) -> None:
    """Leave the platform as it is normally run: cache on."""
    try:
        target.set_cache(opts.urls, "on")
    except httpx.HTTPError as exc:
        if any(target.health(opts.urls).values()):
            console.print(f"[red]could not turn the cache back on: {exc}")
