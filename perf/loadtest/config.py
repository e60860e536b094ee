"""Options of a load test, endpoint groups and the SLA they are judged against."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

Mode = Literal["off", "on"]
SlaClass = Literal["read", "place", "claim", "write"]
SERVICES = ("shop", "crm", "mes")
# A generator process busier than this (CPU seconds per wall second, 1.0 = one core) is itself
# the limit: its latencies include its own queueing, and more users add no load.
GENERATOR_SATURATED = 0.9

# Locust `name=` of every request: one endpoint group per route and query shape.
ITEM = "shop GET /items/{id}"
CATALOGUE = "shop GET /items?category"
REGISTER = "shop POST /clients"
OWN_CLIENT = "shop GET /clients/{id}"
OWN_ORDERS = "shop GET /clients/{id}/orders"
OWN_ORDER = "shop GET /orders/{id}"
PLACE = "shop POST /orders"
CANCEL = "shop POST /orders/{id}/cancel"
BY_STATUS = "crm GET /orders?status"
BY_CLIENT = "crm GET /orders?client_id"
BY_DATE = "crm GET /orders?created_from"
COUNTS = "crm GET /orders/stats"
CRM_ORDER = "crm GET /orders/{id}"
CONFIRM = "crm POST /orders/{id}/confirm"
QUEUE = "mes GET /orders?status=queued"
MINE = "mes GET /orders?operator_id"
CLAIM = "mes POST /orders/{id}/claim"
COMPLETE = "mes POST /orders/{id}/complete"

GROUPS = (
    ITEM, CATALOGUE, OWN_CLIENT, OWN_ORDERS, OWN_ORDER, PLACE, CANCEL, REGISTER,
    BY_STATUS, BY_CLIENT, BY_DATE, COUNTS, CRM_ORDER, CONFIRM,
    QUEUE, MINE, CLAIM, COMPLETE,
)  # fmt: skip


def sla_class(group: str) -> SlaClass:
    """Reads, order placement and claims have a p95 target; other writes are only reported."""
    if group in (PLACE, "probe " + PLACE):
        return "place"
    if group.endswith("/claim"):
        return "claim"
    return "read" if " GET " in group else "write"


@dataclass(frozen=True)
class Sla:
    read_ms: float = 50.0
    place_ms: float = 150.0
    claim_ms: float = 100.0
    max_errors: int = 0
    min_samples: int = 20  # fewer requests of a group at a step: its p95 is not judged

    def p95_limit(self, group: str) -> float | None:
        return {"read": self.read_ms, "place": self.place_ms, "claim": self.claim_ms}.get(
            sla_class(group)
        )


@dataclass(frozen=True)
class Options:
    urls: dict[str, str]  # service -> base URL
    start: bool | None = None  # None: start a platform only when /health does not answer
    data_dir: Path = Path(".orderflow")
    orders: int | None = None  # ORDERFLOW_SEED_ORDERS of a platform we start
    start_users: int = 5  # the ladder: start_users, x growth each step, up to max_users;
    growth: float = 1.5  # each mode climbs it until its SLA breaks
    max_users: int = 1000
    step_seconds: float = 30.0
    warmup_seconds: float = 30.0
    think_ms: float = 300.0
    probe_rate: float = 200.0
    probe_seconds: float = 20.0
    warm_items: bool = True  # cache on: read every item once first, as the quiet-window job does
    sla: Sla = field(default_factory=Sla)
    reports_dir: Path = Path("reports")
    docs: Path | None = Path("docs/performance.md")
    start_timeout_s: float = 1800.0
    modes: tuple[Mode, ...] = ("off", "on")
    pg_cpus: float | None = None  # PostgreSQL's CPU budget in cores (`pg_budget.py`)
    command: str = "python -m perf.loadtest"

    @property
    def ladder(self) -> tuple[int, ...]:
        """The users of every step a mode may climb, lowest first."""
        return ladder(self.start_users, self.growth, self.max_users)


def ladder(start: int, growth: float, ceiling: int) -> tuple[int, ...]:
    """`start`, then x `growth` each step (rounded, at least one more user), then `ceiling`:
    ladder(5, 1.5, 100) = (5, 8, 11, 17, 25, 38, 57, 85, 100)."""
    assert start >= 1, start
    assert growth > 1, growth
    assert ceiling >= start, (start, ceiling)
    steps, exact = [start], float(start)
    while steps[-1] < ceiling:
        exact *= growth
        steps.append(min(ceiling, max(steps[-1] + 1, round(exact))))
    return tuple(steps)
