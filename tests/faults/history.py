"""Every request the fault workload made, and what each answer told the client.

Clients behave as real ones do: a request that got no answer (a killed process, a refused
connection) or a 503 is retried with the same Idempotency-Key. What an answer reports about an
order is *acknowledged*: a 200/201 body (with its version), and a 409's problem body too, which
names the current status (and, from the MES, the version). The checkers (`checks.py`) then
compare every read, list and count with what had been acknowledged before it began.
"""

import re
import time
from collections import defaultdict
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
    first_started: float | None = None  # a retry: when the first attempt of it began
    deferred: bool = False  # `Orderflow-Upkeep: deferred`: its cache upkeep left to the journal

    @property
    def retried(self) -> bool:
        return self.first_started is not None


@dataclass(frozen=True)
class Ack:
    """A state an answer reported: from then on nobody may read an older one (within a bound,
    `checks.bound`)."""

    kind: str  # "order" (Shop), "production" (MES), "client", "item"
    id: int
    version: int | None  # None: a CRM 409 names the status only
    status: str | None
    started: float  # when the first attempt of the acknowledged request began
    at: float  # when its answer arrived
    via_409: bool
    retried: bool  # an earlier attempt got no answer or a 503: it may have committed and died
    where: str = ""  # the request, to explain a finding
    deferred: bool = False  # the answer said its cache upkeep was left to the journal's repair


@dataclass(frozen=True)
class Read:
    kind: str
    id: int
    started: float
    version: int
    status: str | None
    where: str = ""  # the request, to explain a finding (`checks.explain`)
    ended: float = 0.0


@dataclass(frozen=True)
class ListRead:
    """One list page: a client's orders (`client`, key the client id), a CRM status page
    (`status`, key the status) or the MES queue (`queue`)."""

    what: str
    key: int | str
    started: float
    ended: float
    ids: tuple[int, ...]
    complete: bool  # every match is on the page (total <= items)
    last: tuple[str, int] | None  # (created_at, id) of the page's last item: the list's edge


@dataclass(frozen=True)
class CountRead:
    service: str  # "crm": GET /orders/stats; "mes": board totals (GET /orders?status=...)
    started: float
    ended: float
    counts: dict[str, int]


@dataclass(frozen=True)
class Failover:
    """A cluster's master killed: seconds from the kill until its promoted replica served its
    slots (`served_s`), and until every API's /health said ok again (`healthy_s`: their
    breakers of that shard closed, its epochs moved forward; None if not within the bound)."""

    port: int
    served_s: float
    healthy_s: float | None


@dataclass(frozen=True)
class FaultWindow:
    name: str
    started: float
    ended: float
    database: bool = False  # the database was away (or could be) while it lasted
    # When Redis answered every process again, for a fault that took a Redis node away from all
    # of them (a host paused or killed): no repair of what was owed to it could apply before.
    redis_back: float | None = None


ACTION = re.compile(r"^/orders/(\d+)/(\w+)$")


@dataclass
class History:
    calls: list[Call] = field(default_factory=list)
    placed: dict[str, dict[str, Any]] = field(default_factory=dict)  # key -> acknowledged order
    requested: dict[str, dict[str, Any]] = field(default_factory=dict)  # key -> request body
    acks: list[Ack] = field(default_factory=list)
    reads: list[Read] = field(default_factory=list)
    lists: list[ListRead] = field(default_factory=list)
    counts: list[CountRead] = field(default_factory=list)
    confirmed: set[int] = field(default_factory=set)
    completed: set[int] = field(default_factory=set)
    faults: list[FaultWindow] = field(default_factory=list)
    crashes: list[tuple[float, str, int]] = field(default_factory=list)  # died, restarted
    failovers: list["Failover"] = field(default_factory=list)  # a cluster's masters killed

    def fault(
        self,
        name: str,
        started: float,
        *,
        database: bool = False,
        redis_back: float | None = None,
    ) -> None:
        self.faults.append(FaultWindow(name, started, time.monotonic(), database, redis_back))

    def during_fault(self, started: float, ended: float) -> bool:
        return any(f.started <= ended and started <= f.ended for f in self.faults)

    def acknowledge(self, kind: str, object_id: int, call: Call) -> Ack | None:
        """What `call`'s answer reports about `object_id` (a 200/201 body, or a 409 naming the
        current state); None when it reports nothing."""
        body = call.body or {}
        if call.status in (200, 201):
            version, status, via_409 = body["version"], body.get("status"), False
        elif call.status == 409 and "order_status" in body:
            version, status, via_409 = body.get("version"), body["order_status"], True
        else:
            return None
        ack = Ack(
            kind,
            object_id,
            version,
            status,
            call.first_started or call.started,
            call.ended,
            via_409,
            call.retried,
            f"{call.service} {call.method} {call.path}",
            call.deferred,
        )
        self.acks.append(ack)
        return ack

    def read(
        self, kind: str, started: float, body: dict[str, Any], call: Call | None = None
    ) -> None:
        where, ended = (f"{call.service} {call.path}", call.ended) if call else ("", 0.0)
        version, status = body["version"], body.get("status")
        self.reads.append(Read(kind, body["id"], started, version, status, where, ended))

    def listed(self, what: str, key: int | str, call: Call) -> None:
        """A list page: its ids for the list checks, each body as a read of its entity."""
        items = call.body["items"]
        kind = "production" if what == "queue" else "order"
        for item in items:
            self.read(kind, call.started, item, call)
        last = (items[-1]["created_at"], items[-1]["id"]) if items else None
        ids = tuple(item["id"] for item in items)
        complete = call.body["total"] <= len(items)
        self.lists.append(ListRead(what, key, call.started, call.ended, ids, complete, last))

    def counted(self, service: str, call: Call, counts: dict[str, int]) -> None:
        self.counts.append(CountRead(service, call.started, call.ended, counts))

    def actions(self) -> dict[int, list[tuple[str, str, float]]]:
        """Every attempt at changing an order, by order id: (service, action, started)."""
        by_order: dict[int, list[tuple[str, str, float]]] = defaultdict(list)
        for c in self.calls:
            if c.method == "POST" and (m := ACTION.match(c.path)):
                by_order[int(m[1])].append((c.service, m[2], c.started))
        return by_order
