"""The read-path section of docs/performance.md, and the targets it is judged against.

docs/performance.md is shared: other tools write their own `## ` sections. `section` is ours,
which `perf.common.write_section` puts in place of our old one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

HEADING = "## Read path, side by side (perf/bench/reads.py)"
KIND_TITLES = {
    "item": "An item: Shop `GET /items/{id}`",
    "catalogue": "A catalogue page: Shop `GET /items?category=…&limit=20`",
    "orders": "A CRM list by status: CRM `GET /orders?status=…&limit=20`",
    "counts": "Counts by status: CRM `GET /orders/stats`",
}
X = "\N{MULTIPLICATION SIGN}"  # spelled out: ruff flags the bare sign as ambiguous
LOADGEN_MARGIN = 1.5  # the load generator must reach this many times the best app rate
FACTS_FRAMEWORK_RPS = 10_700  # /work/shared/FACTS.md: uvicorn pinned, wrk -c32, 526 bytes


@dataclass(frozen=True)
class Target:
    """A ratio the project aims for, on some kinds: `value(rows)` against `limit`."""

    key: str
    text: str
    kinds: tuple[str, ...]
    value: Callable[[dict[str, dict[str, Any]]], float | None]
    limit: float
    at_least: bool = True  # False: the value must stay at or below `limit`

    def met(self, value: float) -> bool:
        return value >= self.limit if self.at_least else value <= self.limit


def _rps_ratio(a: str, b: str) -> Callable[[dict[str, dict[str, Any]]], float | None]:
    def ratio(rows: dict[str, dict[str, Any]]) -> float | None:
        if a not in rows or b not in rows or not rows[b]["rps"]:
            return None
        return float(rows[a]["rps"] / rows[b]["rps"])

    return ratio


def _p99_ratio(rows: dict[str, dict[str, Any]]) -> float | None:
    if "ours" not in rows or "ceiling" not in rows:
        return None
    return float(rows["ours"]["p99_ms"] / rows["ceiling"]["p99_ms"])


ALL = ("item", "catalogue", "orders", "counts")
TARGETS = (
    Target("near_vs_ceiling", f"near-cache hit ≥ 0.9{X} ceiling", ("item", "catalogue"),
           _rps_ratio("near", "ceiling"), 0.9),
    Target("redis_vs_ceiling", f"Redis hit ≥ 0.5{X} ceiling (bare GET)", ALL,
           _rps_ratio("redis", "ceiling"), 0.5),
    Target("ours_vs_redis", f"ours ≤ 10% slower than bare Redis GET (≥ 0.9{X})", ALL,
           _rps_ratio("ours", "redis"), 0.9),
    Target("ours_vs_cashews", f"ours ≥ 1.4{X} cashews", ALL, _rps_ratio("ours", "cashews"), 1.4),
    Target("p99_vs_ceiling", f"p99 of ours ≤ 2{X} ceiling p99", ALL, _p99_ratio, 2.0,
           at_least=False),
    Target("lists_vs_off", f"CRM list by status and counts: ours ≥ 20{X} off",
           ("orders", "counts"), _rps_ratio("ours", "off"), 20.0),
    Target("catalogue_vs_off", f"catalogue page: ours ≥ 5{X} off", ("catalogue",),
           _rps_ratio("ours", "off"), 5.0),
    Target("ours_redis_vs_redis", f"ours-redis (near cache off) ≥ 0.9{X} bare Redis GET", ALL,
           _rps_ratio("ours-redis", "redis"), 0.9),
)  # fmt: skip


def rows_of(results: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {row["variant"]: row for row in results["kinds"].get(kind, {}).get("rows", [])}


def targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Every (target, kind) with its measured value and whether it is met."""
    judged = []
    for target in TARGETS:
        for kind in target.kinds:
            value = target.value(rows_of(results, kind))
            if value is not None:
                judged.append(
                    {
                        "target": target.key,
                        "text": target.text,
                        "kind": kind,
                        "value": round(value, 3),
                        "limit": target.limit,
                        "met": target.met(value),
                    }
                )
    return judged


