"""The checker: nothing acknowledged is lost, and nothing older than what was acknowledged is
served, by an entry, a list or a count.

An acknowledgement is any answer that told a client an object's state (`history.Ack`): a
200/201 body, and a 409's problem body, which names the current status (the MES's also the
version). A read, list or count that began after an acknowledgement must reflect it, within
`bound(ack)`:

- 0 for a write answered on its first attempt outside any fault: its writer committed, wrote
  the cache and bumped the lists' generations before answering (write-through, rule 4), so
  whatever starts after the answer sees it (items excepted: near copies live 5 s);
- REPAIR_BOUND_S when the writer did not or may not have kept the cache: its answer said so
  (`Orderflow-Upkeep: deferred`: a Redis call failed or its breaker was open), the state was
  learned from a 409 (committed by another attempt or writer, which may have died or still be
  writing), the
  request was retried (an earlier attempt got no answer or a 503: it may have committed in a
  process that died before its cache write), or it overlapped a fault (a cache write that
  failed). Then the repair path applies: the upkeep journal re-applies what a commit owed the
  cache after ORDERFLOW_UPKEEP_REPAIR_AFTER_S (1 s) plus a worker tick (0.5 s) plus the apply;
  3 s leaves room for a loaded machine. (Before the journal nothing repaired it: that is what
  these checks find.) The journal is in PostgreSQL: a database outage that begins before the
  repair is due postpones it, and the bound runs from the database's return. Likewise the repair
  writes to Redis: a fault that takes a Redis node away from every process (a host paused or
  killed) postpones what is owed to it until that node answers again (`FaultWindow.redis_back`),
  and the bound runs from then. A write deferred 2 s into a 4 s pause cannot be repaired
  within 3 s of its answer; a process that did not use that node during the pause reads it
  as soon as it is back (make multihost, 2026-12-07: a read 3.08 s after such an answer, 1.1 s
  after the node's return, found the version before it).
"""

from bisect import bisect_left
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from orderflow.sales.orders.lifecycle import RANK
from tests.faults.history import Ack, Call, History, ListRead

REPAIR_BOUND_S = 3.0
# Items may linger in another process's near cache for its TTL when Redis could not carry
# the drop; every other entity is written through or invalidated before the answer.
STALENESS_ALLOWED_S = {"item": 5.0}

# What can move a Shop order out of a status: (service, action) of the requests that start it.
# The relay's moves (in_production, ready) follow an MES claim and completion.
EXITS = {
    "created": {("crm", "confirm"), ("crm", "cancel"), ("shop", "cancel")},
    "confirmed": {("crm", "cancel"), ("shop", "cancel"), ("mes", "claim")},
    "in_production": {("mes", "complete")},
    "ready": {("crm", "ship")},
    "shipped": {("crm", "deliver")},
}
# Counts that only grow during the run: (service, status) -> the actions that move an order in.
TERMINAL = {
    ("crm", "delivered"): {("crm", "deliver")},
    ("crm", "cancelled"): {("crm", "cancel"), ("shop", "cancel")},
    ("mes", "done"): {("mes", "complete")},
}


# The journal that repairs what a write owed the cache is in PostgreSQL: while PostgreSQL is
# down nothing can be repaired, so the repair's bound runs from when it is back.
DATABASE_FAULTS = frozenset({"PostgreSQL restarted"})


def bound(ack: Ack, history: History) -> float:
    allowed = STALENESS_ALLOWED_S.get(ack.kind, 0.0)
    if ack.deferred or ack.via_409 or ack.retried or history.during_fault(ack.started, ack.at):
        return max(allowed, repairable_from(ack.at, history) - ack.at + REPAIR_BOUND_S)
    return allowed


