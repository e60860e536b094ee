"""The verdict of a fault run: every count that must be 0, from the history (`checks.py`),
PostgreSQL and the quiet end (`rest.py`)."""

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from tests.faults.checks import stale_after_409, stale_counts, stale_list_reads, stale_reads
from tests.faults.history import Call, Failover, History


@dataclass
class Verdict:
    requests: int
    answered: int
    unanswered: int
    orders_acknowledged: int
    lost_orders: list[str]
    duplicate_orders: list[str]
    wrong_lines: list[str]
    not_in_mes: list[int]
    not_ready: list[int]
    stale_reads: list[tuple[str, int, int, int]]
    stale_after_409: list[tuple[str, int, str, str]]
    stale_list_reads: list[Any]
    stale_counts: list[str]
    stale_at_rest: list[str]
    double_claims: list[int]
    server_errors: list[Call]
    bad_503s: list[Call]
    slowest_s: float
    failovers: list[Failover] = field(default_factory=list)  # not failures: measured

    @staticmethod
    def failure_fields() -> dict[str, str]:
        """Each count that must be 0: its name in the table -> the field listing the cases."""
        return {
            "lost orders": "lost_orders",
            "duplicate orders": "duplicate_orders",
            "orders with wrong lines": "wrong_lines",
            "confirmed, not in MES": "not_in_mes",
            "completed, not ready": "not_ready",
            "stale reads": "stale_reads",
            "stale after 409": "stale_after_409",
            "stale list reads": "stale_list_reads",
            "stale counts": "stale_counts",
            "stale at rest": "stale_at_rest",
            "double claims": "double_claims",
            "500s": "server_errors",
            "503s without problem+json": "bad_503s",
        }

    def failures(self) -> dict[str, int]:
        return {name: len(getattr(self, f)) for name, f in self.failure_fields().items()}


def check(
    history: History,
    *,
    orders_by_key: dict[str, list[dict[str, Any]]],
    production: dict[int, int],
    shop_status: dict[int, str],
    overlapping_holders: list[int],
    baseline: dict[str, dict[str, int]],
    at_rest: dict[str, list[str]],
) -> Verdict:
    """`orders_by_key`: ShopDB orders (with lines) per idempotency key; `production`: MES
    'queued' history rows per order; `shop_status`: ShopDB status per order id; `baseline`:
    counts by status before the load; `at_rest`: what the quiet end found differing from
    PostgreSQL (`rest.py`: entries, lists, counts)."""
    lost = [
        f"{k}: order {order['id']} (v{order['version']})"
        for k, order in history.placed.items()
        if not orders_by_key.get(k)
    ]
    duplicates = [k for k, rows in orders_by_key.items() if len(rows) > 1]
    wrong = [
        k
        for k, order in history.placed.items()
        if orders_by_key.get(k) and _lines(orders_by_key[k][0]) != _lines(history.requested[k])
    ]
    statuses = Counter(c.status for c in history.calls)
    return Verdict(
        requests=len(history.calls),
        answered=sum(n for s, n in statuses.items() if s is not None),
        unanswered=statuses[None],
        orders_acknowledged=len(history.placed),
        lost_orders=lost,
        duplicate_orders=duplicates,
        wrong_lines=wrong,
        not_in_mes=[o for o in history.confirmed if production.get(o) != 1],
        not_ready=[
            o
            for o in history.completed
            if shop_status.get(o) not in ("ready", "shipped", "delivered")
        ],
        stale_reads=stale_reads(history),
        stale_after_409=stale_after_409(history),
        stale_list_reads=stale_list_reads(history) + at_rest["lists"],
        stale_counts=stale_counts(history, baseline) + at_rest["counts"],
        stale_at_rest=at_rest["entries"],
        double_claims=overlapping_holders,
        server_errors=[
            c for c in history.calls if c.status is not None and c.status >= 500 and c.status != 503
        ],
        bad_503s=[c for c in history.calls if c.status == 503 and not c.problem],
        slowest_s=max((c.ended - c.started for c in history.calls), default=0.0),
        failovers=list(history.failovers),
    )


def _lines(order: dict[str, Any]) -> list[tuple[int, int]]:
    return [(line["item_id"], line["quantity"]) for line in order["lines"]]
