"""`make bench`: the cached read path side by side, in one run, reported as ratios.

First the references: what the load generator reaches against a trivial server (it must
not be the bottleneck) and what a bare FastAPI app reaches (how fast the machine is today).
Then, for each data kind (an item, a catalogue page, a CRM list by status, the counts by
status), every variant of `perf.bench.app` in the same server process: the ceiling (constant
bytes), off (PostgreSQL), ours (orderflow.cache), a bare Redis GET, and cashews, interleaved
in rounds. Then, for the item, the bare GET through differently configured redis-py clients
and with the server's garbage collector frozen or off, to find where the Redis p99 tail
comes from.

    uv run --frozen python -m perf.bench.reads             # 1M orders, 10 s per variant
    uv run --frozen python -m perf.bench.reads --orders 20000 --seconds 3   # a quick run
    uv run --frozen python -m perf.bench.reads --tracing 1%      # the server traces 1 %

The server (uvicorn, 1 worker, uvloop + httptools) is pinned to core 0, the pure-Python load
generator (`perf.bench.loadgen`) to core 1; PostgreSQL and Redis are unpinned children.
Results go to docs/bench/reads.json and to this bench's section of docs/performance.md.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import random
import subprocess
import sys
from collections import Counter
from collections.abc import Callable, Iterable
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

from orderflow.kit.embedded import free_port
from orderflow.kit.settings import Settings
from perf.bench import report
from perf.bench.app import NEAR_KINDS, VARIANTS
from perf.bench.data import PACKAGES, data_root, servers
from perf.bench.loadgen import Job, LoadWorker, Result, merge
from perf.common import (
    BENCH_DOCS,
    PERFORMANCE_MD,
    Child,
    CpuMeter,
    data_arguments,
    describe_machine,
    healthy,
    listening,
    log,
    pin_cpus,
    plain,
    publish,
    run_unwinding,
    tree_cpu_s,
    wait_quiet,
    wait_until,
    write_report,
)

KINDS = ("item", "catalogue", "orders", "counts")
PROBES: tuple[str, ...] = ("kit", "defaults", "no-timeout", "no-health-check", "pool-8", "single")
PROBES += ("kit+gc-unfreeze", "kit+gc-off")  # the platform's client, the collector changed
# A probe's collector change, and how the server is put back after it.
GC_CHANGES = {"unfreeze": ("unfreeze", "freeze"), "off": ("off", "on"), "freeze": ("freeze", None)}
GENERATIONS = range(3)  # CPython's collector generations
QUIET_CORES = 0.3  # other processes' CPU below which the machine counts as quiet
DB_TIMEOUT_S = 60.0  # see server_env
SEQUENCE_LENGTH = 20_000  # requests per kind, walked cyclically by the connections
# --tracing: the server's OpenTelemetry (kit/tracing.py), by the standard variables. `on` sets it
# up and samples nothing (what the instrumentation costs alone); `off` is no SDK at all, as
# before tracing existed, and the default, so that earlier results stay comparable. An
# OTEL_EXPORTER_OTLP_ENDPOINT in the bench's environment is passed on (spans exported too).
TRACING = {
    "off": {"OTEL_SDK_DISABLED": "true"},
    "on": {"OTEL_SDK_DISABLED": "false", "OTEL_TRACES_SAMPLER": "parentbased_always_off"},
    "1%": {
        "OTEL_SDK_DISABLED": "false",
        "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
        "OTEL_TRACES_SAMPLER_ARG": "0.01",
    },
    "100%": {"OTEL_SDK_DISABLED": "false", "OTEL_TRACES_SAMPLER": "parentbased_always_on"},
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="The cached read path side by side, as ratios.")
    data_arguments(p, orders=1_000_000)
    p.add_argument("--seconds", type=float, default=10.0, help="measured time per variant")
    p.add_argument("--warmup", type=float, default=2.0, help="unmeasured load per variant")
    p.add_argument(
        "--rounds", type=int, default=5, help="interleave the variants in this many slices"
    )
    p.add_argument("--connections", type=int, default=32)
    p.add_argument("--zipf", type=float, default=1.0, help="item ids: Zipf exponent, 0=uniform")
    p.add_argument(
        "--quiet-wait",
        type=float,
        default=15.0,
        help="per variant (over its rounds): the longest wait for others to use < 0.3 cores",
    )
    p.add_argument(
        "--tracing",
        choices=list(TRACING),
        default="off",
        help="the server's tracing: off (no SDK), on (nothing sampled), 1%%, 100%%",
    )
    p.add_argument("--kinds", default=",".join(KINDS))
    p.add_argument("--variants", default=",".join(VARIANTS))
    p.add_argument("--probes", default=",".join(PROBES), help="redis clients; '' for none")
    p.add_argument("--json", type=Path, default=BENCH_DOCS / "reads.json")
    p.add_argument("--markdown", type=Path, default=PERFORMANCE_MD)
    p.add_argument("--no-write", action="store_true", help="print the section; write no docs")
    p.add_argument("--from-json", type=Path, help="no run: rewrite the section from results")
    return p.parse_args(argv)


def split(csv: str) -> list[str]:
    return [part for part in csv.split(",") if part]


def key_sequence(kind: str, keys: list[str], zipf_s: float, seed: int = 7) -> list[str]:
    """The keys the load generator asks for, in order: items by popularity (Zipf over a
    shuffled catalogue, so that the hot items are not just the lowest ids), the rest uniform."""
    rng = random.Random(seed)
    if kind == "item" and zipf_s > 0:
        ranked = keys[:]
        rng.shuffle(ranked)
        weights = [1 / (rank**zipf_s) for rank in range(1, len(ranked) + 1)]
        return rng.choices(ranked, weights, k=SEQUENCE_LENGTH)
    return rng.choices(keys, k=min(SEQUENCE_LENGTH, 64 * len(keys)))


class Bench:
    """Drives the loaded server: `reference` servers, `warm`, then `measure` per kind."""

    def __init__(self, args: argparse.Namespace, port: int, server: Child, load: LoadWorker):
        self.args = args
        self.port = port
        self.base = f"http://127.0.0.1:{port}"
        self.server = server
        self.load = load
        self.http = httpx.Client(base_url=self.base, timeout=600)

    def job(self, paths: list[str], seconds: float, port: int | None = None) -> Job:
        return Job("127.0.0.1", port or self.port, paths, self.args.connections, seconds)

    def reference(self, module: str, size: int, cpu: int | None, path: str) -> dict[str, Any]:
        """Load a reference server (`bench.rawserver`, `bench.bare`) pinned to the server's
        core, answering `size` bytes at `path`, for `--seconds`."""
        port = free_port()
        server = Child(module, [str(port), str(size), *([str(cpu)] if cpu is not None else [])])
        try:
            wait_until(functools.partial(listening, port), module, timeout_s=30, children=[server])
            wait_quiet(QUIET_CORES, self.args.quiet_wait)
            self.load.run(self.job([path], self.args.warmup, port))
            result, cpu_s = self._timed(self.job([path], self.args.seconds, port), server.pid)
        finally:
            server.stop()
        busy = {
            f"{k}_cpu": cpu_s[f"{k}_s"] / cpu_s["wall_s"] for k in ("server", "loadgen", "others")
        }
        return {"body_bytes": size, **result.to_dict(), **busy}

    def warm(self, kind: str) -> dict[str, Any]:
        info: dict[str, Any] = self.http.post(f"/bench/warm/{kind}").raise_for_status().json()
        keys = self.http.get(f"/bench/keys/{kind}").raise_for_status().json()["keys"]
        info["sequence"] = key_sequence(kind, keys, self.args.zipf)
        return info

    def measure(self, kind: str, specs: list[Spec], sequence: list[str]) -> list[dict[str, Any]]:
        """Measure every spec for `--seconds` in all, interleaved: each of `--rounds` rounds
        runs each spec for its share in turn, so that a neighbour's burst on the shared
        machine spreads over all the variants instead of sinking one of them."""
        rounds = max(1, self.args.rounds)
        taken: dict[str, list[Slice]] = {spec.label: [] for spec in specs}
        for _ in range(rounds):
            for spec in specs:
                taken[spec.label].append(self.slice(kind, spec, sequence, rounds))
        return [announce(row_of(kind, spec, taken[spec.label]), kind) for spec in specs]

    def slice(self, kind: str, spec: Spec, sequence: list[str], rounds: int) -> Slice:
        """One share of one spec's measurement: quiet wait, warm-up, then measured load."""
        paths = [f"/r/{spec.variant}/{kind}/{quote(key, safe='')}" for key in sequence]
        waited, _ = wait_quiet(QUIET_CORES, self.args.quiet_wait / rounds)
        change, restore = GC_CHANGES[spec.gc_mode] if spec.gc_mode else (None, None)
        tracked = self.http.post("/bench/gc/collect").raise_for_status().json()["tracked"]
        if change:
            self.http.post(f"/bench/gc/{change}").raise_for_status()
        if change in ("unfreeze", "freeze"):  # what a full collection walks has changed
            tracked = self.http.post("/bench/gc/collect").raise_for_status().json()["tracked"]
        try:
            self.load.run(self.job(paths, self.args.warmup / rounds))
            before = self.counters()
            result, cpu = self._timed(self.job(paths, self.args.seconds / rounds), self.server.pid)
            after = self.counters()
        finally:
            if restore:
                self.http.post(f"/bench/gc/{restore}").raise_for_status()
        return Slice(result, cpu, counter_delta(before, after), waited, tracked)

    def _timed(self, job: Job, server_pid: int) -> tuple[Result, dict[str, float]]:
        """Run `job`; also the CPU seconds of the server and the load generator, and of the
        processes outside this bench meanwhile (the machine is shared)."""
        groups = {"server": server_pid, "loadgen": self.load.pid}
        meter = CpuMeter({k: functools.partial(tree_cpu_s, pid) for k, pid in groups.items()})
        meter.start()
        result = self.load.run(job)
        use = meter.stop()
        return result, {
            "server_s": use.seconds["server"],
            "loadgen_s": use.seconds["loadgen"],
            "others_s": use.others_s,
            "wall_s": use.wall_s,
        }

    def counters(self) -> dict[str, Any]:
        answer: dict[str, Any] = self.http.get("/bench/counters").raise_for_status().json()
        return answer


