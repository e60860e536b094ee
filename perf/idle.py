"""`make idle`: what the platform costs while nobody uses it, process by process.

Starts `orderflow up` on a data dir of its own (embedded PostgreSQL and Redis, the demo data),
waits until every API answers and then `--settle` seconds, then reads the CPU time of every
process of the platform over `--seconds`: each API, the relay, PostgreSQL (every backend),
Redis and the supervisor. An idle platform should cost next to nothing: a background loop that
polls shows up here, in cores, beside the process that runs it.

    uv run --frozen python -m perf.idle                  # 60 s measured
    uv run --frozen python -m perf.idle --seconds 20 --no-write

Results go to docs/bench/idle.json and to this tool's section of docs/performance.md.
"""

from __future__ import annotations

import argparse
import os
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from orderflow.kit.settings import Settings
from perf.common import (
    BENCH_DOCS,
    PERFORMANCE_MD,
    PLATFORM_GROUPS,
    Child,
    cores_by_group,
    describe_machine,
    log,
    plain,
    platform_times,
    publish,
    run_unwinding,
    wait_quiet,
    wait_until,
)

HEADING = "## Idle: the platform doing nothing"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="measured time")
    parser.add_argument("--settle", type=float, default=20.0, help="wait after healthy")
    parser.add_argument(
        "--data-dir", type=Path, default=Path(".orderflow/idle"), help="the platform's data"
    )
    parser.add_argument("--orders", type=int, default=20_000, help="demo orders when empty")
    parser.add_argument("--json", type=Path, default=BENCH_DOCS / "idle.json")
    parser.add_argument("--markdown", type=Path, default=PERFORMANCE_MD)
    parser.add_argument("--no-write", action="store_true", help="print the section only")
    return parser.parse_args(argv)


def measure(root: int, seconds: float) -> dict[str, float]:
    """Cores each part of the platform used over `seconds`."""
    before, started = platform_times(root), time.monotonic()
    time.sleep(seconds)
    return cores_by_group(before, platform_times(root), time.monotonic() - started)


def section(results: dict[str, Any]) -> str:
    cores = results["cores"]
    rows = "\n".join(f"| {group} | {cores.get(group, 0.0):.4f} |" for group in PLATFORM_GROUPS)
    return (
        f"{HEADING}\n\n"
        f"`python -m perf.idle --seconds {results['seconds']:.0f}`, {results['when']}: "
        f"`orderflow up` on {results['orders']:,} demo orders (embedded PostgreSQL and Redis), "
        f"left alone {results['settle']:.0f} s after every API answered, then each process's "
        "CPU time read from /proc over the measured time. Load average before: "
        f"{results['machine']['load_average']}.\n\n"
        "| process | cores |\n|---|---|\n"
        f"{rows}\n| **platform** | **{results['total']:.4f}** |\n"
    )


def run(args: argparse.Namespace) -> dict[str, Any]:
    settings = Settings(data_dir=args.data_dir)
    urls = {s: f"http://127.0.0.1:{settings.port_of(s)}" for s in ("shop", "crm", "mes")}
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORDERFLOW_")}
    env["ORDERFLOW_SEED_ORDERS"] = str(args.orders)
    machine = describe_machine()
    wait_quiet(0.3, 30)
    up_log = Path(args.data_dir) / "up.log"
    up = Child("orderflow", ["up", "--data-dir", str(args.data_dir)], env, up_log)
    try:
        wait_until(
            lambda: all(_healthy(url) for url in urls.values()),
            "the platform",
            timeout_s=600,
            children=[up],
            poll_s=1.0,
        )
        log(f"healthy; settling {args.settle:.0f} s, then measuring {args.seconds:.0f} s")
        time.sleep(args.settle)
        cores = measure(up.pid, args.seconds)
    finally:
        up.stop(60)
    return {
        "machine": plain(machine),
        "when": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "seconds": args.seconds,
        "settle": args.settle,
        "orders": args.orders,
        "cores": cores,
        "total": round(sum(cores.values()), 4),
    }


def main() -> None:
    args = parse_args()
    results, _ = run_unwinding(run, args)
    publish(
        results,
        section,
        HEADING,
        json_path=None if args.no_write else args.json,
        markdown=args.markdown,
    )


def _healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}/health", timeout=1.0).status_code == 200
    except httpx.HTTPError:
        return False


if __name__ == "__main__":
    main()
