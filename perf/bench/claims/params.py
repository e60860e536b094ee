"""The parameters of a claims run, from the command line."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

from perf.common import BENCH_DOCS, PERFORMANCE_MD

DEFAULTS = {"operators": 50, "boards": 20, "orders": 2000, "processes": 2}


@dataclass(frozen=True)
class Params:
    operators: int  # N
    boards: int  # M
    orders: int  # Q
    processes: int  # K
    seconds: float  # cap on the claiming phase
    seed: int  # the operators' random choices

    def command(self) -> str:
        args = f"--operators {self.operators} --boards {self.boards} --orders {self.orders}"
        args += f" --processes {self.processes} --seconds {self.seconds:g}"
        return f"uv run --frozen python -m perf.bench.claims {args}"

    def is_default(self) -> bool:
        """What `make bench-claims` runs."""
        return all(getattr(self, name) == value for name, value in DEFAULTS.items())


@dataclass(frozen=True)
class Outputs:
    markdown: Path
    json: Path


def parse_args(argv: list[str] | None = None) -> tuple[Params, Outputs]:
    parser = argparse.ArgumentParser(
        prog="python -m perf.bench.claims",
        description="MES claims/s and claim-to-event latency: N operators, M boards, K processes.",
    )
    add = parser.add_argument
    add("--operators", type=int, default=DEFAULTS["operators"], help="N concurrent operators")
    add("--boards", type=int, default=DEFAULTS["boards"], help="M SSE boards on GET /events")
    add("--orders", type=int, default=DEFAULTS["orders"], help="Q queued orders to claim")
    add("--processes", type=int, default=DEFAULTS["processes"], help="K MES API processes")
    add("--seconds", type=float, default=60.0, help="cap on the claiming phase")
    add("--out", type=Path, default=PERFORMANCE_MD, help="markdown report")
    add("--json", type=Path, default=BENCH_DOCS / "claims.json", help="raw figures")
    add("--seed", type=int, default=1, help="operators' random seed")
    a = parser.parse_args(argv)
    for name in ("operators", "orders", "processes"):
        if getattr(a, name) < 1:
            parser.error(f"--{name} must be at least 1")
    if a.boards < 0 or a.seconds <= 0:
        parser.error("--boards must be >= 0 and --seconds > 0")
    params = Params(a.operators, a.boards, a.orders, a.processes, a.seconds, a.seed)
    return params, Outputs(a.out, a.json)
