"""What a claims run measured, typed: the figures, the checks, the latencies, the CPU."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, fields
from typing import ClassVar

from perf.bench.claims.data import Held
from perf.bench.claims.load import Attempt, Load
from perf.bench.claims.params import Params
from perf.common import CpuUse, Machine, percentile


@dataclass(frozen=True)
class Distribution:
    """A distribution in milliseconds; NaN where it is empty."""

    count: int
    p50: float
    p95: float
    p99: float
    max: float
    mean: float
    min: float
    share_below_0: float
    percentiles_0_to_100: list[float]

    @classmethod
    def of_seconds(cls, values_s: list[float]) -> Distribution:
        ordered = sorted(v * 1000 for v in values_s)
        n = len(ordered)
        return cls(
            count=n,
            p50=percentile(ordered, 50),
            p95=percentile(ordered, 95),
            p99=percentile(ordered, 99),
            max=ordered[-1] if n else math.nan,
            mean=sum(ordered) / n if n else math.nan,
            min=ordered[0] if n else math.nan,
            share_below_0=sum(1 for v in ordered if v < 0) / n if n else 0.0,
            percentiles_0_to_100=[percentile(ordered, p) for p in range(101)],
        )


@dataclass(frozen=True)
class Figures:
    successful_claims: int
    orders: int
    attempts: int
    responses_409: int
    statuses: dict[str, int]
    wall_time_s: float  # first claim sent to last answer
    claims_per_s: float
    attempts_per_s: float
    board_events_expected: int
    board_events_received: int
    board_events_after_last_answer: int
    boards_caught_up_s: float  # after the last answer


@dataclass(frozen=True)
class Checks:
    """Counts that must all be 0, except the INFORMATIVE ones: a board told to resync, and a
    claim whose connection broke (its order went back to the view and was claimed again, by a
    check PostgreSQL agrees with)."""

    two_http_200s: int
    two_assignments: int
    held_not_by_http_winner: int
    assigned_without_200: int
    board_saw_two_claimed_events: int
    board_event_names_another_operator: int
    events_missed_by_a_board: int
    non_200_409_responses: int
    claims_without_answer: int
    resync_events: int

    INFORMATIVE: ClassVar = ("claims_without_answer", "resync_events")
    LABELS: ClassVar = {
        "two_http_200s": "orders with two or more HTTP 200s",
        "two_assignments": "orders with two or more assignments in PostgreSQL",
        "held_not_by_http_winner": "orders held but not by the HTTP winner",
        "assigned_without_200": "orders assigned without an HTTP 200",
        "board_saw_two_claimed_events": "board saw two claimed events for one order",
        "board_event_names_another_operator": "board event naming another operator than the winner",
        "events_missed_by_a_board": "events missed by a board",
        "non_200_409_responses": "non-200/409 responses",
        "claims_without_answer": "claims with no HTTP answer (connection errors)",
        "resync_events": "resync events",
    }

    def labelled(self) -> dict[str, int]:
        return {self.LABELS[f.name]: getattr(self, f.name) for f in fields(self)}

    def failed(self) -> dict[str, int]:
        """The checks that failed, by label: a run cut short by --seconds is not failed."""
        return {
            self.LABELS[f.name]: getattr(self, f.name)
            for f in fields(self)
            if getattr(self, f.name) and f.name not in self.INFORMATIVE
        }


@dataclass(frozen=True)
class Latencies:
    """Claim-to-event over every (board, successful claim) pair, first arrival per pair."""

    sent_to_board: Distribution
    answered_to_board: Distribution
    sent_to_board_same_process: Distribution
    sent_to_board_other_process: Distribution
    sent_to_xadd: Distribution
    xadd_to_board: Distribution
    response_successful: Distribution
    response_every_attempt: Distribution
    loop_lag: Distribution

    LABELS: ClassVar = {
        "sent_to_board": "claim sent -> event on board",
        "answered_to_board": "claim answered -> event on board",
        "sent_to_board_same_process": "claim sent -> event, board on the claim's process",
        "sent_to_board_other_process": "claim sent -> event, board on another process",
        "sent_to_xadd": "claim sent -> XADD to the stream (stream id, ms)",
        "xadd_to_board": "XADD to the stream -> event on board (stream id, ms)",
        "response_successful": "claim response time, successful claims",
        "response_every_attempt": "claim response time, every attempt",
        "loop_lag": "benchmark client event-loop lag (10 ms ticks)",
    }

    def labelled(self) -> dict[str, Distribution]:
        return {self.LABELS[f.name]: getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True)
class CpuCores:
    """Cores used on average during the claims; None: a configured server, not ours."""

    mes_processes: float
    benchmark_client: float
    postgresql: float | None
    redis: float | None
    other_processes: float  # the machine is shared: other tenants
    machine_busy: float  # all processes, all tenants

    @classmethod
    def of(cls, use: CpuUse) -> CpuCores:
        measured = use.seconds
        return cls(
            mes_processes=use.cores("MES processes"),
            benchmark_client=use.cores("benchmark client"),
            postgresql=use.cores("PostgreSQL") if "PostgreSQL" in measured else None,
            redis=use.cores("Redis") if "Redis" in measured else None,
            other_processes=use.others_cores,
            machine_busy=use.busy_cores,
        )


@dataclass(frozen=True)
class FailedAttempt:
    """A claim answered neither 200 nor 409; times in seconds from the start of the claims."""

    order_id: int
    operator_id: int
    process: int
    sent: float
    received: float
    status: int  # 0: no HTTP answer
    error: str | None


@dataclass(frozen=True)
class ClaimsResult:
    benchmark: str
    started_at: str
    command: str
    parameters: Params
    machine: Machine
    postgresql_embedded: bool
    redis_embedded: bool
    figures: Figures
    checks: Checks
    latency_ms: Latencies
    cpu_cores: CpuCores
    errors: list[FailedAttempt]  # the first 20


def checks(load: Load, held: list[Held]) -> Checks:
    winners: dict[int, list[int]] = {}
    for a in load.successes():
        winners.setdefault(a.order_id, []).append(a.operator_id)
    arrivals = [(oid, events) for b in load.boards for oid, events in b.claimed.items()]
    return Checks(
        two_http_200s=sum(1 for w in winners.values() if len(w) > 1),
        two_assignments=sum(1 for h in held if h.assignments > 1),
        held_not_by_http_winner=sum(
            1 for h in held if h.order_id in winners and h.operator_id != winners[h.order_id][0]
        ),
        assigned_without_200=sum(
            1 for h in held if h.assignments > 0 and h.order_id not in winners
        ),
        board_saw_two_claimed_events=sum(1 for _, events in arrivals if len(events) > 1),
        board_event_names_another_operator=sum(
            1
            for oid, events in arrivals
            if oid in winners and any(e[1] != winners[oid][0] for e in events)
        ),
        events_missed_by_a_board=sum(
            1 for b in load.boards for oid in winners if oid not in b.claimed
        ),
        non_200_409_responses=sum(1 for a in load.attempts if a.status not in (0, 200, 409)),
        claims_without_answer=sum(1 for a in load.attempts if a.status == 0),
        resync_events=sum(b.resyncs for b in load.boards),
    )


def latencies(load: Load) -> Latencies:
    from_sent: list[float] = []
    from_answer: list[float] = []
    same: list[float] = []
    other: list[float] = []
    to_stream: dict[int, float] = {}
    from_stream: list[float] = []
    for a in load.successes():
        for board in load.boards:
            arrivals = board.claimed.get(a.order_id)
            if not arrivals:
                continue  # counted as missed by the checks
            arrived, _, published_ms = arrivals[0]
            published = published_ms / 1000 - load.wall_offset  # on the perf_counter clock
            from_sent.append(arrived - a.sent)
            from_answer.append(arrived - a.received)
            (same if board.process == a.process else other).append(arrived - a.sent)
            to_stream[a.order_id] = published - a.sent
            from_stream.append(arrived - published)
    of = Distribution.of_seconds
    return Latencies(
        sent_to_board=of(from_sent),
        answered_to_board=of(from_answer),
        sent_to_board_same_process=of(same),
        sent_to_board_other_process=of(other),
        sent_to_xadd=of(list(to_stream.values())),
        xadd_to_board=of(from_stream),
        response_successful=of([a.received - a.sent for a in load.successes()]),
        response_every_attempt=of([a.received - a.sent for a in load.attempts]),
        loop_lag=of(load.loop_lag),
    )


def figures(load: Load) -> Figures:
    statuses = Counter(a.status for a in load.attempts)
    wall, late, caught_up = math.nan, 0, math.nan
    if load.attempts:
        last_answer = max(a.received for a in load.attempts)
        wall = last_answer - min(a.sent for a in load.attempts)
        # How far the boards were behind when the last claim was answered.
        arrivals = [events[0][0] for b in load.boards for events in b.claimed.values()]
        late = sum(1 for t in arrivals if t > last_answer)
        caught_up = max([*arrivals, last_answer]) - last_answer
    return Figures(
        successful_claims=statuses[200],
        orders=load.params.orders,
        attempts=len(load.attempts),
        responses_409=statuses[409],
        statuses={str(k): v for k, v in sorted(statuses.items())},
        wall_time_s=wall,
        claims_per_s=statuses[200] / wall if wall else math.nan,
        attempts_per_s=len(load.attempts) / wall if wall else math.nan,
        board_events_expected=statuses[200] * len(load.boards),
        board_events_received=sum(len(b.claimed) for b in load.boards),
        board_events_after_last_answer=late,
        boards_caught_up_s=caught_up,
    )


def failed_attempts(load: Load, limit: int = 20) -> list[FailedAttempt]:
    return [
        FailedAttempt(
            a.order_id,
            a.operator_id,
            a.process,
            a.sent - load.started,
            a.received - load.started,
            a.status,
            a.error,
        )
        for a in _failed(load.attempts)[:limit]
    ]


def _failed(attempts: list[Attempt]) -> list[Attempt]:
    return [a for a in attempts if a.status not in (200, 409)]
