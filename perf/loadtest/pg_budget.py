"""PostgreSQL held to a CPU budget of its own (`--pg-cpus`), as a shared database server is.

On this machine the Python processes, not PostgreSQL, are what runs out first, so the decision's
gain (fewer statements) does not show in capacity. A budget makes the database the scarce
resource: its processes go into a cgroup (v1 `cpu` controller, FACTS.md) with a CFS quota of
`cpus` cores per `PERIOD_US`. The period is short (10 ms) so that a spent quota stalls the
group for at most the rest of 10 ms, not of 100 ms: throttling still shows as latency, and the
throttled periods are reported beside every figure made this way. Backends forked later by the
postmaster inherit its cgroup.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path

from perf.common import platform_times

CPU_CGROUPS = Path("/sys/fs/cgroup/cpu")
PERIOD_US = 10_000


@dataclass(frozen=True)
class Throttling:
    """`cpu.stat` of the budget's cgroup: CFS periods, those throttled, the time stalled."""

    periods: int
    throttled: int
    throttled_s: float

    def since(self, earlier: Throttling) -> Throttling:
        return Throttling(
            self.periods - earlier.periods,
            self.throttled - earlier.throttled,
            self.throttled_s - earlier.throttled_s,
        )

    @property
    def share(self) -> float:
        """The share of periods in which the quota ran out."""
        return self.throttled / self.periods if self.periods else 0.0

    def text(self) -> str:
        return (
            f"{self.throttled}/{self.periods} periods throttled ({self.share:.0%}), "
            f"{self.throttled_s:.1f} s stalled"
        )


class PgBudget:
    """A cgroup holding the PostgreSQL processes under `root` (the platform we started)."""

    def __init__(self, cpus: float, root: int) -> None:
        if not CPU_CGROUPS.is_dir():
            raise SystemExit(f"--pg-cpus needs the cgroup v1 cpu controller at {CPU_CGROUPS}")
        self.cpus = cpus
        self.path = CPU_CGROUPS / f"orderflow-pg-{os.getpid()}"
        self.path.mkdir(exist_ok=True)
        (self.path / "cpu.cfs_period_us").write_text(str(PERIOD_US))
        (self.path / "cpu.cfs_quota_us").write_text(str(max(1000, round(cpus * PERIOD_US))))
        pids = [pid for pid, (group, _) in platform_times(root).items() if group == "PostgreSQL"]
        if not pids:
            self.release()
            raise SystemExit("--pg-cpus: no PostgreSQL process under the platform we started")
        for pid in sorted(pids):  # the postmaster first: what it forks from now on lands here
            (self.path / "cgroup.procs").write_text(str(pid))
        self.held = len(pids)

    def stat(self) -> Throttling:
        fields = dict(
            line.split() for line in (self.path / "cpu.stat").read_text().splitlines() if line
        )
        return Throttling(
            int(fields["nr_periods"]),
            int(fields["nr_throttled"]),
            int(fields["throttled_time"]) / 1e9,
        )

    def release(self) -> None:
        """Back to the root cgroup (whatever still runs), then the cgroup goes."""
        procs = self.path / "cgroup.procs"
        for pid in procs.read_text().split() if procs.exists() else []:
            with contextlib.suppress(OSError):  # it exited meanwhile
                (CPU_CGROUPS / "cgroup.procs").write_text(pid)
        with contextlib.suppress(OSError):  # still in use: left for the next run's name
            self.path.rmdir()