def repairable_from(at: float, history: History) -> float:
    """When the journal can repair upkeep owed since `at`: then, or when a database outage
    (or a Redis node away from every process) that began before the repair was due is over."""
    start = at
    for f in sorted(history.faults, key=lambda f: f.started):
        database = f.database or f.name in DATABASE_FAULTS
        back = f.ended if database else f.redis_back
        if back is not None and f.started <= start + REPAIR_BOUND_S and back > start:
            start = back
    return start


def stale_reads(history: History) -> list[tuple[str, int, int, int]]:
    """Reads that returned a version older than one a 200/201 acknowledged before they began,
    less `bound(ack)` (as the module says: a write answered during a fault may have left its
    cache write to the journal's repair)."""
    acks: dict[tuple[str, int], list[tuple[float, int]]] = defaultdict(list)
    for a in history.acks:
        if not a.via_409 and a.version is not None:
            acks[a.kind, a.id].append((a.at + bound(a, history), a.version))
    stale = []
    for r in history.reads:
        known = [v for at, v in acks.get((r.kind, r.id), []) if at < r.started]
        if known and r.version < max(known):
            stale.append((r.kind, r.id, r.version, max(known)))
    return stale


def stale_after_409(history: History) -> list[tuple[str, int, str, str]]:
    """Reads that began (a bound) after a 409 reported a state, and showed an older one: an
    older version (MES), or a status earlier in the lifecycle (CRM, whose 409 has no version)."""
    learned: dict[tuple[str, int], list[Ack]] = defaultdict(list)
    for a in history.acks:
        if a.via_409:
            learned[a.kind, a.id].append(a)
    stale = []
    for r in history.reads:
        for a in learned.get((r.kind, r.id), []):
            if a.at + bound(a, history) >= r.started:
                continue
            if a.version is not None and r.version < a.version:
                stale.append((r.kind, r.id, f"v{r.version}", f"v{a.version}"))
                break
            if r.kind == "order" and RANK[r.status] < RANK[a.status]:  # type: ignore[index]
                stale.append((r.kind, r.id, str(r.status), str(a.status)))
                break
    return stale


def _edge(created_at: str, order_id: int) -> tuple[datetime, int]:
    return datetime.fromisoformat(created_at), order_id


def _on_page(order: dict[str, Any], page: ListRead) -> bool:
    """Whether `order` must be on `page` if it matches (pages are newest first)."""
    if page.complete or page.last is None:
        return True
    return _edge(order["created_at"], order["id"]) > _edge(*page.last)


@dataclass
class _Facts:
    """The acknowledgements indexed for the list and count checks."""

    orders: dict[int, dict[str, Any]]  # our placements, by id
    known_from: dict[int, float] = field(default_factory=dict)  # order id -> acked from
    status_from: dict[str, dict[int, float]] = field(default_factory=dict)  # status -> id -> t
    production_from: dict[str, dict[int, float]] = field(default_factory=dict)
    first_action: dict[tuple[int, str, str], float] = field(default_factory=dict)
    by_client: dict[int, list[int]] = field(default_factory=dict)

    @classmethod
    def of(cls, history: History) -> "_Facts":
        facts = cls({body["id"]: body for body in history.placed.values()})
        for oid, order in facts.orders.items():
            facts.by_client.setdefault(order["client_id"], []).append(oid)
        for a in history.acks:
            if a.status is None or a.kind not in ("order", "production"):
                continue
            since = a.at + bound(a, history)
            target = facts.status_from if a.kind == "order" else facts.production_from
            per = target.setdefault(a.status, {})
            per[a.id] = min(per.get(a.id, since), since)
            if a.kind == "order":
                facts.known_from[a.id] = min(facts.known_from.get(a.id, since), since)
        for order_id, actions in history.actions().items():
            for service, action, started in actions:
                key = (order_id, service, action)
                facts.first_action[key] = min(facts.first_action.get(key, started), started)
        return facts

    def left_before(self, order_id: int, status: str, moment: float) -> bool:
        """Whether a request that could move the order out of `status` began before `moment`."""
        return any(
            self.first_action.get((order_id, service, action), moment) < moment
            for service, action in EXITS.get(status, ())
        )


