"""Child processes of the bench: start pinned, wait until they answer, stop, and CPU time."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

TICKS = os.sysconf("SC_CLK_TCK")


class Server:
    """`python -m <module> <args>` as a child in its own session, stopped by `stop()`."""

    def __init__(
        self,
        module: str,
        args: list[str],
        env: dict[str, str] | None = None,
        log: Path | None = None,
    ) -> None:
        """`log`: where its output goes (e.g. the app's 503 warnings), instead of ours."""
        out = log.open("ab") if log else None
        self.proc = subprocess.Popen(
            [sys.executable, "-m", module, *args],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT if out else None,
            start_new_session=True,
        )
        if out:
            out.close()  # the child holds its own descriptor
        self.log = log

    @property
    def pid(self) -> int:
        return self.proc.pid

    def wait_http(self, url: str, timeout_s: float = 60.0) -> None:
        """Until `url` answers 200 (the app's lifespan has opened its resources)."""
        deadline = time.monotonic() + timeout_s
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}; see {self.log}")
            try:
                if httpx.get(url, timeout=2.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"no answer from {url} within {timeout_s}s")
            time.sleep(0.1)

    def wait_port(self, port: int, timeout_s: float = 10.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    return
            time.sleep(0.05)
        raise RuntimeError(f"nothing listens on {port} after {timeout_s}s")

    def stop(self, timeout_s: float = 15.0) -> None:
        """SIGTERM (uvicorn shuts down gracefully: the app's lifespan closes its pools)."""
        if self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process `pid` so far (all its threads)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime: fields 14, 15


def pin_cpus() -> tuple[int | None, int | None]:
    """The cores for the server and the load generator: 0 and 1, when we may use both."""
    allowed = sorted(os.sched_getaffinity(0))
    if len(allowed) < 2:
        return None, None
    return allowed[0], allowed[1]


def busy_seconds() -> float:
    """CPU time spent busy by the whole machine so far, all cores (from /proc/stat)."""
    with open("/proc/stat") as f:
        user, nice, system, _idle, _iowait, irq, softirq = map(int, f.readline().split()[1:8])
    return (user + nice + system + irq + softirq) / TICKS


def tree_seconds(root: int) -> float:
    """CPU time of `root` and every process descended from it (servers, their backends),
    including descendants that have exited meanwhile (PostgreSQL's parallel workers): their
    time is in their reaped-by parent's cutime/cstime."""
    parents: dict[int, int] = {}
    times: dict[int, float] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:  # gone meanwhile
            continue
        pid = int(entry)
        parents[pid] = int(fields[1])
        times[pid] = sum(int(f) for f in fields[11:15]) / TICKS  # utime stime cutime cstime
    total = 0.0
    for pid, spent in times.items():
        ancestor = pid
        while ancestor > 1 and ancestor != root:
            ancestor = parents.get(ancestor, 0)
        if ancestor == root:
            total += spent
    return total


def others_cores(root: int, over_s: float = 1.0) -> float:
    """How many cores processes outside `root`'s tree keep busy, sampled over `over_s`."""
    busy0, ours0 = busy_seconds(), tree_seconds(root)
    time.sleep(over_s)
    return max(0.0, (busy_seconds() - busy0) - (tree_seconds(root) - ours0)) / over_s


def wait_quiet(root: int, limit_cores: float, max_wait_s: float) -> tuple[float, float]:
    """Wait (at most `max_wait_s`) until others use under `limit_cores`: on a shared machine
    a measurement started while another job runs measures that job. Returns (waited, cores)."""
    started = time.monotonic()
    while True:
        cores = others_cores(root)
        waited = time.monotonic() - started
        if cores < limit_cores or waited >= max_wait_s:
            return waited, cores
