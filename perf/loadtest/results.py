"""What a run measured, and the verdicts taken from it."""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from perf.common import Machine, describe_machine, percentile
from perf.loadtest.config import Options
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
    generator_cpu_percent: float  # Locust's own CPU use, as it measures it


@dataclass
class Run:
    options: Options
    started: datetime
    recorder: Recorder = field(default_factory=Recorder)
    steps: list[Step] = field(default_factory=list)
    probes: list[ProbeSample] = field(default_factory=list)
    categories: int = 0
    items: int = 0
    orders: int | None = None
    started_platform: bool = False
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
    holds: bool
    judged: bool  # enough requests for a p95: else judged on errors only


def groups_at_steps(run: Run) -> list[GroupAtStep]:
    rows = []
    sla = run.options.sla
    for step in run.steps:
        seconds = max(step.end_s - step.start_s, 1e-9)
        window = run.recorder.window(step.mode, step.start_s, step.end_s)
        for group, s in by_group(window).items():
            limit = sla.p95_limit(group)
            judged = s.requests >= sla.min_samples
            fast = limit is None or not judged or s.p95 <= limit
            holds = s.failures <= sla.max_errors and fast
            rps = s.requests / seconds
            rows.append(GroupAtStep(step.mode, step.users, group, s, rps, limit, holds, judged))
    return rows


def step_holds(rows: list[GroupAtStep]) -> dict[tuple[str, int], bool]:
    holds: dict[tuple[str, int], bool] = {}
    for r in rows:
        holds[(r.mode, r.users)] = holds.get((r.mode, r.users), True) and r.holds
    return holds


def capacity(holds: dict[tuple[str, int], bool], mode: str) -> int | None:
    """The highest step at which the SLA holds, and at every lower step; None: not even the
    first."""
    best = None
    for (m, users), ok in sorted(holds.items(), key=lambda kv: kv[0][1]):
        if m != mode:
            continue
        if not ok:
            break
        best = users
    return best


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
