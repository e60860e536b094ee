"""The claims' section of docs/performance.md, and the summary printed after a run."""

from __future__ import annotations

import math

from perf.bench.claims.results import Checks, ClaimsResult, Distribution
from perf.common import log

HEADING = "## MES claims (perf/bench/claims)"


def fmt(value: float | None, digits: int = 1) -> str:
    return "n/a" if value is None or math.isnan(value) else f"{value:,.{digits}f}"


def section(r: ClaimsResult) -> str:
    """Our whole section, heading included, ending in a newline."""
    out = [HEADING, "", *_intro(r)]
    out += ["", "| figure | value |", "|---|---|"]
    out += [f"| {name} | {value} |" for name, value in _figure_rows(r)]
    out += ["", "| latency, ms | pairs | p50 | p95 | p99 | max |", "|---|---|---|---|---|---|"]
    for name, d in r.latency_ms.labelled().items():
        cells = " | ".join(fmt(v) for v in (d.p50, d.p95, d.p99, d.max))
        out.append(f"| {name} | {d.count:,} | {cells} |")
    out += ["", "| CPU during the claims, cores | |", "|---|---|"]
    out += [f"| {name} | {fmt(v, 2)} |" for name, v in _cpu_rows(r)]
    out += ["", *(f"- {line}" for line in meaning(r)), ""]
    return "\n".join(out) + "\n"


def _intro(r: ClaimsResult) -> list[str]:
    p, m = r.parameters, r.machine
    where = "embedded, started by the benchmark" if r.postgresql_embedded else "configured"
    command = f"`make bench-claims` (= `{r.command}`)" if p.is_default() else f"`{r.command}`"
    return [
        f"Run {r.started_at}: {command}. PostgreSQL {m.postgresql} ({where}, fsync on), "
        f"Redis {m.redis}.",
        "",
        f"{p.processes} `orderflow serve mes` processes (one uvicorn worker each, default "
        f"settings) share the databases and Redis. {p.orders:,} production orders are "
        "inserted `queued` straight into `mesdb.production_orders` (no Shop, CRM or relay: "
        f"only the claim path is measured). {p.operators} operators (httpx, keep-alive; "
        f"operator i on process i mod {p.processes}) claim random orders among those the "
        f"boards still show queued; {p.boards} boards (SSE `GET /events`, board j on process "
        f"j mod {p.processes}) stamp each event with `time.perf_counter()` in the operators' "
        "process. Raw figures: `docs/bench/claims.json`.",
    ]


def _figure_rows(r: ClaimsResult) -> list[tuple[str, str]]:
    f, c, p = r.figures, r.checks, r.parameters
    capped = "" if f.successful_claims == f.orders else f" (`--seconds {p.seconds:g}` cap)"
    return [
        ("claimed orders", f"{f.successful_claims:,} of {f.orders:,}{capped}"),
        ("wall time (first claim sent to last answer)", f"{fmt(f.wall_time_s, 2)} s"),
        ("**claims/s** (successful claims / wall time)", f"**{fmt(f.claims_per_s, 0)}**"),
        ("attempts/s", fmt(f.attempts_per_s, 0)),
        ("409 (race lost, holder named)", f"{f.responses_409:,}"),
        ("non-200/409 responses", str(c.non_200_409_responses)),
        (Checks.LABELS["claims_without_answer"], str(c.claims_without_answer)),
        (
            "double claims: orders with two 200s / two assignments / two events on a board",
            f"{c.two_http_200s} / {c.two_assignments} / {c.board_saw_two_claimed_events}",
        ),
        (
            "holder in PostgreSQL ≠ HTTP winner; assigned without a 200",
            f"{c.held_not_by_http_winner}; {c.assigned_without_200}",
        ),
        (
            "events missed by a board",
            f"{c.events_missed_by_a_board} of {f.board_events_expected:,} "
            f"(resyncs: {c.resync_events})",
        ),
        (
            "board events that arrived after the last claim was answered",
            f"{f.board_events_after_last_answer:,}; caught up "
            f"{fmt(f.boards_caught_up_s, 2)} s after it",
        ),
    ]


def _cpu_rows(r: ClaimsResult) -> list[tuple[str, float]]:
    cpu = r.cpu_cores
    rows = [
        ("MES processes", cpu.mes_processes),
        ("benchmark client", cpu.benchmark_client),
        ("PostgreSQL", cpu.postgresql),
        ("Redis", cpu.redis),
        ("other processes on the machine", cpu.other_processes),
        ("machine busy (all processes, all tenants)", cpu.machine_busy),
    ]
    return [(name, value) for name, value in rows if value is not None]


def meaning(r: ClaimsResult) -> list[str]:
    """The 3-5 lines under the tables, from the figures themselves."""
    return [_agreement(r), _cpu_bound(r), _queueing(r), _split_at_xadd(r), _noise(r)]


