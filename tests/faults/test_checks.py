"""The checkers on histories made by hand: each finds what it must, and allows what it may."""

from typing import Any

from tests.faults.checks import (
    REPAIR_BOUND_S,
    stale_after_409,
    stale_counts,
    stale_list_reads,
    stale_reads,
)
from tests.faults.history import Call, FaultWindow, History

CREATED_AT = "2026-01-01T10:00:00+00:00"


def answered(
    service: str,
    path: str,
    at: float,
    status: int,
    body: dict[str, Any],
    *,
    method: str = "POST",
    retry_of: float | None = None,
) -> Call:
    return Call(service, method, path, at - 0.01, at, status, body, status >= 400, retry_of)


def order(oid: int, status: str, version: int, client_id: int = 7) -> dict[str, Any]:
    return {
        "id": oid,
        "client_id": client_id,
        "status": status,
        "version": version,
        "created_at": CREATED_AT,
    }


def placed(h: History, oid: int, at: float, client_id: int = 7) -> None:
    call = answered("shop", "/orders", at, 201, order(oid, "created", 1, client_id))
    h.calls.append(call)
    h.placed[f"key{oid}"] = call.body
    h.acknowledge("order", oid, call)


def page(h: History, what: str, key: int | str, at: float, items: list[dict[str, Any]]) -> None:
    body = {"items": items, "total": len(items)}
    h.listed(what, key, answered("crm", "/orders", at, 200, body, method="GET"))


def test_a_read_older_than_a_409_is_stale_only_after_the_bound() -> None:
    h = History()
    placed(h, 1, at=1.0)
    retry = answered("crm", "/orders/1/confirm", 2.0, 409, {"order_status": "confirmed"})
    retry.first_started = 1.5  # the first attempt got no answer: it committed, then died
    h.acknowledge("order", 1, retry)
    h.read("order", 2.5, order(1, "created", 1))  # within the bound: the repair may be due
    assert stale_after_409(h) == []
    h.read("order", 2.0 + REPAIR_BOUND_S + 0.1, order(1, "created", 1))
    h.read("order", 2.0 + REPAIR_BOUND_S + 0.1, order(1, "in_production", 3))  # later: fine
    assert stale_after_409(h) == [("order", 1, "created", "confirmed")]
    assert stale_reads(h) == []  # no 200 named a newer version


def test_a_write_deferred_while_redis_was_away_from_everyone_has_its_bound_from_its_return() -> (
    None
):
    """A Redis node paused for 4 s: a write answered (deferred) 2 s into it cannot be repaired
    before the node answers again, so its bound runs from then; after that, as ever."""
    h = History()
    placed(h, 1, at=1.0)
    h.faults.append(FaultWindow("Redis host paused", 1.0, 20.0, redis_back=5.0))
    h.acknowledge(
        "order", 1, answered("crm", "/orders/1/confirm", 3.0, 200, order(1, "confirmed", 2))
    )
    h.read("order", 5.0 + REPAIR_BOUND_S - 0.1, order(1, "created", 1))  # repairable from 5.0
    assert stale_reads(h) == []
    h.read("order", 5.0 + REPAIR_BOUND_S + 0.1, order(1, "created", 1))
    assert stale_reads(h) == [("order", 1, 1, 2)]


def test_a_read_older_than_a_write_answered_during_a_fault_is_stale_after_the_bound() -> None:
    """A write answered while Redis failed may have left its cache write to the journal's
    repair: a read may show the state before it for `REPAIR_BOUND_S`, never longer. Outside a
    fault, at once."""
    h = History()
    placed(h, 1, at=1.0)
    h.faults.append(FaultWindow("Redis paused", 1.5, 3.0))
    h.acknowledge(
        "order", 1, answered("crm", "/orders/1/confirm", 2.0, 200, order(1, "confirmed", 2))
    )
    h.read("order", 2.5, order(1, "created", 1))  # within the bound
    assert stale_reads(h) == []
    h.read("order", 2.0 + REPAIR_BOUND_S + 0.1, order(1, "created", 1))
    assert stale_reads(h) == [("order", 1, 1, 2)]
    calm = History()
    placed(calm, 2, at=1.0)
    calm.acknowledge(
        "order", 2, answered("crm", "/orders/2/confirm", 2.0, 200, order(2, "confirmed", 2))
    )
    calm.read("order", 2.1, order(2, "created", 1))
    assert stale_reads(calm) == [("order", 2, 1, 2)]


def test_a_write_that_said_its_upkeep_was_deferred_has_the_repair_bound() -> None:
    """`Orderflow-Upkeep: deferred` (its process's breaker open after a fault ended): reads may
    show the state before it for `REPAIR_BOUND_S`, even outside any fault; never longer."""
    h = History()
    placed(h, 1, at=1.0)
    confirm = answered("crm", "/orders/1/confirm", 2.0, 200, order(1, "confirmed", 2))
    confirm.deferred = True
    h.acknowledge("order", 1, confirm)
    h.read("order", 2.5, order(1, "created", 1))
    assert stale_reads(h) == []
    h.read("order", 2.0 + REPAIR_BOUND_S + 0.1, order(1, "created", 1))
    assert stale_reads(h) == [("order", 1, 1, 2)]


