"""Beyond one process and one Redis: a Redis Cluster beside one node, and 1, 2, 4 workers.

Two measurements in one run, both against the real API processes (`python -m orderflow
serve shop|crm`, the platform's own app, routes, middleware and lifespan), on hot keys that
hit after a warm-up:

1. **hop**: the same read endpoints served by two API processes of each kind, one on the
   embedded single `redis-server`, one on an embedded Redis Cluster of 3 masters and 3
   replicas (`EmbeddedRedisCluster`, `ORDERFLOW_REDIS_CLUSTER=true`), on different ports;
   only one is loaded at a time, and they alternate in rounds so that the noise of this shared
   machine hits both. Each 1-worker API process is pinned to core 0, the load generator to
   core 1 (as in the read-path bench); PostgreSQL and the Redis nodes are unpinned.

       item          Shop `GET /items/{id}` (the near cache on, as the platform runs it)
       item-no-near  the same from a Shop process with ORDERFLOW_NEAR_CACHE_TTL_S=0
       order         Shop `GET /orders/{id}`
       client-orders Shop `GET /clients/{id}/orders`
       crm-orders    CRM `GET /orders?status=&limit=20&offset=` (7 statuses, 3 pages each)

2. **workers**: Shop processes with `--workers 1`, `2` and `4` on the single Redis, on
   different ports, loaded in turn, round after round, with more connections. None of them is
   pinned (the 1-worker one neither, so that the three differ only in their worker count);
   the load generator stays pinned to core 1, so it gets the same core whatever the server
   does. On a 2-core machine the workers share the cores with the load generator, PostgreSQL
   and Redis: the report gives every group's CPU.

    uv run --frozen python -m perf.bench.scale                    # 200,000 orders, a few minutes
    uv run --frozen python -m perf.bench.scale --seconds 3 --rounds 2 --no-write   # a quick look

Results go to docs/bench/scale.json and to this bench's section of docs/performance.md.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import os
import random
import sys
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import httpx
from redis import Redis

from orderflow.kit.db import asyncpg_dsn
from orderflow.kit.embedded import free_port, free_port_range
from orderflow.kit.embedded_cluster import EmbeddedRedisCluster
from orderflow.kit.settings import Settings
from orderflow.platform import child_env
from perf.bench import scale_report
from perf.bench.data import PACKAGES, data_root, servers
from perf.bench.loadgen import Job, LoadWorker, Result, merge
from perf.bench.reads import QUIET_CORES, git_commit, split
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
    process_cpu_s,
    publish,
    run_unwinding,
    tree_cpu_s,
    wait_quiet,
    wait_until,
    write_report,
)

HOP_ENDPOINTS = ("item", "item-no-near", "order", "client-orders", "crm-orders")
WORKER_ENDPOINTS = ("item", "order")
WORKER_COUNTS = (1, 2, 4)
REDISES = ("single", "cluster")
STATUSES = ("created", "confirmed", "in_production", "ready", "shipped", "delivered", "cancelled")
CRM_PAGES = (0, 20, 40)  # offsets of the CRM list pages, 20 orders each
PRIME_STEP_S = 2.0  # a priming job
PRIME_HIT_RATIO = 0.98  # priming stops once a job hits this share of its cache reads
SEQUENCE_LENGTH = 20_000  # requests per endpoint, walked cyclically by the connections


@dataclass(frozen=True)
class Endpoint:
    """A read endpoint: which API process serves it, and its path for a key."""

    app: str  # "shop", "shop-no-near" or "crm": an API process kind (APPS)
    path: Callable[[str], str]


ENDPOINTS = {
    "item": Endpoint("shop", lambda k: f"/items/{k}"),
    "item-no-near": Endpoint("shop-no-near", lambda k: f"/items/{k}"),
    "order": Endpoint("shop", lambda k: f"/orders/{k}"),
    "client-orders": Endpoint("shop", lambda k: f"/clients/{k}/orders"),
    "crm-orders": Endpoint("crm", lambda k: f"/orders?{k}"),
}
# An API process kind: its service and the variables it runs with besides the servers'.
APPS: dict[str, tuple[str, dict[str, str]]] = {
    "shop": ("shop", {}),
    "shop-no-near": ("shop", {"ORDERFLOW_NEAR_CACHE_TTL_S": "0"}),
    "crm": ("crm", {}),
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="One Redis vs a Redis Cluster; 1, 2, 4 workers.")
    data_arguments(p, orders=200_000)
    p.add_argument("--seconds", type=float, default=8.0, help="measured time per variant")
    p.add_argument("--warmup", type=float, default=1.0, help="unmeasured load per variant")
    p.add_argument("--prime", type=float, default=30.0, help="most priming per API and endpoint, s")
    p.add_argument("--rounds", type=int, default=4, help="interleave the variants in slices")
    p.add_argument("--connections", type=int, default=32, help="for the hop")
    p.add_argument("--worker-connections", type=int, default=64, help="for the workers")
    p.add_argument("--keys", type=int, default=500, help="hot keys per endpoint (not CRM)")
    p.add_argument("--quiet-wait", type=float, default=10.0, help="per variant, at most")
    p.add_argument("--endpoints", default=",".join(HOP_ENDPOINTS), help="of the hop; '' none")
    p.add_argument("--worker-endpoints", default=",".join(WORKER_ENDPOINTS), help="'' none")
    p.add_argument("--workers", default=",".join(map(str, WORKER_COUNTS)))
    p.add_argument("--seed", type=int, default=13, help="of the key choice")
    p.add_argument("--json", type=Path, default=BENCH_DOCS / "scale.json")
    p.add_argument("--markdown", type=Path, default=PERFORMANCE_MD)
    p.add_argument("--no-write", action="store_true", help="print the section; write no docs")
    p.add_argument("--from-json", type=Path, help="no run: rewrite the section from results")
    return p.parse_args(argv)


# ---------------------------------------------------------------- keys


async def _hot_keys(shop_dsn: str, count: int, seed: int) -> dict[str, list[str]]:
    """`count` ids of items, orders and clients with orders, chosen at random; CRM pages."""
    conn = await asyncpg.connect(asyncpg_dsn(shop_dsn))
    try:
        found = {
            "item": await conn.fetch("SELECT id FROM items ORDER BY id"),
            "order": await conn.fetch("SELECT id FROM orders ORDER BY id"),
            "client-orders": await conn.fetch(
                "SELECT DISTINCT client_id AS id FROM orders ORDER BY 1"
            ),
        }
    finally:
        await conn.close()
    rng = random.Random(seed)
    keys = {
        k: [str(r["id"]) for r in rng.sample(rows, min(count, len(rows)))]
        for k, rows in found.items()
    }
    keys["item-no-near"] = keys["item"]
    keys["crm-orders"] = [f"status={s}&limit=20&offset={o}" for s in STATUSES for o in CRM_PAGES]
    return keys


def sequence(endpoint: str, keys: list[str], seed: int) -> list[str]:
    """The paths the load generator walks: hot keys, uniformly at random."""
    rng = random.Random(f"{seed}:{endpoint}")
    path = ENDPOINTS[endpoint].path
    return [path(k) for k in rng.choices(keys, k=SEQUENCE_LENGTH)]


# ---------------------------------------------------------------- the API processes


@dataclass
class Api:
    """One `orderflow serve` process (a supervisor and its workers when workers > 1)."""

    label: str
    port: int
    child: Child
    workers: int

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def start_api(
    stack: ExitStack,
    settings: Settings,
    app: str,
    label: str,
    *,
    workers: int = 1,
    cluster_url: str | None = None,
    log_dir: Path,
) -> Api:
    """`python -m orderflow serve <service>` on a free port; stopped when `stack` closes."""
    service, extra = APPS[app]
    env = child_env(settings) | extra | {"ORDERFLOW_WORKERS": str(workers)}
    if cluster_url is not None:
        env |= {"ORDERFLOW_REDIS_CLUSTER": "true", "ORDERFLOW_REDIS_URL": cluster_url}
    port = free_port()
    args = ["serve", service, "--port", str(port), "--workers", str(workers)]
    log_path = log_dir / f"scale-{label}.log"
    log_path.unlink(missing_ok=True)  # this run's lines only
    child = Child("orderflow", args, env, log_path)
    stack.callback(child.stop)
    log(f"  {label}: `orderflow serve {service} --workers {workers}` on :{port}")
    return Api(label, port, child, workers)


def pin_process(pid: int, cpu: int) -> None:
    """Every thread of `pid` onto `cpu` (threads it starts later inherit it)."""
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            os.sched_setaffinity(int(task), {cpu})
        except OSError:  # a thread that just ended
            continue


def metric_totals(base: str) -> dict[str, float]:
    """The cache's reads by result, its failed operations and the SQL statements, from the
    API's /metrics (every worker added up)."""
    text = httpx.get(f"{base}/metrics", timeout=30).raise_for_status().text
    totals: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("orderflow_cache_requests_total{"):
            result = line.split('result="', 1)[1].split('"', 1)[0]
            key = f"cache:{result}"
        elif line.startswith("orderflow_db_queries_total{"):
            key = "db_queries"
        elif line.startswith("orderflow_cache_errors_total{"):
            op = line.split('op="', 1)[1].split('"', 1)[0]
            kind = line.split('kind="', 1)[1].split('"', 1)[0]
            key = f"error:{op}:{kind}"
        else:
            continue
        totals[key] = totals.get(key, 0.0) + float(line.rsplit(" ", 1)[1])
    return totals


