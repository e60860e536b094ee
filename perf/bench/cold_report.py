"""The cold-key section of docs/performance.md (`perf.bench.cold`)."""

from __future__ import annotations

from typing import Any

from perf.common import Machine

HEADING = "## Cold keys: cache off and on, nearly every read a miss (perf/bench/cold.py)"
KIND_TITLES = {
    "order": "Shop `GET /orders/{id}`",
    "client-orders": "Shop `GET /clients/{id}/orders`",
    "crm-client-orders": "CRM `GET /orders?client_id=`",
}
TARGET = 0.9  # on/off: a miss costs at most 10% over no cache at all
X = "\N{MULTIPLICATION SIGN}"


def rows_of(results: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {row["variant"]: row for row in results["kinds"].get(kind, {}).get("rows", [])}


def ratio(results: dict[str, Any], kind: str) -> float | None:
    """on/off of `kind`'s rates; None when one side was not measured."""
    rows = rows_of(results, kind)
    if "ours" not in rows or "off" not in rows or not rows["off"]["rps"]:
        return None
    return float(rows["ours"]["rps"] / rows["off"]["rps"])


def cpu_ms(row: dict[str, Any]) -> float:
    """The server's CPU time per answered request: steadier than req/s on a shared machine,
    where the server gets the cores the other tenants leave it."""
    return float(row["server_cpu"] * 1000 / row["rps"]) if row["rps"] else float("nan")


def section(results: dict[str, Any]) -> str:
    """Our whole section, heading included, ending in a newline."""
    parts = [HEADING, "", *_how(results), "", *_summary(results), "", *_machine_load(results)]
    for kind, title in KIND_TITLES.items():
        if kind in results["kinds"]:
            parts += ["", f"### {title}", "", *_kind_table(results, kind)]
    return "\n".join(parts) + "\n"


def _how(results: dict[str, Any]) -> list[str]:
    p, m = results["params"], results["machine"]
    machine = Machine.from_dict(m)
    load = ", ".join(f"{v:.2f}" for v in machine.load_average)
    return [
        f"`make bench` ran `{p['command'].strip()}` at commit `{p['commit']}`, "
        f"{p['started']} to {p['finished']}, on {p['orders']:,} orders. Machine: "
        f"{machine.line()}, load average at start {load}; PostgreSQL {m['postgresql']} and "
        f"Redis {m['redis']} (embedded). Raw results: [`docs/bench/cold.json`](bench/cold.json).",
        "",
        "The bench app of the read-path section (`perf/bench/app.py`: the platform's "
        "`create_app`, its middleware, pool and Redis client) calls the real service "
        "functions, `get_order`, `orders_of_client` and `list_orders(client_id=…)`, with a "
        "`Sales` context whose cache reads are **off** (PostgreSQL every time) or on "
        "(**ours**: orderflow.cache as the platform runs it; orders are never near-cached); "
        "for an order also **asyncpg**, the floor: the statement a miss runs "
        "(`repository.ORDER_BY_ID`) with `fetchrow` on a bare asyncpg pool, rendered the same "
        "way, through the same route and middleware. "
        "Keys are uniform over the whole data set and **never repeat**: the ids of a kind are "
        "shuffled and cut into disjoint runs, one for each share's warm-up and one for its "
        "measurement; the two list kinds name the same cache entries, so they split the "
        "clients between them; Redis is emptied before each kind. So every read with the "
        "cache on is a key's first sight, what a seller looking up a client at random meets: "
        "admission on second sight (`ORDERFLOW_CACHE_ADMIT_AFTER` at its default) sends it "
        "to PostgreSQL without a round trip to Redis, and the hit ratio column reads 0. What "
        "a miss that fills costs in round trips is in docs/caching.md.",
        "",
        f"uvicorn, 1 worker, uvloop + httptools, pinned to core 0; the closed-loop load "
        f"generator (`perf/bench/loadgen.py`, {p['connections']} keep-alive connections) "
        f"pinned to core 1; PostgreSQL and Redis unpinned. Per variant {p['warmup']:g} s of "
        f"warm-up and {p['seconds']:g} s measured, interleaved in {p['rounds']} rounds "
        "(off, on, off, on, …). Hit ratio: from `orderflow_cache_requests_total` (a list "
        "counts each entry it reads); DB q/req: `orderflow_db_queries_total` over requests; "
        "CPU: the server's and the load generator's cores, and *others*: cores taken by "
        "processes outside the bench (the machine is shared).",
    ]


def _summary(results: dict[str, Any]) -> list[str]:
    lines = [
        f"| endpoint | off req/s | on req/s | on/off (target ≥ {TARGET:g}) "
        "| server CPU ms/req off / on | floor: bare asyncpg req/s |",
        "|---|--:|--:|--:|--:|--:|",
    ]
    for kind, title in KIND_TITLES.items():
        rows = rows_of(results, kind)
        if not rows:
            continue
        off, on, r = rows.get("off"), rows.get("ours"), ratio(results, kind)
        verdict = "" if r is None else f"{'met' if r >= TARGET else '**missed**'} {r:.2f}"
        cpu = " / ".join(f"{cpu_ms(row):.2f}" if row else "-" for row in (off, on))
        floor = f"{rows['asyncpg']['rps']:,.0f}" if "asyncpg" in rows else ""
        lines.append(
            f"| {title} | {off['rps'] if off else 0:,.0f} | {on['rps'] if on else 0:,.0f} "
            f"| {verdict} | {cpu} | {floor} |"
        )
    return lines


def _machine_load(results: dict[str, Any]) -> list[str]:
    """How much of the machine other work took: the rates are the server's share of it."""
    rows = [row for kind in results["kinds"].values() for row in kind["rows"]]
    if not rows:
        return []
    others = [row["others_cpu"] for row in rows]
    server = [row["server_cpu"] for row in rows]
    return [
        f"Processes outside the bench took {min(others):.2f} to {max(others):.2f} of the "
        f"{results['machine']['nproc']} cores meanwhile, and the server's core was "
        f"{min(server):.0%} to {max(server):.0%} busy: the rates are what this server got of a "
        "shared machine. The ratios, and the CPU per request, are the figures to compare "
        "across runs.",
    ]


def _kind_table(results: dict[str, Any], kind: str) -> list[str]:
    data = results["kinds"][kind]
    lines = [
        f"{data['keys']:,} keys, {data['keys_per_share']:,} per measured share of a variant.",
        "",
        "| variant | req/s | server CPU ms/req | p50 ms | p99 ms | p99.9 ms | hit ratio "
        "| cache reads/req | DB q/req | errors | CPU server / gen / others |",
        "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for row in data["rows"]:
        cached = row["variant"] == "ours" and row["hit_ratio"] is not None
        hit = f"{row['hit_ratio']:.3f}" if cached else ""
        reads = row.get("cache_reads_per_request")
        lines.append(
            f"| {row['variant']} | {row['rps']:,.0f} | {cpu_ms(row):.2f} | {row['p50_ms']:.2f} "
            f"| {row['p99_ms']:.2f} | {row['p999_ms']:.2f} | {hit} "
            f"| {'' if reads is None else f'{reads:.2f}'} "
            f"| {row['db_queries_per_request']:.2f} | {row['errors']} "
            f"| {row['server_cpu']:.0%} / {row['loadgen_cpu']:.0%} / {row['others_cpu']:.2f} |"
        )
    return lines
