"""What the app's ASGI stack costs a request, in-process: no network, no load generator, no
Redis, no database, so that a few microseconds are not lost in the noise of a served bench.

The platform's `Service` (the edge, the tracing gate, FastAPI, its middleware) with one route
that returns constant bytes, called directly `--calls` times per repetition; the median of
`--repeat` repetitions, in µs a request. Tracing by the standard variables, set up as the
platform sets it up, each setting in a process of its own (tracing is set up once a process):

    uv run --frozen python -m perf.bench.stack_cost                      # off, 0 %, 1 %, 100 %
    uv run --frozen python -m perf.bench.stack_cost --settings off,1%

`0%` is the SDK with a ratio that keeps nothing: what a dropped request costs.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import time
from typing import Any

SETTINGS = {
    "off": {"OTEL_SDK_DISABLED": "true"},
    "0%": {"OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0"},
    "1%": {"OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.01"},
    "100%": {"OTEL_TRACES_SAMPLER": "parentbased_always_on"},
}
SCOPE: dict[str, Any] = {
    "type": "http",
    "asgi": {"version": "3.0"},
    "http_version": "1.1",
    "method": "GET",
    "scheme": "http",
    "path": "/r/1",
    "raw_path": b"/r/1",
    "query_string": b"",
    "root_path": "",
    "headers": [(b"host", b"127.0.0.1:8002"), (b"user-agent", b"bench"), (b"accept", b"*/*")],
    "client": ("127.0.0.1", 50000),
    "server": ("127.0.0.1", 8002),
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--settings", default="off,0%,1%,100%", help=f"of {', '.join(SETTINGS)}")
    p.add_argument("--calls", type=int, default=20_000, help="requests per repetition")
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--one", help=argparse.SUPPRESS)  # a child measuring one setting
    args = p.parse_args(argv)
    if unknown := set(args.settings.split(",")) - set(SETTINGS):
        p.error(f"unknown settings {sorted(unknown)}: use {', '.join(SETTINGS)}")
    return args


def app() -> Any:
    from fastapi import Response

    from orderflow.kit import tracing
    from orderflow.kit.app import NO_NATIVE_TELEMETRY, Service
    from orderflow.kit.settings import Settings

    tracing.setup("crm")
    service = Service(service="crm", settings=Settings(), telemetry=NO_NATIVE_TELEMETRY)

    @service.get("/r/{key}")
    async def constant(key: str) -> Response:
        return Response(b'{"counts":{}}', media_type="application/json")

    return service


async def per_request_us(asgi: Any, calls: int) -> float:
    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        pass

    started = time.perf_counter()
    for _ in range(calls):
        await asgi(dict(SCOPE, state={}), receive, send)
    return (time.perf_counter() - started) / calls * 1e6


async def measure(calls: int, repeat: int) -> list[float]:
    asgi = app()
    await per_request_us(asgi, calls // 10)  # warm: routes compiled, stacks built
    return [await per_request_us(asgi, calls) for _ in range(repeat)]


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.one:
        print(" ".join(f"{x:.2f}" for x in asyncio.run(measure(args.calls, args.repeat))))
        return
    print("| tracing | µs a request (median) | repetitions |\n|---|---|---|")
    for setting in args.settings.split(","):
        env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
        env |= SETTINGS[setting]
        command = [sys.executable, "-m", "perf.bench.stack_cost", "--one", setting]
        command += ["--calls", str(args.calls), "--repeat", str(args.repeat)]
        out = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
        values = [float(v) for v in out.stdout.split()]
        shown = ", ".join(f"{v:.1f}" for v in values)
        print(f"| {setting} | {statistics.median(values):.1f} | {shown} |", flush=True)


if __name__ == "__main__":
    main()
