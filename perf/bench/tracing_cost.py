"""What tracing costs the cached read path: one bench app per tracing setting, side by side.

`perf.bench.reads --tracing X` measures one setting per run, and runs minutes apart on this
shared machine scatter by up to 30 %: more than the 3 % this is meant to show. Here every
setting has its own server (the same app, `perf.bench.app`, pinned to the same core, on the
same PostgreSQL and Redis), started once, and the load turns from one to the next in short
slices, round after round (the order rotating), so a neighbour's burst spreads over all of
them. Only the server being loaded runs; the others wait on their sockets.

    uv run --frozen python -m perf.bench.tracing_cost --orders 20000 --seconds 96 --rounds 24

`--seconds` is each setting's measured time in all, cut into `--rounds` slices (4 s each
here). Besides the req/s over all slices, each setting is compared with the first round by
round (`paired`: the median of the rounds' ratios, with quartiles), by req/s and by the
server's CPU per request.

Results go to docs/bench/tracing.json (the table is printed; docs/tracing.md quotes it).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from perf.bench import interleave
from perf.bench.data import PACKAGES, servers
from perf.bench.loadgen import LoadWorker
from perf.bench.reads import TRACING, Bench, Slice, Spec, row_of, server_env, split
from perf.common import (
    BENCH_DOCS,
    data_arguments,
    describe_machine,
    log,
    pin_cpus,
    plain,
    run_unwinding,
    write_json,
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="Tracing's cost, settings side by side, as ratios.")
    data_arguments(p, orders=20_000)
    settings = ", ".join(TRACING).replace("%", "%%")  # argparse formats help with %
    p.add_argument("--settings", default="off,1%,100%", help=f"of {settings}")
    p.add_argument("--kinds", default="item,orders", help="of perf.bench.reads' kinds")
    p.add_argument("--seconds", type=float, default=96.0, help="measured time per setting, in all")
    p.add_argument("--warmup", type=float, default=3.0, help="unmeasured load per setting")
    p.add_argument("--rounds", type=int, default=24, help="slices per setting, interleaved")
    p.add_argument("--connections", type=int, default=32)
    p.add_argument("--zipf", type=float, default=1.0)
    p.add_argument("--quiet-wait", type=float, default=15.0, help="per setting, at most")
    p.add_argument("--json", default=str(BENCH_DOCS / "tracing.json"), help="'' for none")
    p.add_argument("--no-write", action="store_true", help="print the table; write no JSON")
    args = p.parse_args(argv)
    if unknown := set(split(args.settings)) - set(TRACING):
        p.error(f"unknown settings {sorted(unknown)}: use {', '.join(TRACING)}")
    return args


def measure(benches: dict[str, Bench], kind: str, rounds: int) -> list[dict[str, Any]]:
    """Every setting's server in turn, `rounds` times, the order rotating each round."""
    taken = interleave.slices(benches, kind, rounds)
    settings = list(benches)
    rows = [row_of(kind, Spec(s, "ours"), taken[s]) for s in settings]
    base = rows[0]
    for row, setting in zip(rows, settings, strict=True):
        row["tracing"] = setting
        row["vs_first"] = row["rps"] / base["rps"] if base["rps"] else None
        per_slice = [s.result.rps for s in taken[setting]]
        row["slice_rps"] = per_slice
        row["slice_rps_median"] = statistics.median(per_slice)
        row["paired"] = interleave.paired(per_slice, [s.result.rps for s in taken[settings[0]]])
        # The server's CPU per request, as a capacity: the first setting's over this one's.
        cpu_us = [per_request_us(s) for s in taken[setting]]
        row["cpu_us_per_request"] = statistics.median(cpu_us)
        row["paired_cpu"] = interleave.paired(
            [per_request_us(s) for s in taken[settings[0]]], cpu_us
        )
        log(
            f"  {kind:<7} {setting:<5} {row['rps']:>8,.0f} req/s  x{row['vs_first']:.3f}"
            f"  paired x{row['paired']['median']:.3f}"
            f"  cpu {row['cpu_us_per_request']:.0f} µs/req"
            f" paired x{row['paired_cpu']['median']:.3f}"
            f"  slices {', '.join(f'{v:,.0f}' for v in per_slice)}"
            f"  p50 {row['p50_ms']:.2f}  p99 {row['p99_ms']:.2f} ms"
            f"  srv {row['server_cpu']:.0%}  others {row['others_cpu']:.2f}"
        )
    return rows


def per_request_us(taken: Slice) -> float:
    return taken.cpu["server_s"] / max(taken.result.requests, 1) * 1e6


def table(results: dict[str, Any]) -> str:
    first = results["settings"][0]
    lines = [
        f"| kind | tracing | req/s | vs {first} | paired rounds, median (quartiles) "
        f"| server µs a request | {first}'s µs over this, paired | p50 ms | p99 ms | server CPU "
        "| others (cores) |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for kind, rows in results["kinds"].items():
        for row in rows:
            pair, cpu = row["paired"], row["paired_cpu"]
            lines.append(
                f"| {kind} | {row['tracing']} | {row['rps']:,.0f} | {row['vs_first']:.3f} "
                f"| {pair['median']:.3f} ({pair['q1']:.3f}-{pair['q3']:.3f}) "
                f"| {row['cpu_us_per_request']:.0f} | {cpu['median']:.3f} "
                f"({cpu['q1']:.3f}-{cpu['q3']:.3f}) "
                f"| {row['p50_ms']:.2f} | {row['p99_ms']:.2f} | {row['server_cpu']:.0%} "
                f"| {row['others_cpu']:.2f} |"
            )
    return "\n".join(lines)


def run(args: argparse.Namespace) -> dict[str, Any]:
    settings = split(args.settings)
    server_cpu, load_cpu = pin_cpus()
    results: dict[str, Any] = {"settings": settings, "kinds": {}}
    with ExitStack() as stack:
        live = stack.enter_context(servers(args.data_dir, args.orders, reseed=args.reseed))
        results["machine"] = plain(describe_machine(live, PACKAGES))
        load = LoadWorker(load_cpu)
        stack.callback(load.close)
        benches: dict[str, Bench] = {}
        for setting in settings:
            env, label = server_env(live, setting), f"tracing-{setting.replace('%', 'pct')}"
            benches[setting] = interleave.start_bench_app(stack, env, label, args, server_cpu, load)
        for kind in split(args.kinds):
            log(f"{kind}: {' / '.join(settings)}, {args.rounds} rounds")
            results["kinds"][kind] = measure(benches, kind, args.rounds)
    return results


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    results, started = run_unwinding(run, args)
    results["params"] = {
        **{k: str(v) for k, v in vars(args).items()},
        "started": started.isoformat(timespec="seconds"),
        "finished": datetime.now(UTC).isoformat(timespec="seconds"),
        "load_average": os.getloadavg(),
        "command": "uv run --frozen python -m perf.bench.tracing_cost " + " ".join(argv),
    }
    print(table(results))
    if args.json and not args.no_write:
        write_json(Path(args.json), results)


if __name__ == "__main__":
    main()