def test_a_database_outage_before_the_repair_postpones_its_bound() -> None:
    """The journal is in PostgreSQL: a restart that begins before a deferred write's repair is
    due postpones the repair; the bound runs from the database's return, and no longer."""
    h = History()
    placed(h, 1, at=1.0)
    confirm = answered("crm", "/orders/1/confirm", 2.0, 200, order(1, "confirmed", 2))
    confirm.deferred = True
    h.acknowledge("order", 1, confirm)
    h.faults.append(FaultWindow("PostgreSQL restarted", 3.0, 6.0))
    h.read("order", 6.0 + REPAIR_BOUND_S - 0.1, order(1, "created", 1))
    assert stale_reads(h) == []
    h.read("order", 6.0 + REPAIR_BOUND_S + 0.1, order(1, "created", 1))
    assert stale_reads(h) == [("order", 1, 1, 2)]
    later = History()  # a restart after the repair was due postpones nothing
    placed(later, 1, at=1.0)
    later.acknowledge("order", 1, confirm)
    later.faults.append(FaultWindow("PostgreSQL restarted", 2.0 + REPAIR_BOUND_S + 0.5, 9.0))
    later.read("order", 2.0 + REPAIR_BOUND_S + 0.2, order(1, "created", 1))
    assert stale_reads(later) == [("order", 1, 1, 2)]


def test_an_mes_409_carries_a_version() -> None:
    h = History()
    refused = {"order_status": "in_progress", "holder": 3, "version": 4}
    h.acknowledge("production", 9, answered("mes", "/orders/9/claim", 1.0, 409, refused))
    h.read("production", 1.0 + REPAIR_BOUND_S + 1, {"id": 9, "version": 3, "status": "queued"})
    assert stale_after_409(h) == [("production", 9, "v3", "v4")]


def test_a_client_list_must_hold_an_acknowledged_placement() -> None:
    h = History()
    placed(h, 1, at=1.0)
    page(h, "client", 7, 0.5, [])  # began before the answer: may miss it
    page(h, "client", 7, 1.5, [order(1, "created", 1)])
    assert stale_list_reads(h) == []
    page(h, "client", 7, 1.6, [])
    assert stale_list_reads(h) == [("client", 7, 1, "acknowledged order missing")]


def test_a_status_page_lists_an_acknowledged_status_until_something_moves_it() -> None:
    h = History()
    placed(h, 1, at=1.0)
    confirm = answered("crm", "/orders/1/confirm", 2.0, 200, order(1, "confirmed", 2))
    h.calls.append(confirm)
    h.acknowledge("order", 1, confirm)
    page(h, "status", "confirmed", 2.5, [order(1, "confirmed", 2)])
    assert stale_list_reads(h) == []
    page(h, "status", "created", 3.0, [order(1, "created", 1)])  # it left created
    page(h, "status", "confirmed", 3.0, [])  # and nothing moved it on yet
    assert stale_list_reads(h) == [
        ("status", "created", 1, "acknowledged confirmed, listed created"),
        ("status", "confirmed", 1, "acknowledged confirmed, missing"),
    ]
    h.calls.append(answered("mes", "/orders/1/claim", 2.8, 200, {}))  # may be in_production
    assert stale_list_reads(h) == [
        ("status", "created", 1, "acknowledged confirmed, listed created")
    ]


def test_the_queue_must_not_list_an_order_whose_claim_was_acknowledged() -> None:
    h = History()
    claim = answered("mes", "/orders/5/claim", 1.0, 200, {"version": 2, "status": "in_progress"})
    h.calls.append(claim)
    h.acknowledge("production", 5, claim)
    queued = {"id": 5, "version": 1, "status": "queued", "created_at": CREATED_AT}
    page(h, "queue", "queued", 1.5, [queued])
    assert stale_list_reads(h) == [
        ("queue", "queued", 5, "acknowledged in_progress, listed queued")
    ]
    h.calls.append(answered("mes", "/orders/5/release", 1.2, 200, {}))  # back in the queue
    assert stale_list_reads(h) == []


def test_a_terminal_count_is_bounded_by_acknowledgements_and_attempts() -> None:
    h = History()
    placed(h, 1, at=1.0)
    cancel = answered("crm", "/orders/1/cancel", 2.0, 200, order(1, "cancelled", 2))
    h.calls.append(cancel)
    h.acknowledge("order", 1, cancel)
    base = {"crm": {"cancelled": 10, "total": 100}, "mes": {}}
    stats = answered("crm", "/orders/stats", 3.0, 200, {}, method="GET")
    h.counted("crm", stats, {"cancelled": 11, "total": 101})
    assert stale_counts(h, base) == []
    h.counted("crm", stats, {"cancelled": 10, "total": 101})  # the cancel is missing
    h.counted("crm", stats, {"cancelled": 11, "total": 102})  # an order nobody placed
    assert stale_counts(h, base) == [
        "crm cancelled 10 not in [11, 11]",
        "crm total 102 not in [101, 101]",
    ]