def _delta(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    return {k: after.get(k, 0.0) - before.get(k, 0.0) for k in after}


def hit_ratio(metrics: dict[str, float]) -> float | None:
    """Hits (Redis or near) over the cache's reads; None when it read nothing."""
    looked_up = sum(v for k, v in metrics.items() if k.startswith("cache:"))
    hits = metrics.get("cache:hit", 0.0) + metrics.get("cache:near_hit", 0.0)
    return hits / looked_up if looked_up else None


# ---------------------------------------------------------------- measuring


@dataclass
class Slice:
    result: Result
    cpu: dict[str, float]  # seconds: server, redis, loadgen, others, wall
    metrics: dict[str, float]  # deltas of metric_totals
    waited_s: float


class Runner:
    def __init__(
        self,
        args: argparse.Namespace,
        load: LoadWorker,
        redis_pids: dict[str, list[int]],
        redis_ports: dict[str, list[int]],
    ):
        self.args = args
        self.load = load
        self.redis_pids = redis_pids
        self.redis_ports = redis_ports

    def prime(self, api: Api, paths: list[str], connections: int) -> dict[str, Any]:
        """Warm the API's caches until its reads hit: jobs of PRIME_STEP_S on the endpoint's
        own sequence until one hits at least PRIME_HIT_RATIO of its cache reads, or `--prime`
        seconds pass. A key is admitted on its second sight, per process: each worker of a
        multi-worker API must see a key once before it reads it from Redis."""
        spent, hit = 0.0, None
        while spent < self.args.prime:
            before = metric_totals(api.base)
            self.load.run(Job("127.0.0.1", api.port, paths, connections, PRIME_STEP_S))
            spent += PRIME_STEP_S
            delta = _delta(before, metric_totals(api.base))
            hit = hit_ratio(delta)
            if hit is None or hit >= PRIME_HIT_RATIO:
                break
        shown = "-" if hit is None else f"{hit:.3f}"
        log(f"  primed {api.label} for {spent:g} s: hit ratio {shown}")
        return {"seconds": spent, "hit_ratio": hit}

    def slice(self, api: Api, redis: str, paths: list[str], connections: int) -> Slice:
        rounds = max(1, self.args.rounds)
        waited, _ = wait_quiet(QUIET_CORES, self.args.quiet_wait / rounds)
        self.load.run(Job("127.0.0.1", api.port, paths, connections, self.args.warmup / rounds))
        before = metric_totals(api.base)
        commands = redis_commands(self.redis_ports[redis])
        pids = self.redis_pids[redis]
        groups: dict[str, Callable[[], float]] = {
            "server": functools.partial(tree_cpu_s, api.child.pid),
            "redis": lambda: sum(process_cpu_s(pid) for pid in pids),
            "loadgen": functools.partial(tree_cpu_s, self.load.pid),
        }
        meter = CpuMeter(groups)
        meter.start()
        result = self.load.run(
            Job("127.0.0.1", api.port, paths, connections, self.args.seconds / rounds)
        )
        use = meter.stop()
        delta = _delta(before, metric_totals(api.base))
        by_name = _delta(commands, redis_commands(self.redis_ports[redis]))
        delta |= {f"redis:{k}": v for k, v in by_name.items() if v}
        cpu = {k: use.seconds[k] for k in groups} | {"others": use.others_s, "wall": use.wall_s}
        return Slice(result, cpu, delta, waited)


def row_of(label: str, slices: list[Slice]) -> dict[str, Any]:
    """A table row from one variant's slices: merged latencies, summed CPU and counters."""
    result = merge([s.result for s in slices])
    cpu = {k: sum(s.cpu[k] for s in slices) for k in slices[0].cpu}
    metrics: dict[str, float] = {"db_queries": 0.0}
    for s in slices:
        for key, value in s.metrics.items():
            metrics[key] = metrics.get(key, 0.0) + value
    looked_up = sum(v for k, v in metrics.items() if k.startswith("cache:"))
    ok = max(result.requests - result.errors, 1)
    wall = cpu["wall"] or 1.0
    return {
        "label": label,
        **result.to_dict(),
        "round_rps": [s.result.rps for s in slices],
        "server_cpu": cpu["server"] / wall,
        "redis_cpu": cpu["redis"] / wall,
        "loadgen_cpu": cpu["loadgen"] / wall,
        "others_cpu": cpu["others"] / wall,
        "server_cpu_ms_per_req": cpu["server"] * 1000 / ok,
        "redis_cpu_ms_per_req": cpu["redis"] * 1000 / ok,
        "cache_results": {
            k.split(":", 1)[1]: v for k, v in metrics.items() if k.startswith("cache:")
        },
        "hit_ratio": hit_ratio(metrics),
        "near_hit_ratio": metrics["cache:near_hit"] / looked_up if looked_up else None,
        "db_queries_per_request": metrics["db_queries"] / ok,
        "cache_errors": {
            k.split(":", 1)[1]: v for k, v in metrics.items() if k.startswith("error:")
        },
        "redis_commands_per_request": sum(v for k, v in metrics.items() if k.startswith("redis:"))
        / ok,
        "redis_commands_by_name_per_request": {
            k.split(":", 1)[1]: round(v / ok, 3)
            for k, v in sorted(metrics.items(), key=lambda kv: -kv[1])
            if k.startswith("redis:")
        },
        "quiet_waited_s": sum(s.waited_s for s in slices),
    }


def top_commands(row: dict[str, Any], count: int = 4) -> str:
    """`evalsha 2.00 mget 1.00 ...`: the commands a request cost most of, per request."""
    found = row.get("redis_commands_by_name_per_request", {})
    return " ".join(f"{k} {v:.2f}" for k, v in list(found.items())[:count])


def announce(row: dict[str, Any], what: str) -> dict[str, Any]:
    hit = "-" if row["hit_ratio"] is None else f"{row['hit_ratio']:.3f}"
    log(
        f"  {what:<28} {row['rps']:>7,.0f} req/s  p50 {row['p50_ms']:6.2f}"
        f"  p99 {row['p99_ms']:7.2f} ms  hit {hit}"
        f"  q/req {row['db_queries_per_request']:.3f}"
        f"  redis cmd/req {row['redis_commands_per_request']:.2f} ({top_commands(row)})"
        f"  err {row['errors']} cache errors {sum(row['cache_errors'].values()):.0f}"
        f"  cpu ms/req srv {row['server_cpu_ms_per_req']:.3f}"
        f" redis {row['redis_cpu_ms_per_req']:.3f}"
        f"  cores srv {row['server_cpu']:.2f} redis {row['redis_cpu']:.2f}"
        f" gen {row['loadgen_cpu']:.2f} others {row['others_cpu']:.2f}"
    )
    return row


def interleave(
    runner: Runner,
    variants: list[tuple[str, Api, str]],
    paths: list[str],
    connections: int,
    what: str,
) -> list[dict[str, Any]]:
    """Every (label, api, redis) variant for `--seconds` in all, in `--rounds` rounds."""
    taken: dict[str, list[Slice]] = {label: [] for label, _, _ in variants}
    primed = {label: runner.prime(api, paths, connections) for label, api, _ in variants}
    for n in range(max(1, runner.args.rounds)):
        for label, api, redis in variants:
            taken[label].append(runner.slice(api, redis, paths, connections))
        log(
            f"  round {n + 1}: "
            + ", ".join(f"{lb} {taken[lb][-1].result.rps:,.0f}" for lb in taken)
        )
    rows = [announce(row_of(label, taken[label]), f"{what} {label}") for label, _, _ in variants]
    return [row | {"primed": primed[row["label"]]} for row in rows]


# ---------------------------------------------------------------- the run


def run(args: argparse.Namespace) -> dict[str, Any]:
    hop, by_workers = split(args.endpoints), split(args.worker_endpoints)
    counts = [int(n) for n in split(args.workers)]
    server_cpu, load_cpu = pin_cpus()
    results: dict[str, Any] = {
        "hop": {},
        "workers": {},
        "pinning": {"server": server_cpu, "loadgen": load_cpu},
    }
    with ExitStack() as stack:
        live = stack.enter_context(servers(args.data_dir, args.orders, reseed=args.reseed))
        root = data_root(args.data_dir, args.orders)
        results["machine"] = plain(describe_machine(live, PACKAGES))
        single = urlsplit(live.redis_url).port or 6379
        redis_pids = {"single": [_redis_pid(live.redis_url)], "cluster": []}
        redis_ports = {"single": [single], "cluster": []}
        if hop:
            cluster = EmbeddedRedisCluster(root / "cluster", free_port_range(6))
            log(f"starting a Redis Cluster, 3 masters + 3 replicas, on :{cluster.base_port}..")
            stack.callback(cluster.stop)
            cluster.start()
            redis_pids["cluster"] = [p.pid for p in cluster.procs.values()]
            redis_ports["cluster"] = cluster.nodes
        keys = asyncio.run(_hot_keys(live.shop_dsn, args.keys, args.seed))
        results["keys"] = {k: len(v) for k, v in keys.items()}
        load = LoadWorker(load_cpu)
        stack.callback(load.close)
        runner = Runner(args, load, redis_pids, redis_ports)

        results["loadgen"] = loadgen_ceiling(args, load, server_cpu)
        if hop:
            log("the hop: one Redis vs a Redis Cluster")
            apis: dict[tuple[str, str], Api] = {}
            for app in dict.fromkeys(ENDPOINTS[e].app for e in hop):
                for redis in REDISES:
                    url = cluster.url if redis == "cluster" else None
                    apis[app, redis] = start_api(
                        stack, live, app, f"{app}-{redis}", cluster_url=url, log_dir=root
                    )
            for api in apis.values():
                wait_until(functools.partial(healthy, api.base), api.label, children=[api.child])
                if server_cpu is not None:
                    pin_process(api.child.pid, server_cpu)
            for endpoint in hop:
                log(f"{endpoint}: single, cluster")
                paths = sequence(endpoint, keys[endpoint], args.seed)
                app = ENDPOINTS[endpoint].app
                variants = [(r, apis[app, r], r) for r in REDISES]
                rows = interleave(runner, variants, paths, args.connections, endpoint)
                results["hop"][endpoint] = {"keys": len(keys[endpoint]), "rows": rows}
            for api in apis.values():  # the workers' runs have the machine to themselves
                api.child.stop()
        if by_workers and counts:
            log(f"workers: {', '.join(map(str, counts))} Shop processes on the single Redis")
            shops = {
                n: start_api(stack, live, "shop", f"shop-w{n}", workers=n, log_dir=root)
                for n in counts
            }
            for api in shops.values():
                wait_until(
                    functools.partial(healthy, api.base),
                    api.label,
                    children=[api.child],
                    timeout_s=120,
                )
            for endpoint in by_workers:
                log(f"{endpoint}: workers {', '.join(map(str, counts))}")
                paths = sequence(endpoint, keys[endpoint], args.seed)
                variants = [(f"{n}", shops[n], "single") for n in counts]
                rows = interleave(runner, variants, paths, args.worker_connections, endpoint)
                results["workers"][endpoint] = {"keys": len(keys[endpoint]), "rows": rows}
    return results


def loadgen_ceiling(args: argparse.Namespace, load: LoadWorker, cpu: int | None) -> dict[str, Any]:
    """What the load generator reaches against a server that costs next to nothing
    (`perf.bench.rawserver` on the server's core): above that, it is the bottleneck."""
    port = free_port()
    server = Child(
        "perf.bench.rawserver", [str(port), "600", *([str(cpu)] if cpu is not None else [])]
    )
    try:
        wait_until(functools.partial(listening, port), "rawserver", timeout_s=30, children=[server])
        found: dict[str, Any] = {}
        for connections in sorted({args.connections, args.worker_connections}):
            wait_quiet(QUIET_CORES, args.quiet_wait / max(1, args.rounds))
            job = Job("127.0.0.1", port, ["/"], connections, min(args.seconds / 2, 4.0))
            rps = found[str(connections)] = load.run(job).rps
            log(f"load generator ceiling, {connections} connections: {rps:,.0f} req/s")
        return found
    finally:
        server.stop()


def redis_commands(ports: list[int]) -> dict[str, float]:
    """Calls of each command the Redis servers on `ports` processed so far, added up over the
    nodes (`INFO commandstats`; INFO's own calls too)."""
    total: dict[str, float] = {}
    for port in ports:
        client = Redis(port=port, socket_timeout=5)
        try:
            stats = client.info("commandstats")
        finally:
            client.close()
        for name, value in stats.items():
            command = name.removeprefix("cmdstat_")
            total[command] = total.get(command, 0.0) + float(value["calls"])
    return total


def _redis_pid(url: str) -> int:
    client = Redis.from_url(url)
    try:
        return int(client.info("server")["process_id"])
    finally:
        client.close()


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    if args.from_json:
        results = json.loads(args.from_json.read_text())
        write_report(results, scale_report.section, scale_report.HEADING, args.markdown)
        return
    results, started = run_unwinding(run, args)
    one, five, fifteen = os.getloadavg()
    results["params"] = {
        "orders": args.orders,
        "seconds": args.seconds,
        "warmup": args.warmup,
        "prime": args.prime,
        "rounds": args.rounds,
        "connections": args.connections,
        "worker_connections": args.worker_connections,
        "keys": args.keys,
        "quiet_wait": args.quiet_wait,
        "started": started.isoformat(timespec="seconds"),
        "finished": datetime.now(UTC).isoformat(timespec="seconds"),
        "load_average_end": [round(one, 2), round(five, 2), round(fifteen, 2)],
        "commit": git_commit(),
        "command": "uv run --frozen python -m perf.bench.scale " + " ".join(argv),
    }
    json_path = None if args.no_write else args.json
    publish(
        results,
        scale_report.section,
        scale_report.HEADING,
        json_path=json_path,
        markdown=args.markdown,
    )


if __name__ == "__main__":
    main()
