"""Every request's response time, in one list per run, and the statistics taken from it."""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from perf.common import percentile


@dataclass(frozen=True, slots=True)
class Sample:
    mode: str
    t: float  # seconds since the mode's phase began, at completion
    group: str
    ms: float
    ok: bool


@dataclass(frozen=True)
class Summary:
    requests: int
    failures: int
    p50: float
    p95: float
    p99: float

    @classmethod
    def of(cls, samples: Iterable[Sample]) -> Summary:
        ms, failures = [], 0
        for s in samples:
            ms.append(s.ms)
            failures += not s.ok
        ms.sort()
        return cls(len(ms), failures, *(percentile(ms, q) for q in (50, 95, 99)))


class Recorder:
    """A listener of Locust's `request` event; `begin(mode)` starts a phase's clock."""

    def __init__(self) -> None:
        self.samples: list[Sample] = []
        self.errors: dict[tuple[str, str, str], int] = defaultdict(int)
        self.mode = ""
        self.t0 = time.monotonic()

    def begin(self, mode: str) -> None:
        self.mode, self.t0 = mode, time.monotonic()

    def now(self) -> float:
        return time.monotonic() - self.t0

    def on_request(self, name: str, response_time: float, exception: Any = None, **_: Any) -> None:
        self.samples.append(Sample(self.mode, self.now(), name, response_time, exception is None))
        if exception is not None:
            self.errors[(self.mode, name, repr(exception)[:160])] += 1

    def window(self, mode: str, start: float, end: float) -> list[Sample]:
        return [s for s in self.samples if s.mode == mode and start <= s.t < end]


def per_second(samples: Iterable[Sample]) -> dict[tuple[str, int, str], Summary]:
    """(mode, second, group) -> summary; group "all" sums every group."""
    buckets: dict[tuple[str, int, str], list[Sample]] = defaultdict(list)
    for s in samples:
        buckets[(s.mode, int(s.t), s.group)].append(s)
        buckets[(s.mode, int(s.t), "all")].append(s)
    return {key: Summary.of(rows) for key, rows in sorted(buckets.items())}


def by_group(samples: Iterable[Sample]) -> dict[str, Summary]:
    buckets: dict[str, list[Sample]] = defaultdict(list)
    for s in samples:
        buckets[s.group].append(s)
    return {group: Summary.of(rows) for group, rows in sorted(buckets.items())}