def section(results: dict[str, Any]) -> str:
    """Our whole section, heading included, ending in a newline."""
    parts = [HEADING, "", *_how(results), "", *_loadgen(results), "", *_targets_table(results)]
    for kind, title in KIND_TITLES.items():
        if kind in results["kinds"]:
            parts += ["", f"### {title}", "", *_kind_table(results, kind)]
    if results.get("probes"):
        parts += ["", *_probes(results)]
    return "\n".join(parts) + "\n"


def _how(results: dict[str, Any]) -> list[str]:
    p, m = results["params"], results["machine"]
    return [
        f"`make bench` ran `{p['command'].strip()}` at commit `{p['commit']}`, "
        f"{p['started']} to {p['finished']}, on {p['orders']:,} orders, the server's tracing "
        f"{p.get('tracing', 'off')} (`--tracing`: off, on, 1%, 100%; docs/tracing.md). "
        "Raw results: [`docs/bench/reads.json`](bench/reads.json).",
        "",
        "One bench app (`perf/bench/app.py`) built by the platform's own `create_app` (the Shop's "
        "and CRM's middleware, error handlers, engine pool and Redis client) serves every "
        "variant through one route, `GET /r/{variant}/{kind}/{key}`, so that routing costs the "
        "same for all: **ceiling** answers the same number of pre-serialised bytes from memory; "
        "**off** calls the real service function (`get_item`, `search_items`, `list_orders`, "
        "`counts_by_status`) with a `Sales` context whose ServiceCache reads are off "
        "(PostgreSQL every time); **ours** calls it with reads on, as the platform runs it "
        "(orderflow.cache, with the in-process near cache for items and catalogue pages; every "
        "key is warmed first, so all hits; the near copies live 5 s, so some hits are Redis "
        "hits); **near** (items and catalogue pages) the same with the near cache's TTL as "
        "long as the run, so every read is a near hit: the near cache's hit path alone; "
        "**ours-redis** the same with the near cache off "
        "(every hit from Redis); **redis** is one bare `await redis.get(key)` of the "
        "same bytes with the platform's client (`kit/redis.py`: redis-py asyncio, hiredis); "
        "**cashews** is cashews' `@cache` (library defaults) around the *off* loader, on the "
        "same Redis.",
        "",
        f"uvicorn, 1 worker, uvloop + httptools, no access log, pinned to core 0; the "
        f"pure-Python closed-loop load generator (`perf/bench/loadgen.py`, {p['connections']} "
        f"keep-alive connections) pinned to core 1; PostgreSQL {m['postgresql']} and Redis "
        f"{m['redis']} run unpinned on the same two cores. Per variant: {p['warmup']:g} s of "
        f"warm-up load and {p['seconds']:g} s measured, interleaved: {p['rounds']} rounds each "
        "give every variant of a kind its share in turn, and a variant's shares are merged "
        "(latencies pooled), so that a neighbour's burst spreads over all variants instead "
        "of sinking one. Item ids are "
        + (f"Zipf-distributed (s = {p['zipf']:g})" if p["zipf"] > 0 else "uniform")
        + " over the catalogue; categories and statuses are uniform. Hit ratio: for *ours* "
        "from `orderflow_cache_requests_total`, near-cache hits included and their share in "
        "brackets (per cache entry: a CRM list reads its id page "
        "and 20 order entries), for *redis* and *cashews* from their loader calls. DB q/req: "
        "`orderflow_db_queries_total` over requests. CPU: the server's and the load "
        "generator's core time over wall time (100% = the core is saturated). The machine is "
        "shared: *others* is how many cores processes outside the bench took meanwhile "
        "(machine busy time less the bench's process tree); rates measured while it is well "
        "above 0 are depressed. Before each share the bench waits up to "
        f"{p['quiet_wait'] / p['rounds']:g} s for the others to drop under 0.3 cores. "
        "The database pool-wait and statement "
        f"timeouts are raised to {p['db_timeouts_s']:g} s, so that *off* queues in PostgreSQL "
        "instead of answering fast 503s; the cached paths never come near them.",
    ]


