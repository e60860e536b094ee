"""What a run measured, and the verdicts taken from it."""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from perf.common import Machine, describe_machine, percentile
from perf.loadtest.config import GENERATOR_SATURATED, Options
from perf.loadtest.pg_budget import Throttling
from perf.loadtest.probe import ProbeSample
from perf.loadtest.samples import Recorder, Summary, by_group
from perf.loadtest.scrape import Rates


@dataclass(frozen=True)
class Step:
    mode: str
    users: int
    start_s: float  # window of the step, in the recorder's clock of its mode
    end_s: float
    rates: Rates
    generator_cores: float  # the load generator's CPU seconds per second, its processes summed
    platform_cores: float  # the platform's (see Run.platform_cpu for what that covers)
    generator_processes: int = 1
    # Cores by part of the platform (perf.common.PLATFORM_GROUPS); empty when the test did
    # not start the platform (its processes are then not ours to find).
    process_cores: dict[str, float] = field(default_factory=dict)
    pg_throttling: Throttling | None = None  # with --pg-cpus: its budget's CFS throttling

    @property
    def others_cores(self) -> float:
        """The machine's busy cores less the platform's and the generator's: other work on a
        shared machine (0 when the platform's CPU is itself the machine's less the generator's,
        as against a platform the test did not start)."""
        return max(0.0, self.rates.machine_busy_cores - self.platform_cores - self.generator_cores)

    @property
    def generator_saturated(self) -> bool:
        """Busier than GENERATOR_SATURATED per process: the step measured the generator."""
        return self.generator_cores / self.generator_processes > GENERATOR_SATURATED


StopReason = Literal["sla", "generator", "ceiling", "interrupted"]


@dataclass(frozen=True)
class ModeEnd:
    """Why a mode's ladder stopped, at which step (users), and what broke there."""

    reason: StopReason
    users: int | None  # the step it stopped at; None: interrupted before any step
    detail: str = ""  # sla: the groups that broke and how; generator: its CPU
    broken: int = 0  # sla: how many groups broke

    def text(self, short: bool = False) -> str:
        """Why the ladder stopped; `short`: without naming the groups that broke."""
        at = f"{self.users} users" if self.users is not None else "the first step"
        groups = f"{self.broken} group{'s' * (self.broken != 1)}"
        return {
            "sla": f"SLA broken at {at} ({groups})"
            if short
            else f"SLA broken at {at}: " + self.detail,
            "generator": f"load generator saturated at {at} ({self.detail}): not a platform "
            "measurement",
            "ceiling": f"ladder ceiling reached ({at}) without a break",
            "interrupted": f"interrupted (after {at})" if self.users else "interrupted",
        }[self.reason]


@dataclass
class Run:
    options: Options
    started: datetime
    recorder: Recorder = field(default_factory=Recorder)
    steps: list[Step] = field(default_factory=list)
    ends: dict[str, ModeEnd] = field(default_factory=dict)  # mode -> why its ladder stopped
    platform_cpu: str = "the machine's busy cores less the load generator's"
    probes: list[ProbeSample] = field(default_factory=list)
    categories: int = 0
    items: int = 0
    orders: int | None = None
    started_platform: bool = False
    platform_pid: int | None = None  # `orderflow up`, when the test started it
    interrupted: bool = False
    finished: datetime | None = None
    machine: Machine = field(default_factory=describe_machine)


@dataclass(frozen=True)
class GroupAtStep:
    mode: str
    users: int
    group: str
    summary: Summary
    rps: float
    limit_ms: float | None  # the p95 target; None: judged on errors only
    judged: bool  # enough requests for a p95: else judged on errors only
    slow: bool  # judged, and its p95 over the target
    erred: bool  # more errors than the SLA allows

    @property
    def holds(self) -> bool:
        return not (self.slow or self.erred)

    def why(self) -> str:
        """What broke: `p95 73 ms > 50`, `3 errors`, or both."""
        p95 = self.summary.p95
        shown = f"{p95:,.1f}" if p95 < 100 else f"{p95:,.0f}"  # 50.4 > 50, not 50 > 50
        parts = [f"p95 {shown} ms > {self.limit_ms:.0f}"] if self.slow else []
        parts += [f"{self.summary.failures} errors"] if self.erred else []
        return ", ".join(parts)


def groups_at_step(run: Run, step: Step) -> list[GroupAtStep]:
    rows, sla = [], run.options.sla
    seconds = max(step.end_s - step.start_s, 1e-9)
    window = run.recorder.window(step.mode, step.start_s, step.end_s)
    for group, s in by_group(window).items():
        limit = sla.p95_limit(group)
        judged = s.requests >= sla.min_samples
        slow = limit is not None and judged and s.p95 > limit
        erred = s.failures > sla.max_errors
        rps = s.requests / seconds
        rows.append(GroupAtStep(step.mode, step.users, group, s, rps, limit, judged, slow, erred))
    return rows


