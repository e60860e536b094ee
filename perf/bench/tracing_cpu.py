"""What tracing costs the cached read path in CPU, in-process: settings side by side.

`perf.bench.tracing_cost` measures req/s through the network with a load generator; on a
noisy shared machine its slices scatter by more than the few per cent it is meant to show.
This one takes the network, the load generator and the scheduler out: one process per
tracing setting (the bench app, `perf.bench.app`, built by the platform's own factory, on the
same PostgreSQL and Redis), all pinned to one core, each calling its app's ASGI entry point
directly for cached reads (`GET /r/ours/<kind>/<key>`, one request at a time). In turn, round
after round, the order rotating, each measures the CPU time its process spends per request
(`time.process_time`: waiting on Redis is not counted). Each setting is compared with the
first round by round; the median and quartiles of those ratios are the result.

    uv run --frozen python -m perf.bench.tracing_cpu --orders 20000 --rounds 30 --requests 1000

A ratio is the first setting's CPU per request over this one's, so that it reads like a
throughput ratio: 0.97 means 3 % more CPU per request.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from typing import IO, Any

from perf.bench import interleave
from perf.bench.reads import TRACING, server_env, split
from perf.common import data_arguments, log

Message = dict[str, Any]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    data_arguments(p, orders=20_000)
    settings = ", ".join(TRACING).replace("%", "%%")
    p.add_argument("--settings", default="off,1%,100%", help=f"of {settings}")
    p.add_argument("--kinds", default="item,orders", help="of perf.bench.reads' kinds")
    p.add_argument("--rounds", type=int, default=30)
    p.add_argument("--requests", type=int, default=1000, help="per setting and round")
    p.add_argument("--child", help=argparse.SUPPRESS)  # a process measuring one kind
    args = p.parse_args(argv)
    if unknown := set(split(args.settings)) - set(TRACING):
        p.error(f"unknown settings {sorted(unknown)}: use {', '.join(TRACING)}")
    return args


def scope(path: str, method: str = "GET") -> Message:
    return {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method,
        "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"",
        "root_path": "", "headers": [(b"host", b"127.0.0.1")], "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80), "state": {},
    }  # fmt: skip


async def serve_rounds(kind: str) -> None:
    """The child: the bench app, warmed; then, per line on stdin (a count), that many reads,
    answered with their CPU and wall time per request."""
    from orderflow.kit.settings import Settings
    from perf.bench.app import build

    app = build(Settings())
    answered: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        answered.append(message)

    async def call(path: str, method: str = "GET") -> bytes:
        answered.clear()
        await app(scope(path, method), receive, send)
        status = next(m["status"] for m in answered if m["type"] == "http.response.start")
        if status != 200:
            raise RuntimeError(f"{method} {path}: {status}")
        return b"".join(m.get("body", b"") for m in answered if m["type"] == "http.response.body")

    async with app.router.lifespan_context(app):
        keys = json.loads(await call(f"/bench/keys/{kind}"))["keys"]
        await call(f"/bench/warm/{kind}", "POST")
        paths = [f"/r/ours/{kind}/{key}" for key in keys]
        for path in paths * 3:  # every key a hit, every code path warm
            await call(path)
        print("ready", flush=True)
        loop = asyncio.get_running_loop()
        while line := await loop.run_in_executor(None, sys.stdin.readline):
            n = int(line)
            cpu, wall = time.process_time(), time.perf_counter()
            for i in range(n):
                await app(scope(paths[i % len(paths)]), receive, send)
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
            answered.clear()
            print(json.dumps({"cpu_us": cpu / n * 1e6, "wall_us": wall / n * 1e6}), flush=True)


def ask(child: subprocess.Popen[str], n: int) -> Message:
    stdin, stdout = child.stdin, child.stdout
    assert stdin is not None
    assert stdout is not None
    stdin.write(f"{n}\n")
    stdin.flush()
    answer: Message = json.loads(stdout.readline())
    return answer


def wait_ready(stdout: IO[str] | None) -> None:
    assert stdout is not None
    while (line := stdout.readline()) and line.strip() != "ready":
        pass
    if not line:
        raise RuntimeError("a bench process ended before it was ready")


def measure(args: argparse.Namespace, live: Any, kind: str) -> dict[str, Any]:
    settings = split(args.settings)
    children: dict[str, subprocess.Popen[str]] = {}
    try:
        for setting in settings:
            env = server_env(live, setting)
            command = [sys.executable, "-m", "perf.bench.tracing_cpu", "--child", kind]
            children[setting] = subprocess.Popen(
                command, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
            )
            if hasattr(os, "sched_setaffinity"):
                os.sched_setaffinity(children[setting].pid, {0})
        for child in children.values():
            wait_ready(child.stdout)
        taken: dict[str, list[Message]] = {s: [] for s in settings}
        for r in range(args.rounds):
            for setting in interleave.rotation(settings, r):
                taken[setting].append(ask(children[setting], args.requests))
    finally:
        for child in children.values():
            if child.stdin:
                child.stdin.close()
            child.wait(timeout=30)
    first = [x["cpu_us"] for x in taken[settings[0]]]
    rows = {}
    for setting in settings:
        cpu = [x["cpu_us"] for x in taken[setting]]
        pair = interleave.paired(first, cpu)
        rows[setting] = {
            "cpu_us_median": statistics.median(cpu),
            "paired_median": pair["median"],
            "paired_q1": pair["q1"],
            "paired_q3": pair["q3"],
            "cpu_us": cpu,
        }
        log(
            f"  {kind:<7} {setting:<5} {statistics.median(cpu):8.1f} µs a request (CPU)"
            f"  {settings[0]}'s over this, paired: {pair['median']:.3f}"
            f" (quartiles {pair['q1']:.3f}-{pair['q3']:.3f})"
        )
    return rows


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.child:
        asyncio.run(serve_rounds(args.child))
        return
    from perf.bench.data import servers

    with servers(args.data_dir, args.orders, reseed=args.reseed) as live:
        log(f"load average {os.getloadavg()}")
        print("| kind | tracing | CPU µs a request | off's over this, paired: median (quartiles) |")
        print("|---|---|---|---|")
        for kind in split(args.kinds):
            for setting, row in measure(args, live, kind).items():
                print(
                    f"| {kind} | {setting} | {row['cpu_us_median']:.1f} "
                    f"| {row['paired_median']:.3f} ({row['paired_q1']:.3f}-{row['paired_q3']:.3f})"
                    " |",
                    flush=True,
                )
        log(f"load average {os.getloadavg()}")


if __name__ == "__main__":
    main()
