"""Production: claims decided by PostgreSQL, the holder's release and completion, ingest."""

from typing import Any

from sqlalchemy import ColumnElement
from sqlalchemy.ext.asyncio import AsyncSession

from orderflow.data.mesdb import ProductionOrder
from orderflow.kit.db import transaction
from orderflow.kit.errors import Conflict, InvalidInput, NotFound
from orderflow.kit.http import dumps
from orderflow.kit.pagination import Page, list_body
from orderflow.mes.context import Production
from orderflow.mes.orders.repository import PO, ProductionRepository
from orderflow.mes.orders.schemas import (
    OperatorAction,
    ProductionStatus,
    production_order_dict,
)

S = ProductionStatus


async def get_production_order(p: Production, order_id: int) -> bytes:
    async with transaction(p.sessions) as session:
        order = await ProductionRepository(session).get(order_id)
    if order is None:
        raise NotFound(f"production order {order_id} does not exist")
    return dumps(production_order_dict(order))


async def search(
    p: Production, status: ProductionStatus | None, operator_id: int | None, page: Page
) -> bytes:
    async with transaction(p.sessions) as session:
        rows, total = await ProductionRepository(session).search(
            status=status.value if status else None,
            operator_id=operator_id,
            limit=page.limit,
            offset=page.offset,
        )
    return dumps(list_body([production_order_dict(o) for o in rows], total))


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
    return await _after_commit(p, "claimed", order)


async def release(p: Production, order_id: int, action: OperatorAction) -> bytes:
    """The holder gives the order back to the queue."""
    async with transaction(p.sessions) as session:
        repo = ProductionRepository(session)
        order = await _holder_update(repo, order_id, action, "release", S.QUEUED, operator_id=None)
        await repo.close_assignment(order_id, "released")
        await repo.record(order_id, S.IN_PROGRESS, S.QUEUED, action.operator_id)
    return await _after_commit(p, "released", order)


async def complete(p: Production, order_id: int, action: OperatorAction) -> bytes:
    """The holder finishes the order; the Shop order becomes `ready`."""
    async with transaction(p.sessions) as session:
        repo = ProductionRepository(session)
        order = await _holder_update(repo, order_id, action, "complete", S.DONE)
        await repo.close_assignment(order_id, "completed")
        await repo.record(order_id, S.IN_PROGRESS, S.DONE, action.operator_id)
        await repo.add_outbox("ready", order_id, _event(order))
    return await _after_commit(p, "completed", order)


async def _after_commit(p: Production, event_type: str, order: ProductionOrder) -> bytes:
    """The decision is committed; now tell every board, then answer."""
    data = production_order_dict(order)
    if p.events is not None:
        await p.events.publish(event_type, data)
    return dumps(data)


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

    Returns the MES event to announce with the production order's new state, or None when
    nothing changed (a redelivery, or a cancel that came after a claim).
    """
    repo = ProductionRepository(session)
    if not await repo.mark_processed(event_id):
        return None
    order_id = int(payload["order_id"])
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
    return None