def _loadgen(results: dict[str, Any]) -> list[str]:
    gen = results["loadgen"]
    best = max(
        (row["rps"] for kind in results["kinds"].values() for row in kind["rows"]), default=0.0
    )
    margin = gen["rps"] / best if best else float("inf")
    verdict = (
        "so it is not the bottleneck"
        if margin >= LOADGEN_MARGIN
        else "**so it may be the bottleneck of the fastest variants: treat their rates as "
        "lower bounds**"
    )
    return [
        f"**Load generator ceiling:** {gen['rps']:,.0f} req/s (p99 {gen['p99_ms']:.2f} ms, "
        f"its core {gen['loadgen_cpu']:.0%} busy) against a trivial asyncio server answering "
        f"{gen['body_bytes']} bytes on the server's core: {margin:.1f}{X} the fastest variant "
        f"below ({best:,.0f} req/s), {verdict}.",
        *_framework(results),
    ]


def _framework(results: dict[str, Any]) -> list[str]:
    frame = results.get("framework")
    if not frame:
        return []
    return [
        "",
        f"**Framework ceiling:** a bare FastAPI app (one route, the same bytes, no middleware) "
        f"answered {frame['rps']:,.0f} req/s (p99 {frame['p99_ms']:.2f} ms, server core "
        f"{frame['server_cpu']:.0%}, others {frame['others_cpu']:.2f} cores). FACTS.md "
        f"measured {FACTS_FRAMEWORK_RPS:,} req/s on this machine kind: this machine ran at "
        f"{frame['rps'] / FACTS_FRAMEWORK_RPS:.2f}{X} that speed during the run. Compare the "
        "ratios below, not the absolute rates, with other days and machines.",
    ]


def _targets_table(results: dict[str, Any]) -> list[str]:
    judged = results["targets"]
    kinds = [k for k in KIND_TITLES if k in results["kinds"]]
    lines = [
        "### Targets",
        "",
        "The ratios the project aims for, measured on *ours* as deployed: the in-process "
        "near cache (5 s TTL) serves items and catalogue pages, the CRM list and the counts "
        "are Redis hits. The last row holds the Redis-backed path (*ours-redis*, near cache "
        "off) to the bare GET target too.",
        "",
        "| target | " + " | ".join(kinds) + " |",
        "|---|" + "---|" * len(kinds),
    ]
    for target in TARGETS:
        cells = []
        for kind in kinds:
            found = [j for j in judged if j["target"] == target.key and j["kind"] == kind]
            if not found:
                cells.append("")
                continue
            j = found[0]
            cells.append(f"{'met' if j['met'] else '**missed**'} {j['value']:.2f}{X}")
        lines.append(f"| {target.text} | " + " | ".join(cells) + " |")
    return lines


