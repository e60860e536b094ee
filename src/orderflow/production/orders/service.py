"""Production: claims decided by PostgreSQL, the holder's release and completion, ingest.

After each commit, and before the response, the new state is written through to the cache,
the board lists it moved are invalidated by generation, and the event goes to every board.
"""

from functools import partial
from typing import Any

from sqlalchemy import ColumnElement
from sqlalchemy.ext.asyncio import AsyncSession

from orderflow.data.mesdb import ProductionOrder
from orderflow.kit.db import transaction
from orderflow.kit.errors import Conflict, InvalidInput, NotFound
from orderflow.kit.http import dumps
from orderflow.kit.pagination import Page
from orderflow.production.caching import (
    ENTRY_TTL,
    PRODUCTION_LIST,
    PRODUCTION_ORDER,
    moved_families,
    view_families,
)
from orderflow.production.context import Production
from orderflow.production.orders.repository import PO, ProductionRepository
from orderflow.production.orders.schemas import (
    OperatorAction,
    ProductionStatus,
    production_order_dict,
)

S = ProductionStatus


async def get_production_order(p: Production, order_id: int) -> bytes:
    async def load() -> tuple[int, bytes]:
        async with transaction(p.sessions) as session:
            order = await ProductionRepository(session).get(order_id)
        if order is None:
            raise NotFound(f"production order {order_id} does not exist")
        return order.version, dumps(production_order_dict(order))

    return await p.cache.read(PRODUCTION_ORDER, order_id, load, ENTRY_TTL)


async def search(
    p: Production, status: ProductionStatus | None, operator_id: int | None, page: Page
) -> bytes:
    """A board's list: cached ids of the page, bodies from the write-through entries."""
    state = status.value if status else None

    async def load_index() -> tuple[int, bytes]:
        async with transaction(p.sessions) as session:
            ids, total = await ProductionRepository(session).search_ids(
                status=state, operator_id=operator_id, limit=page.limit, offset=page.offset
            )
        return 0, dumps({"ids": ids, "total": total})

    key = (state or "", operator_id or 0, page.limit, page.offset)
    families = view_families(state, operator_id)
    view, bodies = await p.cache.read_listing(
        PRODUCTION_LIST, key, families, load_index, partial(_load_orders, p)
    )
    total = str(view["total"]).encode()
    return b'{"items":[' + b",".join(bodies) + b'],"total":' + total + b"}"


async def _load_orders(p: Production, ids: list[int]) -> dict[int, tuple[int | None, bytes]]:
    async with transaction(p.sessions) as session:
        rows = {o.id: o for o in await ProductionRepository(session).many(ids)}
    return {id_: (rows[id_].version, dumps(production_order_dict(rows[id_]))) for id_ in ids}


async def claim(p: Production, order_id: int, operator_id: int) -> bytes:
    """Exactly one operator wins: the update matches only a queued, unassigned row."""
    async with transaction(p.sessions) as session:
        repo = ProductionRepository(session)
        await _require_operator(repo, operator_id)
        order = await repo.conditional_update(
            order_id,
            [PO.status == S.QUEUED, PO.operator_id.is_(None)],
            status=S.IN_PROGRESS,
            operator_id=operator_id,
        )
        if order is None:
            raise await _refusal(repo, order_id, "claim")
        await repo.open_assignment(order_id, operator_id)
        await repo.record(order_id, S.QUEUED, S.IN_PROGRESS, operator_id)
        await repo.add_outbox("in_production", order_id, _event(order))
    return await announce(p, "claimed", production_order_dict(order), S.QUEUED, operator_id)


async def release(p: Production, order_id: int, action: OperatorAction) -> bytes:
    """The holder gives the order back to the queue."""
    async with transaction(p.sessions) as session:
        repo = ProductionRepository(session)
        order = await _holder_update(repo, order_id, action, "release", S.QUEUED, operator_id=None)
        await repo.close_assignment(order_id, "released")
        await repo.record(order_id, S.IN_PROGRESS, S.QUEUED, action.operator_id)
    data = production_order_dict(order)
    return await announce(p, "released", data, S.IN_PROGRESS, action.operator_id)