def stale_list_reads(history: History) -> list[tuple[str, int | str, int, str]]:
    """List pages that began (a bound) after an acknowledgement and did not reflect it:
    a client's orders without an acknowledged placement; a CRM status page without an order
    acknowledged in that status (and not since asked to leave it), or with one acknowledged
    in a later status; the MES queue with an order whose claim was acknowledged."""
    facts = _Facts.of(history)
    stale = []
    for page in history.lists:
        for order_id, why in _page_faults(page, facts):
            stale.append((page.what, page.key, order_id, why))
            break  # one per page
    return stale


def _page_faults(page: ListRead, f: _Facts) -> list[tuple[int, str]]:
    listed = set(page.ids)
    found = []
    if page.what == "client":
        for oid in f.by_client.get(int(page.key), []):
            since = f.known_from.get(oid, page.started)
            if since < page.started and oid not in listed and _on_page(f.orders[oid], page):
                found.append((oid, "acknowledged order missing"))
    elif page.what == "status":
        status = str(page.key)
        for oid, since in f.status_from.get(status, {}).items():
            if since >= page.started or oid in listed or oid not in f.orders:
                continue
            if not f.left_before(oid, status, page.ended) and _on_page(f.orders[oid], page):
                found.append((oid, f"acknowledged {status}, missing"))
        for oid in listed:
            for later, ids in f.status_from.items():
                if RANK[later] > RANK[status] and ids.get(oid, page.started) < page.started:  # type: ignore[index]
                    found.append((oid, f"acknowledged {later}, listed {status}"))
    elif page.what == "queue":
        for oid in listed:
            if f.first_action.get((oid, "mes", "release"), page.ended) < page.ended:
                continue  # back in the queue, perhaps
            for status in ("in_progress", "done"):
                if f.production_from.get(status, {}).get(oid, page.started) < page.started:
                    found.append((oid, f"acknowledged {status}, listed queued"))
    return found


def stale_counts(history: History, baseline: dict[str, dict[str, int]]) -> list[str]:
    """Count reads outside what the acknowledgements allow. Terminal statuses (delivered,
    cancelled; MES done) only grow: at least the baseline plus the orders acknowledged in them a
    bound before the read, at most the baseline plus the orders some request began to move
    there before it ended; the CRM total likewise with placements."""
    facts = _Facts.of(history)
    lower: dict[tuple[str, str], list[float]] = {}
    upper: dict[tuple[str, str], list[float]] = {}
    for (service, status), actions in TERMINAL.items():
        known = facts.status_from if service == "crm" else facts.production_from
        # Only orders seen in another status during the run: none was in this one before it.
        moved = {oid for other, ids in known.items() if other != status for oid in ids}
        lower[service, status] = sorted(
            t for oid, t in known.get(status, {}).items() if oid in moved
        )
        first: dict[int, float] = {}
        for (oid, svc, action), started in facts.first_action.items():
            if (svc, action) in actions:
                first[oid] = min(first.get(oid, started), started)
        upper[service, status] = sorted(first.values())
    lower["crm", "total"] = sorted(facts.known_from[o] for o in facts.orders)
    upper["crm", "total"] = sorted(_first_attempts(history.calls))
    stale = []
    for read in history.counts:
        for (service, status), low in lower.items():
            if service != read.service or status not in read.counts:
                continue
            base = baseline[service].get(status, 0)
            least = base + bisect_left(low, read.started)
            most = base + bisect_left(upper[service, status], read.ended)
            if not least <= read.counts[status] <= most:
                stale.append(f"{service} {status} {read.counts[status]} not in [{least}, {most}]")
    return stale


def _first_attempts(calls: list[Call]) -> list[float]:
    return [
        c.started
        for c in calls
        if c.service == "shop" and c.method == "POST" and c.path == "/orders" and not c.retried
    ]