def groups_at_steps(run: Run) -> list[GroupAtStep]:
    return [row for step in run.steps for row in groups_at_step(run, step)]


def step_holds(rows: list[GroupAtStep]) -> dict[tuple[str, int], bool]:
    holds: dict[tuple[str, int], bool] = {}
    for r in rows:
        holds[(r.mode, r.users)] = holds.get((r.mode, r.users), True) and r.holds
    return holds


Bound = Literal["measured", "at least", "below", "unknown"]
SIGN = {"measured": "", "at least": "≥ ", "below": "< ", "unknown": ""}


@dataclass(frozen=True)
class Capacity:
    """The SLA capacity of a mode (or of one group in it): the highest step that held.

    - measured: held at `users` and broke at the next step, a platform measurement;
    - at least: held at `users`, and the ladder stopped for another reason (its ceiling, the
      load generator's limit, an interruption, or, for a group, another group's break);
    - below: broke at its first step, `users` (so the capacity is under it);
    - unknown: not run, or no step counts.
    """

    bound: Bound
    users: int | None
    rps: float | None  # throughput at that step (the group's own, for a group); None: below
    reason: str  # why the ladder stopped, or what broke the group
    capped_by: str = ""  # at least: what stopped the ladder short of this one's break

    def value(self) -> str:
        """`11`, `≥ 40`, `< 5`, or a dash."""
        if self.bound == "unknown" or self.users is None:
            return "\N{EN DASH}"
        return f"{SIGN[self.bound]}{self.users}"

    def text(self) -> str:
        """The value, and for a bound what capped it: `≥ 40 (ladder ceiling reached)`."""
        note = {"at least": f" ({self.capped_by})", "below": " (first step broke)"}
        return self.value() + ("" if self.users is None else note.get(self.bound, ""))


CAPPED_BY = {
    "sla": "another group broke",
    "generator": "load generator limit",
    "ceiling": "ladder ceiling reached",
    "interrupted": "interrupted",
}


def _mode_steps(run: Run, mode: str) -> list[Step]:
    return [s for s in run.steps if s.mode == mode]


def mode_capacity(run: Run, mode: str, holds: dict[tuple[str, int], bool]) -> Capacity:
    """The highest step at which every group held (each mode stops at its first break)."""
    steps, end = _mode_steps(run, mode), run.ends.get(mode)
    if end is None or not steps:
        return Capacity("unknown", None, None, "not run" if end is None else end.text())
    last = steps[-1]
    if end.reason == "sla":
        held = [s for s in steps[:-1] if holds.get((mode, s.users), True)]
        if not held:
            return Capacity("below", last.users, None, end.text())
        return Capacity("measured", held[-1].users, total_rps(run, held[-1])[0], end.text())
    # the generator's limit, the ceiling, an interruption: the steps that held are a floor
    held = [s for s in steps if holds.get((mode, s.users), True)]
    if not held:
        return Capacity("unknown", None, None, end.text())
    rps = total_rps(run, held[-1])[0]
    return Capacity("at least", held[-1].users, rps, end.text(), CAPPED_BY[end.reason])


def group_capacity(run: Run, mode: str, group: str, rows: list[GroupAtStep]) -> Capacity:
    """The highest step up to which `group` held at every step that had its requests."""
    end = run.ends.get(mode)
    if end is None:
        return Capacity("unknown", None, None, "not run")
    by = {r.users: r for r in rows if r.mode == mode and r.group == group}
    best: GroupAtStep | None = None
    for step in _mode_steps(run, mode):
        r = by.get(step.users)
        if r is None:
            continue  # a step without its requests proves nothing
        if not r.holds:
            why = f"{r.why()} at {step.users} users"
            if step.generator_saturated:  # its break is the generator's, not the platform's
                reason, capped = f"{why}, load generator saturated", CAPPED_BY["generator"]
                bound: Bound = "at least" if best else "unknown"
                return Capacity(bound, best.users if best else None, _rps(best), reason, capped)
            if best is None:
                return Capacity("below", step.users, None, why)
            return Capacity("measured", best.users, best.rps, why)
        best = r
    if best is None:
        return Capacity("unknown", None, None, "no requests")
    stopped = f" at {end.users} users" if end.users is not None else ""
    reason = f"held at every step; the ladder stopped{stopped}"
    return Capacity("at least", best.users, best.rps, reason, CAPPED_BY[end.reason])


def _rps(row: GroupAtStep | None) -> float | None:
    return row.rps if row else None


