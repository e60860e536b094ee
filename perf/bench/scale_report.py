"""The scale section of docs/performance.md (`perf.bench.scale`)."""

from __future__ import annotations

from typing import Any

from perf.common import Machine

HEADING = "## Scale: one Redis vs a Redis Cluster, 1, 2, 4 workers (perf/bench/scale.py)"
TITLES = {
    "item": "Shop `GET /items/{id}` (near cache on)",
    "item-no-near": "Shop `GET /items/{id}` (near cache off)",
    "order": "Shop `GET /orders/{id}`",
    "client-orders": "Shop `GET /clients/{id}/orders`",
    "crm-orders": "CRM `GET /orders?status=` (20 a page)",
}


def rows_of(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {row["label"]: row for row in data["rows"]}


def ratio(a: dict[str, Any], b: dict[str, Any]) -> float:
    """a/b of the rates; NaN when b served nothing."""
    return float(a["rps"] / b["rps"]) if b["rps"] else float("nan")


def round_ratios(a: dict[str, Any], b: dict[str, Any]) -> tuple[float, float]:
    """The lowest and highest a/b of the rounds (a round loads a, then b, back to back)."""
    found = [x / y for x, y in zip(a["round_rps"], b["round_rps"], strict=False) if y]
    return (min(found), max(found)) if found else (float("nan"), float("nan"))


def _hit(row: dict[str, Any]) -> str:
    return "-" if row["hit_ratio"] is None else f"{row['hit_ratio']:.3f}"


def _cache_errors(row: dict[str, Any]) -> str:
    """orderflow_cache_errors_total over the row's slices (timeouts, outages...)."""
    return f"{sum(row.get('cache_errors', {}).values()):,.0f}"


def _commands(row: dict[str, Any]) -> str:
    found = row.get("redis_commands_per_request")
    return "-" if found is None else f"{found:.2f}"


def section(results: dict[str, Any]) -> str:
    """Our whole section, heading included, ending in a newline."""
    parts = [HEADING, "", *_how(results)]
    if results["hop"]:
        parts += ["", "### One Redis vs a Redis Cluster (the price of the hop)", ""]
        parts += [*_hop_text(results), "", *_hop_table(results), "", *_hop_cpu(results)]
        parts += ["", *_hop_commands(results)]
    if results["workers"]:
        parts += ["", "### 1, 2, 4 workers per API", "", *_workers_text(results), ""]
        parts += _workers_table(results)
    return "\n".join(parts) + "\n"


def _how(results: dict[str, Any]) -> list[str]:
    p, m = results["params"], results["machine"]
    machine = Machine.from_dict(m)
    start = ", ".join(f"{v:.2f}" for v in machine.load_average)
    end = ", ".join(f"{v:.2f}" for v in p.get("load_average_end") or [])
    ceiling = ", ".join(
        f"{float(rps):,.0f} req/s with {c} connections"
        for c, rps in results.get("loadgen", {}).items()
    )
    return [
        f"`make bench` ran `{p['command'].strip()}` at commit `{p['commit']}`, "
        f"{p['started']} to {p['finished']}, on {p['orders']:,} orders. Machine: "
        f"{machine.line()}; load average {start} at the start and {end} at the end; "
        f"PostgreSQL {m['postgresql']} and Redis {m['redis']} (embedded; the cluster's nodes are "
        "the same binary). Raw results: [`docs/bench/scale.json`](bench/scale.json).",
        "",
        "Every figure comes from the real API processes, `python -m orderflow serve shop|crm` "
        "(the platform's app, middleware, lifespan and cache), on hot keys that hit: "
        f"{p['keys']:,} item, order and client ids chosen at random (the CRM: 7 statuses, the "
        "first 3 pages of 20), asked for uniformly at random by the closed-loop load generator "
        "(`perf/bench/loadgen.py`). Each API is first primed on the endpoint's own sequence, "
        "in jobs of 2 s until one hits at least 98% of its cache reads (at most "
        f"{p['prime']:g} s): a key is admitted to Redis on its second sight, and the doorkeeper "
        "is per process, so each worker of a multi-worker API sends a key's first read to "
        f"PostgreSQL even when Redis holds it ({_primed(results)}). Per "
        f"variant {p['warmup']:g} s of warm-up and {p['seconds']:g} s measured, interleaved in "
        f"{p['rounds']} rounds; before each slice the bench waits (at most "
        f"{p['quiet_wait'] / max(1, p['rounds']):g} s) for other processes to use under 0.3 "
        "cores. The load generator, pinned to core 1, reaches "
        f"{ceiling} against a server that costs next to nothing (`perf/bench/rawserver.py`): "
        "rates near that are the generator's limit, not the server's. CPU ms/req is the CPU "
        "time of the API process (its workers included) or of the Redis servers (every node "
        "of the cluster) per answered request: steadier than req/s on a shared machine. Redis "
        "commands/req: the calls of `INFO commandstats`, every node added up, over requests (a "
        "pipeline counts each command; idle API processes' heartbeats included). Cache errors: "
        "`orderflow_cache_errors_total` (timeouts, an open breaker), which the API survives by "
        "reading PostgreSQL. "
        "*Others*: cores taken by processes outside the bench (the machine is shared).",
    ]


def _primed(results: dict[str, Any]) -> str:
    """How long priming took, at most, and the lowest hit ratio it ended on."""
    primed = [
        row["primed"]
        for part in ("hop", "workers")
        for data in results[part].values()
        for row in data["rows"]
        if "primed" in row
    ]
    if not primed:
        return "no priming recorded"
    ratios = [p["hit_ratio"] for p in primed if p["hit_ratio"] is not None]
    low = f", its last job hitting {min(ratios):.3f} at worst" if ratios else ""
    return f"priming took {max(p['seconds'] for p in primed):g} s at most{low}"


def _hop_text(results: dict[str, Any]) -> list[str]:
    p = results["params"]
    return [
        "Two API processes of each kind, one on the embedded single `redis-server`, one on an "
        "embedded Redis Cluster of 3 masters and 3 replicas "
        "(`orderflow.kit.embedded_cluster.EmbeddedRedisCluster`; the API runs with "
        "`ORDERFLOW_REDIS_CLUSTER=true` and `ORDERFLOW_REDIS_URL` naming its first node), on "
        "different ports; only one is loaded at a time, single and cluster alternating in "
        "every round. The item is read from two Shop processes per Redis: one as the platform "
        "runs it (the near cache on: most reads never reach Redis) and one with "
        "`ORDERFLOW_NEAR_CACHE_TTL_S=0` (every read a Redis round trip). Each API process "
        "(1 worker) is pinned to core 0, the load generator to core 1 "
        f"({p['connections']} keep-alive connections); PostgreSQL and the Redis nodes are "
        "unpinned. The ratio's range is the lowest and highest of the rounds.",
    ]


def _hop_table(results: dict[str, Any]) -> list[str]:
    lines = [
        "| endpoint | single req/s | cluster req/s | cluster/single (rounds) "
        "| p50 ms single / cluster | p99 ms single / cluster "
        "| API CPU ms/req single / cluster | Redis CPU ms/req single / cluster "
        "| Redis commands/req single / cluster | hit ratio single / cluster | errors |",
        "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for endpoint, data in results["hop"].items():
        rows = rows_of(data)
        s, c = rows["single"], rows["cluster"]
        low, high = round_ratios(c, s)
        lines.append(
            f"| {TITLES.get(endpoint, endpoint)} | {s['rps']:,.0f} | {c['rps']:,.0f} "
            f"| **{ratio(c, s):.2f}** ({low:.2f}-{high:.2f}) "
            f"| {s['p50_ms']:.2f} / {c['p50_ms']:.2f} | {s['p99_ms']:.2f} / {c['p99_ms']:.2f} "
            f"| {s['server_cpu_ms_per_req']:.3f} / {c['server_cpu_ms_per_req']:.3f} "
            f"| {s['redis_cpu_ms_per_req']:.3f} / {c['redis_cpu_ms_per_req']:.3f} "
            f"| {_commands(s)} / {_commands(c)} | {_hit(s)} / {_hit(c)} "
            f"| {s['errors']} / {c['errors']}; {_cache_errors(s)} / {_cache_errors(c)} |"
        )
    return lines


def _hop_cpu(results: dict[str, Any]) -> list[str]:
    rows = [row for data in results["hop"].values() for row in data["rows"]]
    server = [row["server_cpu"] for row in rows]
    redis = {lb: [r["redis_cpu"] for r in rows if r["label"] == lb] for lb in ("single", "cluster")}
    others = [row["others_cpu"] for row in rows]
    db = max(row["db_queries_per_request"] for row in rows)
    return [
        f"The API process kept its core {min(server):.0%} to {max(server):.0%} busy; the single "
        f"Redis used {min(redis['single']):.2f} to {max(redis['single']):.2f} cores, the "
        f"cluster's six nodes {min(redis['cluster']):.2f} to {max(redis['cluster']):.2f}; "
        f"processes outside the bench {min(others):.2f} to {max(others):.2f} cores. At most "
        f"{db:.3f} SQL statements per request: these are cache hits.",
    ]


def _top(row: dict[str, Any], count: int = 5) -> str:
    found = row.get("redis_commands_by_name_per_request", {})
    return ", ".join(f"{k} {v:.2f}" for k, v in list(found.items())[:count]) or "-"


def _hop_commands(results: dict[str, Any]) -> list[str]:
    """What a request sent to Redis, by command, single beside cluster."""
    lines = [
        "Redis commands per request, by name (`INFO commandstats`, the most called first):",
        "",
        "| endpoint | single | cluster |",
        "|---|---|---|",
    ]
    for endpoint, data in results["hop"].items():
        rows = rows_of(data)
        title = TITLES.get(endpoint, endpoint)
        lines.append(f"| {title} | {_top(rows['single'])} | {_top(rows['cluster'])} |")
    return lines


def _workers_text(results: dict[str, Any]) -> list[str]:
    p, nproc = results["params"], results["machine"]["nproc"]
    rows = [row for data in results["workers"].values() for row in data["rows"]]
    gen = [row["loadgen_cpu"] for row in rows]
    beyond = (
        "more than 2 workers cannot scale at all here: a third and a fourth"
        if nproc <= 2
        else "workers beyond the free cores"
    )
    return [
        "Shop processes started with `orderflow serve shop --workers N` (uvicorn's supervisor "
        "and N worker processes on one port, each with its own near cache, doorkeeper and "
        "lifespan), all on the single Redis, on different ports, loaded in turn in every round "
        f"with {p['worker_connections']} connections. **No server is pinned**, the 1-worker "
        "one neither, so that the three differ only in their worker count; the load generator "
        "stays pinned to core 1, so that it runs the same way whatever the server does "
        "(unpinned, the kernel would move it among the workers). The 1-worker row is thus not "
        "the hop's, where the server has core 0 to itself and the generator core 1: here the "
        "kernel may put the worker beside the generator. The comparison stays fair because "
        f"the generator is cheap at these rates ({min(gen):.2f} to {max(gen):.2f} cores) and "
        "pinned identically for all three. "
        f"**This machine has {nproc} cores**, shared with the load generator, PostgreSQL, "
        f"Redis and other people's work, so {beyond} only add processes that share the same "
        "cores (and warm their near caches and doorkeepers separately). The ratios measure "
        "this machine's cores, not what workers give on a bigger host; the API cores column "
        "shows how much CPU the workers got together.",
    ]


def _workers_table(results: dict[str, Any]) -> list[str]:
    lines = [
        "| endpoint | workers | req/s | vs 1 worker (rounds) | p50 ms | p99 ms "
        "| API cores | API CPU ms/req | Redis cores | load generator cores | others | hit ratio "
        "| HTTP errors; cache errors |",
        "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for endpoint, data in results["workers"].items():
        rows = rows_of(data)
        one = rows.get("1")
        for label, row in rows.items():
            versus = "1.00"
            if one is not None and label != "1":
                low, high = round_ratios(row, one)
                versus = f"**{ratio(row, one):.2f}** ({low:.2f}-{high:.2f})"
            lines.append(
                f"| {TITLES.get(endpoint, endpoint)} | {label} | {row['rps']:,.0f} | {versus} "
                f"| {row['p50_ms']:.2f} | {row['p99_ms']:.2f} | {row['server_cpu']:.2f} "
                f"| {row['server_cpu_ms_per_req']:.3f} | {row['redis_cpu']:.2f} "
                f"| {row['loadgen_cpu']:.2f} | {row['others_cpu']:.2f} | {_hit(row)} "
                f"| {row['errors']}; {_cache_errors(row)} |"
            )
    return lines
