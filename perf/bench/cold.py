"""Cold keys: the cache off and on side by side, where nearly every read is a miss.

A seller looks up one of 50,000 clients, a client opens one order of 200,000: with the cache on,
such a read is a miss, and costs the database's answer plus the cache's round trips. This bench
measures what that costs: for each of

    order              Shop `GET /orders/{id}`           (an order id, uniform over every order)
    client-orders      Shop `GET /clients/{id}/orders`   (a client id, uniform over every client)
    crm-client-orders  CRM `GET /orders?client_id=`      (the same)

the bench app (`perf.bench.app`: the platform's own `create_app`, the real service functions)
answers with the cache *off* and *on* (`ours`), interleaved in rounds; for an order also
`asyncpg`, the same statement on a bare asyncpg pool (the floor of an uncached read). Every
key is used once in the whole run: the keys of a kind are shuffled and split into disjoint
runs, one per share of a variant (its warm-up and its measurement each get their own, sized by
their time), so no read ever repeats a key read before. The Shop and CRM lists of a client are
the same cache entries, so those two kinds split the clients between them: a client read by one
is never read by the other, or the second would be that key's second sight (admitted, a full
miss) in a bench that claims first sights only. Redis is emptied before each kind (every list's
bodies are the order entries). The hit ratio column shows what remained.

    uv run --frozen python -m perf.bench.cold                        # 200,000 orders
    uv run --frozen python -m perf.bench.cold --variants off --no-write  # the uncached side only

The target: on/off ≥ 0.9, a miss costs at most 10% over reading the database without a cache.
Results go to docs/bench/cold.json and to this bench's section of docs/performance.md.
"""

from __future__ import annotations

import argparse
import functools
import json
import random
import sys
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from redis import Redis

from orderflow.kit.embedded import free_port
from perf.bench import cold_report
from perf.bench.data import PACKAGES, data_root, servers
from perf.bench.loadgen import LoadWorker
from perf.bench.reads import (
    QUIET_CORES,
    Bench,
    Slice,
    Spec,
    announce,
    counter_delta,
    git_commit,
    row_of,
    server_env,
    split,
)
from perf.common import (
    BENCH_DOCS,
    PERFORMANCE_MD,
    Child,
    data_arguments,
    describe_machine,
    healthy,
    log,
    pin_cpus,
    plain,
    publish,
    run_unwinding,
    wait_quiet,
    wait_until,
    write_report,
)

KINDS = ("order", "client-orders", "crm-client-orders")
VARIANTS = ("asyncpg", "off", "ours")
REFERENCE = "asyncpg"  # the floor: an order's statement on a bare asyncpg pool (orders only)
# Kinds whose keys name the same cache entries: they split their key space between them.
KEY_SPACES = {"order": "orders", "client-orders": "clients", "crm-client-orders": "clients"}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="Cold keys: the cache off and on, nearly all misses.")
    data_arguments(p, orders=200_000)
    p.add_argument("--seconds", type=float, default=10.0, help="measured time per variant")
    p.add_argument("--warmup", type=float, default=2.0, help="unmeasured load per variant")
    p.add_argument("--rounds", type=int, default=3, help="interleave the variants in slices")
    p.add_argument("--connections", type=int, default=16)
    p.add_argument("--quiet-wait", type=float, default=15.0, help="per variant, at most")
    p.add_argument("--kinds", default=",".join(KINDS))
    p.add_argument("--variants", default=",".join(VARIANTS))
    p.add_argument("--seed", type=int, default=12, help="of the key shuffle")
    p.add_argument("--json", type=Path, default=BENCH_DOCS / "cold.json")
    p.add_argument("--markdown", type=Path, default=PERFORMANCE_MD)
    p.add_argument("--no-write", action="store_true", help="print the section; write no docs")
    p.add_argument("--from-json", type=Path, help="no run: rewrite the section from results")
    return p.parse_args(argv)


def key_runs(keys: list[str], weights: list[float], seed: int) -> list[list[str]]:
    """`keys` shuffled and cut into disjoint runs, one per weight, sized by their weights."""
    shuffled = keys[:]
    random.Random(seed).shuffle(shuffled)
    total, runs, start = sum(weights), [], 0
    for weight in weights:
        size = int(len(shuffled) * weight / total)
        runs.append(shuffled[start : start + size])
        start += size
    return runs


def key_parts(kinds: list[str]) -> dict[str, tuple[int, int]]:
    """Each kind's part of its key space: (its index, how many kinds share the space)."""
    sharing: dict[str, list[str]] = {}
    for kind in kinds:
        sharing.setdefault(KEY_SPACES.get(kind, kind), []).append(kind)
    return {k: (group.index(k), len(group)) for group in sharing.values() for k in group}