def _agreement(r: ClaimsResult) -> str:
    f, c = r.figures, r.checks
    if bad := c.failed():
        line = f"**Checks failed**: {', '.join(f'{k}: {v}' for k, v in bad.items())}."
    else:
        line = (
            f"Every one of the {f.successful_claims:,} claimed orders has exactly one holder: "
            f"{f.responses_409:,} of {f.attempts:,} attempts lost a race and got 409; "
            "PostgreSQL's assignments, the HTTP winners and every board's events agree, and no "
            "board missed an event."
        )
    if broken := c.claims_without_answer:
        line += (
            f" {broken} claim(s) got no HTTP answer (the connection failed, see `errors` in the "
            "JSON); the order went back to the operators' view and was claimed again."
        )
    return line


def _cpu_bound(r: ClaimsResult) -> str:
    cpu, cores = r.cpu_cores, r.machine.nproc
    busy = cpu.machine_busy / cores
    where = (
        f"MES {fmt(cpu.mes_processes, 2)} cores, benchmark client "
        f"{fmt(cpu.benchmark_client, 2)}, PostgreSQL {fmt(cpu.postgresql, 2)}, "
        f"Redis {fmt(cpu.redis, 2)}"
    )
    verdict = (
        "so the rate is bounded by the CPU this run got, shared with the client and other tenants"
        if busy >= 0.85
        else "so CPU was not the only limit: commit latency and lost races count too"
    )
    return (
        f"{fmt(r.figures.claims_per_s, 0)} claims/s with {r.parameters.processes} MES "
        f"processes; the {cores} cores were {fmt(busy * 100, 0)}% busy ({where}, other "
        f"tenants {fmt(cpu.other_processes, 2)}), {verdict}."
    )


def _queueing(r: ClaimsResult) -> str:
    f, lat, operators = r.figures, r.latency_ms, r.parameters.operators
    sent = lat.sent_to_board
    return (
        f"Operators claim back to back (a closed loop), so the mean claim response time is "
        f"{operators} operators / {fmt(f.attempts_per_s, 0)} attempts/s = "
        f"{fmt(operators / f.attempts_per_s * 1000, 0)} ms (measured "
        f"{fmt(lat.response_every_attempt.mean, 0)} ms): latencies grow with N at a given "
        "rate, they are mostly queueing, not the cost of one claim; a board shows a claim "
        f"{fmt(sent.p50, 0)} ms (p50) / {fmt(sent.p99, 0)} ms (p99) after it was sent."
    )


def _split_at_xadd(r: ClaimsResult) -> str:
    f, lat = r.figures, r.latency_ms
    lag = lat.loop_lag
    where = (
        f"of which this client's own event-loop lag is a part (p50 {fmt(lag.p50, 0)}, p99 "
        f"{fmt(lag.p99, 0)} ms)"
    )
    if lat.xadd_to_board.p50 > 10 * max(lag.p99, 1.0):
        where = (
            f"a delay not in this client (its event-loop lag p99 {fmt(lag.p99, 0)} ms) but in "
            f"the MES processes' SSE delivery: {f.board_events_after_last_answer:,} of "
            f"{f.board_events_expected:,} board events came after the last claim was "
            f"answered, the boards caught up {fmt(f.boards_caught_up_s)} s later; delivery "
            "falls behind while the processes are busy with claims (likely: each event "
            "crosses several tasks per board in FastAPI's SSE path, one at a time)"
        )
    return (
        f"Split at the XADD (a stream id carries Redis's clock): sent -> published p50 "
        f"{fmt(lat.sent_to_xadd.p50, 0)} ms, published -> on a board p50 "
        f"{fmt(lat.xadd_to_board.p50, 0)} / p99 {fmt(lat.xadd_to_board.p99, 0)} ms, {where}."
    )


def _noise(r: ClaimsResult) -> str:
    return (
        "One run on a shared, noisy machine (load average "
        f"{r.machine.load_average[0]:.2f} at start), the operators' and "
        "boards' event loop on the same cores: read the figures as orders of magnitude, and "
        "the tails as including client-side scheduling."
    )


def print_summary(r: ClaimsResult) -> None:
    f = r.figures
    log("")
    log(
        f"claims/s {fmt(f.claims_per_s, 0)}, attempts/s {fmt(f.attempts_per_s, 0)}, "
        f"409 {f.responses_409}, wall {fmt(f.wall_time_s, 2)} s"
    )
    for name, d in r.latency_ms.labelled().items():
        log(_summary_line(name, d))
    for name, value in r.checks.labelled().items():
        log(f"  {name:<52} {value}")


def _summary_line(name: str, d: Distribution) -> str:
    return (
        f"  {name:<52} p50 {fmt(d.p50):>7}  p95 {fmt(d.p95):>7}  "
        f"p99 {fmt(d.p99):>7}  max {fmt(d.max):>7} ms"
    )
