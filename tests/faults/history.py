"""Every request the fault workload made, and the checker that proves nothing went wrong.

Clients behave as real ones do: a request that got no answer (a killed process, a refused
connection) or a 503 is retried with the same Idempotency-Key. The checker then compares what
was acknowledged to anyone with what PostgreSQL holds, and every read with the writes that
were acknowledged before the read began.
"""

import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Call:
    service: str
    method: str
    path: str
    started: float
    ended: float
    status: int | None  # None: no answer (connection refused or reset, timeout)
    body: Any = None
    problem: bool = False  # answered application/problem+json


@dataclass
class History:
    calls: list[Call] = field(default_factory=list)
    placed: dict[str, dict[str, Any]] = field(default_factory=dict)  # key -> acknowledged order
    requested: dict[str, dict[str, Any]] = field(default_factory=dict)  # key -> request body
    # (kind, id) -> ...: kind "order" (Shop) or "production" (MES), both written through
    acked_versions: list[tuple[str, int, int, float]] = field(default_factory=list)
    reads: list[tuple[str, int, float, int]] = field(default_factory=list)
    confirmed: set[int] = field(default_factory=set)
    completed: set[int] = field(default_factory=set)
    faults: list[tuple[float, str]] = field(default_factory=list)

    def fault(self, what: str) -> None:
        self.faults.append((time.monotonic(), what))

    def acked(self, kind: str, body: dict[str, Any]) -> None:
        """A write's answer reached a client: from now on nobody may read an older version."""
        self.acked_versions.append((kind, body["id"], body["version"], time.monotonic()))

    def read(self, kind: str, started: float, body: dict[str, Any]) -> None:
        self.reads.append((kind, body["id"], started, body["version"]))


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
    double_claims: list[int]
    server_errors: list[Call]
    bad_503s: list[Call]
    slowest_s: float

    def failures(self) -> dict[str, int]:
        return {
            "lost orders": len(self.lost_orders),
            "duplicate orders": len(self.duplicate_orders),
            "orders with wrong lines": len(self.wrong_lines),
            "confirmed, not in MES": len(self.not_in_mes),
            "completed, not ready": len(self.not_ready),
            "stale reads": len(self.stale_reads),
            "double claims": len(self.double_claims),
            "500s": len(self.server_errors),
            "503s without problem+json": len(self.bad_503s),
        }


# How long after an acknowledged write an older version may still be read, per kind. Orders and
# production orders are written through and clients invalidated on every change: never. Items
# may linger in another process's near cache for its TTL when Redis could not carry the drop.
STALENESS_ALLOWED_S = {"item": 5.0}


def stale_reads(history: History) -> list[tuple[str, int, int, int]]:
    """Reads that returned a version older than one acknowledged before they began (less the
    staleness the entity's policy allows)."""
    acks: dict[tuple[str, int], list[tuple[float, int]]] = defaultdict(list)
    for kind, order_id, version, at in history.acked_versions:
        acks[kind, order_id].append((at, version))
    stale = []
    for kind, order_id, started, version in history.reads:
        allowed = STALENESS_ALLOWED_S.get(kind, 0.0)
        known = [v for at, v in acks.get((kind, order_id), []) if at + allowed < started]
        if known and version < max(known):
            stale.append((kind, order_id, version, max(known)))
    return stale


def check(
    history: History,
    *,
    orders_by_key: dict[str, list[dict[str, Any]]],
    production: dict[int, int],
    shop_status: dict[int, str],
    overlapping_holders: list[int],
) -> Verdict:
    """`orders_by_key`: ShopDB orders (with lines) per idempotency key; `production`: MES
    'queued' history rows per order; `shop_status`: ShopDB status per order id."""
    lost = [k for k in history.placed if not orders_by_key.get(k)]
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
        double_claims=overlapping_holders,
        server_errors=[
            c for c in history.calls if c.status is not None and c.status >= 500 and c.status != 503
        ],
        bad_503s=[c for c in history.calls if c.status == 503 and not c.problem],
        slowest_s=max((c.ended - c.started for c in history.calls), default=0.0),
    )


def _lines(order: dict[str, Any]) -> list[tuple[int, int]]:
    return [(line["item_id"], line["quantity"]) for line in order["lines"]]