async def complete(p: Production, order_id: int, action: OperatorAction) -> bytes:
    """The holder finishes the order; the Shop order becomes `ready`."""
    async with transaction(p.sessions) as session:
        repo = ProductionRepository(session)
        order = await _holder_update(repo, order_id, action, "complete", S.DONE)
        await repo.close_assignment(order_id, "completed")
        await repo.record(order_id, S.IN_PROGRESS, S.DONE, action.operator_id)
        await repo.add_outbox("ready", order_id, _event(order))
    data = production_order_dict(order)
    return await announce(p, "completed", data, S.IN_PROGRESS, action.operator_id)


async def announce(
    p: Production,
    event_type: str,
    order: dict[str, Any],
    from_status: str | None,
    operator_id: int | None,
    *,
    also: list[str] | None = None,
) -> bytes:
    """The decision is committed: write it through, invalidate the lists it moved (and the
    families in `also`), tell every board, and only then answer."""
    body = dumps(order)
    await p.cache.put(PRODUCTION_ORDER, order["id"], order["version"], body, ENTRY_TTL)
    families = moved_families(from_status, order["status"], operator_id)
    await p.cache.bump([*families, *(also or [])])
    if p.events is not None and event_type:  # "": a rewrite of a state announced before
        await p.events.publish(event_type, order)
    return body


async def _holder_update(
    repo: ProductionRepository,
    order_id: int,
    action: OperatorAction,
    verb: str,
    status: ProductionStatus,
    **values: Any,
) -> ProductionOrder:
    """Only the holder, and (when given) only at the version it saw: a fencing token."""
    conditions: list[ColumnElement[bool]] = [
        PO.status == S.IN_PROGRESS,
        PO.operator_id == action.operator_id,
    ]
    if action.version is not None:
        conditions.append(PO.version == action.version)
    order = await repo.conditional_update(order_id, conditions, status=status, **values)
    if order is None:
        raise await _refusal(repo, order_id, verb, action)
    return order


async def _require_operator(repo: ProductionRepository, operator_id: int) -> None:
    if not await repo.operator_exists(operator_id):
        raise InvalidInput(f"operator {operator_id} does not exist", field="operator_id")


async def _refusal(
    repo: ProductionRepository, order_id: int, verb: str, action: OperatorAction | None = None
) -> Exception:
    """Why a conditional update matched nothing, as the error to answer with."""
    current = await repo.get(order_id)
    if current is None:
        return NotFound(f"production order {order_id} does not exist")
    state = {"order_status": current.status, "holder": current.operator_id}
    state["version"] = current.version
    if current.status == S.IN_PROGRESS and (
        action is None or action.operator_id != current.operator_id
    ):
        return Conflict(
            f"cannot {verb} order {order_id}: operator {current.operator_id} holds it", **state
        )
    if action is not None and action.version not in (None, current.version):
        return Conflict(
            f"cannot {verb} order {order_id}: version {action.version} is stale", **state
        )
    return Conflict(f"cannot {verb} order {order_id}: it is {current.status}", **state)


def _event(order: ProductionOrder) -> dict[str, Any]:
    return {"order_id": order.id, "operator_id": order.operator_id, "version": order.version}


async def ingest(
    session: AsyncSession, event_id: str, event_type: str, payload: dict[str, Any]
) -> tuple[str, dict[str, Any]] | None:
    """Relay side: apply a ShopDB event once per event id.

    Returns the MES event to announce with the production order's new state; the event is ""
    when nothing changed (a redelivery, a cancel after a claim), so that the caller still
    rewrites the cache (an earlier delivery may have died before doing so) but tells no board.
    None when there is no production order.
    """
    repo = ProductionRepository(session)
    order_id = int(payload["order_id"])
    if not await repo.mark_processed(event_id):
        return await _unchanged(repo, order_id)
    if event_type == "order_confirmed":
        lines = [{"item_id": ln["item_id"], "quantity": ln["quantity"]} for ln in payload["lines"]]
        order = await repo.insert_queued(order_id, lines)
        if order is not None:
            await repo.record(order_id, None, S.QUEUED, None)
            return "queued", production_order_dict(order)
    elif event_type == "order_cancelled":
        order = await repo.conditional_update(order_id, [PO.status == S.QUEUED], status=S.CANCELLED)
        if order is not None:
            await repo.record(order_id, S.QUEUED, S.CANCELLED, None)
            return "cancelled", production_order_dict(order)
    return await _unchanged(repo, order_id)


async def _unchanged(
    repo: ProductionRepository, order_id: int
) -> tuple[str, dict[str, Any]] | None:
    order = await repo.get(order_id)
    return ("", production_order_dict(order)) if order is not None else None