def ratio(on: Capacity, off: Capacity, what: str = "users") -> str:
    """on/off, as far as the bounds allow: `2.5x`, `≥ 2.5x` (on was capped), `≤ 2.5x` (off
    was), `> 2.5x` (off broke at its first step); a dash when the bounds say nothing."""
    a, b = getattr(on, what), getattr(off, what)
    if not a or not b or "unknown" in (on.bound, off.bound):
        return "\N{EN DASH}"
    value = a / b
    sign = {
        ("measured", "measured"): "",
        ("at least", "measured"): "≥ ",
        ("measured", "at least"): "≤ ",
        ("measured", "below"): "> ",
        ("at least", "below"): "> ",
        ("below", "measured"): "< ",
        ("below", "at least"): "< ",
    }.get((on.bound, off.bound))
    return "\N{EN DASH}" if sign is None else f"{sign}{value:.1f}\N{MULTIPLICATION SIGN}"


def total_rps(run: Run, step: Step) -> tuple[float, int]:
    window = run.recorder.window(step.mode, step.start_s, step.end_s)
    failures = sum(not s.ok for s in window)
    return len(window) / max(step.end_s - step.start_s, 1e-9), failures


def hit_ratio(run: Run, mode: str, entity: str) -> float | None:
    """Over every step of `mode` together."""
    served = missed = 0.0
    for step in run.steps:
        if step.mode == mode:
            c = step.rates.cache.get(entity, {})
            served += c.get("hit", 0.0) + c.get("near_hit", 0.0)
            missed += c.get("miss", 0.0)
    return served / (served + missed) if served + missed else None


@dataclass(frozen=True)
class EqualLoad:
    """PostgreSQL statements at one step that both modes ran."""

    users: int
    off_qps: float
    on_qps: float
    off_per_request: float  # a closed model: the modes' request rates differ at equal users
    on_per_request: float

    @property
    def reduction(self) -> float:
        """% fewer statements per second with the cache on."""
        return (1 - self.on_qps / self.off_qps) * 100 if self.off_qps else math.nan

    @property
    def reduction_per_request(self) -> float:
        off, on = self.off_per_request, self.on_per_request
        return (1 - on / off) * 100 if off else math.nan


def queries_at_equal_load(run: Run) -> list[EqualLoad]:
    """Every step both modes ran, lowest first."""
    by = {(s.mode, s.users): s for s in run.steps}
    rows = []
    for users in sorted({u for (_, u) in by}):
        if ("off", users) in by and ("on", users) in by:
            off, on = by[("off", users)], by[("on", users)]
            q_off, q_on = off.rates.queries_per_s["total"], on.rates.queries_per_s["total"]
            rps_off, rps_on = total_rps(run, off)[0], total_rps(run, on)[0]
            per_off = q_off / rps_off if rps_off else math.nan
            per_on = q_on / rps_on if rps_on else math.nan
            rows.append(EqualLoad(users, q_off, q_on, per_off, per_on))
    return rows


@dataclass(frozen=True)
class ProbeRow:
    mode: str
    endpoint: str
    sent: int
    failures: int
    rate: float  # achieved send rate
    p50: float
    p95: float
    p99: float
    max_ms: float
    lag_p99: float  # the sender's own lateness
    limit_ms: float | None
    holds: bool
    statuses: str  # e.g. "200 x 990, 503 x 10"; 0: no answer (timeout, connection, dropped)


def probe_rows(run: Run) -> list[ProbeRow]:
    buckets: dict[tuple[str, str], list[ProbeSample]] = defaultdict(list)
    for p in run.probes:
        buckets[(p.mode, p.endpoint)].append(p)
    sla, rows = run.options.sla, []
    for (mode, endpoint), samples in buckets.items():
        # every answer counts, errors too (a 503 after a 2 s wait is 2 s); not the dropped sends
        ms = sorted(p.latency_ms for p in samples if not math.isnan(p.latency_ms))
        lags = sorted(p.send_lag_ms for p in samples)
        failures = sum(not p.ok for p in samples)
        sends = [p.scheduled_s + p.send_lag_ms / 1000 for p in samples]
        span = max(sends) - min(sends) or 1.0
        p95 = percentile(ms, 95)
        limit = sla.p95_limit(endpoint)
        holds = failures <= sla.max_errors and (limit is None or p95 <= limit)
        rows.append(
            ProbeRow(
                mode,
                endpoint,
                len(samples),
                failures,
                len(samples) / span,
                percentile(ms, 50),
                p95,
                percentile(ms, 99),
                ms[-1] if ms else math.nan,
                percentile(lags, 99),
                limit,
                holds,
                ", ".join(
                    f"{code} x {n}"
                    for code, n in sorted(Counter(p.status for p in samples).items())
                ),
            )
        )
    return rows


def as_dict(row: Any) -> dict[str, Any]:
    return {k: getattr(row, k) for k in row.__dataclass_fields__}