class ColdBench(Bench):
    """`perf.bench.reads.Bench` with slices that never repeat a key."""

    def __init__(self, *args: Any, redis_url: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.redis_url = redis_url

    def empty_redis(self) -> None:
        """Nothing cached: the bench's own Redis, emptied (epochs restart from its clock)."""
        client = Redis.from_url(self.redis_url)
        try:
            client.flushall()
        finally:
            client.close()

    def measure_cold(self, kind: str, variants: list[str], part: tuple[int, int]) -> dict[str, Any]:
        """Every variant of `kind` for `--seconds` in all, interleaved in `--rounds`, each
        share on keys of its own (two runs: warm-up, measurement), all within `part` of the
        kind's key space."""
        keys = self.http.get(f"/bench/keys/{kind}").raise_for_status().json()["keys"]
        index, parts = part
        keys = key_runs(keys, [1.0] * parts, self.args.seed)[index]
        variants = [v for v in variants if v != REFERENCE or kind == "order"]
        rounds = max(1, self.args.rounds)
        share = [max(self.args.warmup, 0.1), self.args.seconds]
        runs = iter(key_runs(keys, share * (rounds * len(variants)), self.args.seed + 1))
        self.empty_redis()
        taken: dict[str, list[Slice]] = {v: [] for v in variants}
        for _ in range(rounds):
            for variant in variants:
                taken[variant].append(self.cold_slice(kind, variant, next(runs), next(runs)))
        rows = [announce(row_of(kind, Spec(v, v), taken[v]), kind) for v in variants]
        per_share = int(len(keys) * share[1] / sum(share)) // (rounds * len(variants))
        return {"keys": len(keys), "keys_per_share": per_share, "rows": rows}

    def cold_slice(self, kind: str, variant: str, warm: list[str], measured: list[str]) -> Slice:
        waited, _ = wait_quiet(QUIET_CORES, self.args.quiet_wait / max(1, self.args.rounds))
        rounds = max(1, self.args.rounds)
        self.load.run(self.job(self.paths(kind, variant, warm), self.args.warmup / rounds))
        before = self.counters()
        job = self.job(self.paths(kind, variant, measured), self.args.seconds / rounds)
        result, cpu = self._timed(job, self.server.pid)
        after = self.counters()
        if result.requests > len(measured):
            log(f"  WARNING: {result.requests:,} requests over {len(measured):,} keys: repeats")
        return Slice(result, cpu, counter_delta(before, after), waited, 0)

    @staticmethod
    def paths(kind: str, variant: str, keys: list[str]) -> list[str]:
        return [f"/r/{variant}/{kind}/{key}" for key in keys]


def run(args: argparse.Namespace) -> dict[str, Any]:
    kinds, variants = split(args.kinds), split(args.variants)
    server_cpu, load_cpu = pin_cpus()
    results: dict[str, Any] = {"kinds": {}}
    with ExitStack() as stack:
        live = stack.enter_context(servers(args.data_dir, args.orders, reseed=args.reseed))
        results["machine"] = plain(describe_machine(live, PACKAGES))
        port = free_port()
        app_log = data_root(args.data_dir, args.orders) / "bench-cold-app.log"
        log(f"starting the bench app on :{port} (core {server_cpu}, log {app_log})")
        app_args = ["--port", str(port)]
        app_args += ["--cpu", str(server_cpu)] if server_cpu is not None else []
        server = Child("perf.bench.app", app_args, server_env(live), app_log)
        stack.callback(server.stop)
        wait_until(functools.partial(healthy, f"http://127.0.0.1:{port}"), "the bench app")
        load = LoadWorker(load_cpu)
        stack.callback(load.close)
        bench = ColdBench(args, port, server, load, redis_url=live.redis_url)
        stack.callback(bench.http.close)
        parts = key_parts(kinds)
        for kind in kinds:
            log(f"{kind}: {', '.join(variants)}, cold keys")
            results["kinds"][kind] = bench.measure_cold(kind, variants, parts[kind])
    return results


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    if args.from_json:
        results = json.loads(args.from_json.read_text())
        write_report(results, cold_report.section, cold_report.HEADING, args.markdown)
        return
    results, started = run_unwinding(run, args)
    results["params"] = {
        "orders": args.orders,
        "seconds": args.seconds,
        "warmup": args.warmup,
        "rounds": args.rounds,
        "connections": args.connections,
        "quiet_wait": args.quiet_wait,
        "started": started.isoformat(timespec="seconds"),
        "finished": datetime.now(UTC).isoformat(timespec="seconds"),
        "commit": git_commit(),
        "command": "uv run --frozen python -m perf.bench.cold " + " ".join(argv),
    }
    json_path = None if args.no_write else args.json
    publish(
        results,
        cold_report.section,
        cold_report.HEADING,
        json_path=json_path,
        markdown=args.markdown,
    )


if __name__ == "__main__":
    main()