@dataclass(frozen=True)
class Spec:
    """What to measure: a variant of the read route, under a label, with the server's
    garbage collector changed by `gc_mode` (None: as it is; else a key of GC_CHANGES)."""

    label: str
    variant: str
    gc_mode: str | None = None


@dataclass
class Slice:
    """One share of a measurement: the load's result, CPU seconds, counter deltas."""

    result: Result
    cpu: dict[str, float]
    delta: dict[str, Any]
    quiet_waited_s: float
    gc_tracked_objects: int  # what a full collection walks, at the start of the slice


def counter_delta(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """What the server's counters moved by over a slice (the longest GC pause: its own)."""

    def diff(a: dict[str, int], b: dict[str, int]) -> dict[str, int]:
        return {k: b.get(k, 0) - a.get(k, 0) for k in b}

    gc0, gc1 = before["gc"], after["gc"]
    return {
        "cache": diff(before["cache"], after["cache"]),
        "loads": diff(before["loads"], after["loads"]),
        "db_queries": after["db_queries"] - before["db_queries"],
        "gc_collections": [gc1["collections"][g] - gc0["collections"][g] for g in GENERATIONS],
        "gc_pause_s": [gc1["pause_s"][g] - gc0["pause_s"][g] for g in GENERATIONS],
        "gc_max_pause_s": gc1["max_pause_s"],
    }


def per_generation(
    triples: list[list[float]], combine: Callable[[Iterable[float]], float]
) -> list[float]:
    """Combine per-generation (0, 1, 2) GC figures of several slices, generation by generation."""
    return [combine(t[g] for t in triples) for g in GENERATIONS]


def row_of(kind: str, spec: Spec, slices: list[Slice]) -> dict[str, Any]:
    """One table row from a spec's slices: merged latencies, summed counters and CPU."""
    result = merge([s.result for s in slices])
    n = max(result.requests, 1)
    cpu = {k: sum(s.cpu[k] for s in slices) for k in slices[0].cpu}
    cache: Counter[str] = Counter()
    loads: Counter[str] = Counter()
    for s in slices:
        cache.update(s.delta["cache"])
        loads.update(s.delta["loads"])
    row: dict[str, Any] = {
        "variant": spec.variant,
        "probe": spec.label,
        **result.to_dict(),
        "server_cpu": cpu["server_s"] / cpu["wall_s"],
        "loadgen_cpu": cpu["loadgen_s"] / cpu["wall_s"],
        "others_cpu": cpu["others_s"] / cpu["wall_s"],
        "slices": len(slices),
        "quiet_waited_s": sum(s.quiet_waited_s for s in slices),
        "gc_tracked_objects": max(s.gc_tracked_objects for s in slices),
        "db_queries_per_request": sum(s.delta["db_queries"] for s in slices) / n,
        "gc_collections": per_generation([s.delta["gc_collections"] for s in slices], sum),
        "gc_pause_ms": [
            1000 * t for t in per_generation([s.delta["gc_pause_s"] for s in slices], sum)
        ],
        "gc_max_pause_ms": [
            1000 * t for t in per_generation([s.delta["gc_max_pause_s"] for s in slices], max)
        ],
        "hit_ratio": None,
    }
    if spec.variant.startswith("ours"):
        looked_up = sum(cache.values())
        row["cache_reads_per_request"] = looked_up / n
        hits = cache["hit"] + cache["near_hit"]
        row["hit_ratio"] = hits / looked_up if looked_up else None
        row["near_hit_ratio"] = cache["near_hit"] / looked_up if looked_up else None
    elif spec.variant not in ("off", "ceiling"):  # redis, redis:<probe>, cashews
        row["hit_ratio"] = 1 - loads[f"{spec.variant}:{kind}"] / n
    return row


def run(args: argparse.Namespace) -> dict[str, Any]:
    kinds, variants, probes = split(args.kinds), split(args.variants), split(args.probes)
    server_cpu, load_cpu = pin_cpus()
    results: dict[str, Any] = {"kinds": {}, "probes": []}
    with ExitStack() as stack:
        live = stack.enter_context(servers(args.data_dir, args.orders, reseed=args.reseed))
        results["machine"] = plain(describe_machine(live, PACKAGES))
        port = free_port()
        app_log = data_root(args.data_dir, args.orders) / "bench-app.log"
        log(f"starting the bench app on :{port} (core {server_cpu}, log {app_log})")
        app_args = ["--port", str(port)]
        app_args += ["--cpu", str(server_cpu)] if server_cpu is not None else []
        server = Child("perf.bench.app", app_args, server_env(live, args.tracing), app_log)
        stack.callback(server.stop)
        base = f"http://127.0.0.1:{port}"
        wait_until(functools.partial(healthy, base), "the bench app", children=[server])
        load = LoadWorker(load_cpu)
        stack.callback(load.close)
        bench = Bench(args, port, server, load)
        stack.callback(bench.http.close)
        size = len(bench.http.get("/r/off/item/1").raise_for_status().content)
        log(f"load generator ceiling ({args.connections} connections, {size} B)")
        # What the load generator reaches against a server that costs next to nothing.
        results["loadgen"] = bench.reference("perf.bench.rawserver", size, server_cpu, "/")
        log(f"  {results['loadgen']['rps']:,.0f} req/s")
        log("framework ceiling (a bare FastAPI app, same bytes)")
        results["framework"] = bench.reference("perf.bench.bare", size, server_cpu, "/r/x/item/1")
        log(f"  {results['framework']['rps']:,.0f} req/s")
        for kind in kinds:
            results["kinds"][kind] = measure_kind(bench, kind, variants)
            if kind == "item" and probes:
                sequence = results["kinds"][kind].pop("_sequence")
                results["probes"] = bench.measure(kind, [probe_spec(p) for p in probes], sequence)
            results["kinds"][kind].pop("_sequence", None)
    return results


def measure_kind(bench: Bench, kind: str, variants: list[str]) -> dict[str, Any]:
    """Warm every cache for `kind`, then measure each variant in turn."""
    log(f"{kind}: warming")
    warm = bench.warm(kind)
    if warm["differ"]:
        log(f"  WARNING: {warm['differ']} answer other bytes than off")
    sequence = warm.pop("sequence")
    measured = [v for v in variants if v != "near" or kind in NEAR_KINDS]
    rows = bench.measure(kind, [Spec(v, v) for v in measured], sequence)
    return {"warm": warm, "rows": rows, "_sequence": sequence}


def probe_spec(probe: str) -> Spec:
    """`client` measures a bare GET through probe client `client`; `client+gc-CHANGE` also
    changes the server's garbage collector meanwhile (see GC_CHANGES)."""
    client, _, gc_mode = probe.partition("+gc-")
    return Spec(probe, f"redis:{client}", gc_mode or None)


def announce(row: dict[str, Any], kind: str) -> dict[str, Any]:
    hit = "-" if row["hit_ratio"] is None else f"{row['hit_ratio']:.3f}"
    log(
        f"  {kind:<9} {row['probe']:<22} {row['rps']:>8,.0f} req/s"
        f"  p50 {row['p50_ms']:6.2f}"
        f"  p99 {row['p99_ms']:7.2f}  p99.9 {row['p999_ms']:7.2f} ms  hit {hit}"
        f"  q/req {row['db_queries_per_request']:.2f}  err {row['errors']}"
        f"  gc2 {row['gc_collections'][2]} max {max(row['gc_max_pause_ms']):.0f} ms"
        f"  cpu srv {row['server_cpu']:.0%} gen {row['loadgen_cpu']:.0%}"
        f" others {row['others_cpu']:.2f}"
    )
    return row


def server_env(live: Settings, tracing: str = "off") -> dict[str, str]:
    """The bench app's settings: the bench's servers, and patient database timeouts.

    The platform answers 503 after 2 s without a pooled connection and cancels statements
    after 5 s. Under 32 connections the *off* variant of the CRM views queues longer than that
    on two cores, and fast 503s would pass for throughput: here it waits, so that *off*
    measures what PostgreSQL delivers. The cached variants never come near either limit.
    `tracing` is one of TRACING's settings.
    """
    env = dict(os.environ)
    env |= {
        "ORDERFLOW_SHOP_DSN": live.shop_dsn,
        "ORDERFLOW_MES_DSN": live.mes_dsn,
        "ORDERFLOW_REDIS_URL": live.redis_url,
        "ORDERFLOW_DB_CONNECT_TIMEOUT_S": str(DB_TIMEOUT_S),
        "ORDERFLOW_DB_STATEMENT_TIMEOUT_S": str(DB_TIMEOUT_S),
    }
    env.pop("OTEL_TRACES_SAMPLER_ARG", None)
    return env | TRACING[tracing]


def git_commit() -> str:
    out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    return out.stdout.strip() or "unknown"


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    if args.from_json:  # only rewrite the section, e.g. after a change to perf/bench/report.py
        results = json.loads(args.from_json.read_text())
        write_report(results, report.section, report.HEADING, args.markdown)
        return
    results, started = run_unwinding(run, args)
    results["params"] = {
        "orders": args.orders,
        "seconds": args.seconds,
        "warmup": args.warmup,
        "rounds": args.rounds,
        "connections": args.connections,
        "zipf": args.zipf,
        "quiet_wait": args.quiet_wait,
        "tracing": args.tracing,
        "db_timeouts_s": DB_TIMEOUT_S,
        "started": started.isoformat(timespec="seconds"),
        "finished": datetime.now(UTC).isoformat(timespec="seconds"),
        "commit": git_commit(),
        "command": "uv run --frozen python -m perf.bench.reads " + " ".join(argv),
    }
    results["targets"] = report.targets(results)
    json_path = None if args.no_write else args.json
    publish(results, report.section, report.HEADING, json_path=json_path, markdown=args.markdown)


if __name__ == "__main__":
    main()