def _kind_table(results: dict[str, Any], kind: str) -> list[str]:
    data = results["kinds"][kind]
    rows = rows_of(results, kind)
    ceiling, off = rows.get("ceiling"), rows.get("off")
    warm = data["warm"]
    lines = [
        f"{warm['keys']:,} key{'' if warm['keys'] == 1 else 's'}, "
        f"{warm['bytes']:,}-byte body (the ceiling's)."
        + (f" **Bodies differ from off: {warm['differ']}.**" if warm["differ"] else ""),
        "",
        f"| variant | req/s | p50 ms | p99 ms | p99.9 ms | {X} ceiling | {X} off | hit ratio "
        "| DB q/req | errors | full GCs (longest ms) | CPU server / gen / others |",
        "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for row in data["rows"]:
        lines.append(_row(row, ceiling, off))
    return lines


def _row(row: dict[str, Any], ceiling: dict[str, Any] | None, off: dict[str, Any] | None) -> str:
    def times(base: dict[str, Any] | None) -> str:
        return f"{row['rps'] / base['rps']:.2f}" if base and base["rps"] else ""

    hit = "" if row["hit_ratio"] is None else f"{row['hit_ratio']:.3f}"
    if row.get("near_hit_ratio"):
        hit += f" (near {row['near_hit_ratio']:.3f})"
    return (
        f"| {row['variant']} | {row['rps']:,.0f} | {row['p50_ms']:.2f} | {row['p99_ms']:.2f} "
        f"| {row['p999_ms']:.2f} | {times(ceiling)} | {times(off)} | {hit} "
        f"| {row['db_queries_per_request']:.2f} | {row['errors']} | {_gc(row)} | {_cpu(row)} |"
    )


def _gc(row: dict[str, Any]) -> str:
    """Full (generation-2) collections in the window, and the longest pause of any."""
    return f"{row['gc_collections'][2]} ({max(row['gc_max_pause_ms']):.0f})"


def _cpu(row: dict[str, Any]) -> str:
    return f"{row['server_cpu']:.0%} / {row['loadgen_cpu']:.0%} / {row['others_cpu']:.2f}"


def _probes(results: dict[str, Any]) -> list[str]:
    probes = results["probes"]
    ceiling = rows_of(results, "item").get("ceiling")
    lines = [
        "### The Redis p99 tail: a bare GET of an item, clients and collector varied",
        "",
        "Each client differs from the platform's (`kit`, built by `kit/redis.py`) in one "
        "setting: `defaults` is `Redis.from_url(url)` as is (no timeouts, unbounded pool); "
        "`no-timeout` has `socket_timeout=None`; `no-health-check` has "
        "`health_check_interval=0`; `pool-8` a `BlockingConnectionPool` of 8 connections; "
        "`single` one shared connection (`single_connection_client=True`). The server runs as "
        "`create_app` sets it up: everything alive after start-up frozen (`gc.freeze()`). "
        "`kit+gc-unfreeze` is the platform's client with that undone for the measurement "
        "(the state before the fix); `kit+gc-off` with the collector disabled. Each slice "
        "starts after a full collection.",
        "",
        f"| client | req/s | p50 ms | p99 ms | p99.9 ms | max ms | {X} ceiling "
        "| full GCs (longest ms) | objects tracked | CPU server / gen / others |",
        "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for row in probes:
        ratio = f"{row['rps'] / ceiling['rps']:.2f}" if ceiling else ""
        lines.append(
            f"| {row['probe']} | {row['rps']:,.0f} | {row['p50_ms']:.2f} | {row['p99_ms']:.2f} "
            f"| {row['p999_ms']:.2f} | {row['max_ms']:.1f} | {ratio} | {_gc(row)} "
            f"| {row['gc_tracked_objects']:,} | {_cpu(row)} |"
        )
    return [*lines, "", *_tail_findings(results)]


def _tail_findings(results: dict[str, Any]) -> list[str]:
    """What the probe rows say, in numbers (the prose around them is in the caller)."""
    probes = {row["probe"]: row for row in results["probes"]}
    kit, unfrozen = probes.get("kit"), probes.get("kit+gc-unfreeze")
    off = probes.get("kit+gc-off")
    if not (kit and unfrozen and off):
        return []
    clients = [r for name, r in probes.items() if "+gc-" not in name]
    spread = (min(r["p99_ms"] for r in clients), max(r["p99_ms"] for r in clients))
    return [
        f"**Reading.** As deployed (start-up objects frozen), the bare GET's p99 is "
        f"{kit['p99_ms']:.1f} ms: {kit['gc_collections'][2]} full collections walking "
        f"{kit['gc_tracked_objects']:,} objects, the longest pause "
        f"{max(kit['gc_max_pause_ms']):.0f} ms. Unfrozen, as before that fix, a full "
        f"collection walks {unfrozen['gc_tracked_objects']:,} objects (the framework, the "
        f"app): {unfrozen['gc_collections'][2]} of them, the longest pause "
        f"{max(unfrozen['gc_max_pause_ms']):.0f} ms, and the p99 is {unfrozen['p99_ms']:.1f} ms. "
        f"With the collector off: {off['p99_ms']:.1f} ms. Across the client settings the p99 "
        f"goes from {spread[0]:.1f} to {spread[1]:.1f} ms. A request that awaits I/O keeps "
        "its objects alive across young collections, so they are promoted, and CPython 3.11 "
        "runs a full collection whenever the promoted objects reach a quarter of the old "
        "generation: Redis-backed endpoints trigger full collections, the ceiling (which "
        "never awaits) almost none.",
    ]
