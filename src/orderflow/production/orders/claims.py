"""Operators' claims decided by PostgreSQL, and the holder's release and completion.

A claim is one conditional UPDATE that only a queued, unassigned row matches: exactly one of
any number of racing operators wins, every other gets 409 naming the holder. Release and
complete match only the holder's row (and its version, when the body carries one).

A refusal (409) first re-applies the order's pending cache upkeep: it is often a retry whose
first attempt committed but died before its cache writes, and boards must show what it names.
"""

from typing import Any

from orderflow.data.mesdb import ProductionOrder
from orderflow.kit import tracing
from orderflow.kit.errors import Conflict, InvalidInput, NotFound
from orderflow.kit.unit_of_work import UnitOfWork
from orderflow.production.context import Production
from orderflow.production.orders.repository import ProductionRepository
from orderflow.production.orders.schemas import (
    OperatorAction,
    ProductionStatus,
    production_order_dict,
)
from orderflow.production.orders.upkeep import keep_boards_current, repair_production_order

S = ProductionStatus


async def claim(p: Production, order_id: int, operator_id: int) -> bytes:
    """Exactly one operator wins: the update matches only a queued, unassigned row."""
    with tracing.journey(order_id, "order claim"):
        async with p.unit() as uow:
            repo = uow.repository(ProductionRepository)
            if not await repo.operator_exists(operator_id):
                raise InvalidInput(f"operator {operator_id} does not exist", field="operator_id")
            order = await repo.claim_if_queued(order_id, operator_id)
            if order is None:
                raise await _refusal(uow, repo, order_id, "claim")
            await repo.open_assignment(order_id, operator_id)
            await repo.record(order_id, S.QUEUED, S.IN_PROGRESS, operator_id)
            await repo.add_outbox("in_production", order_id, _event(order))
            data = production_order_dict(order)
            return await keep_boards_current(
                uow, p, "claimed", data, S.QUEUED, operator_id=operator_id
            )


async def release(p: Production, order_id: int, action: OperatorAction) -> bytes:
    """The holder gives the order back to the queue."""
    with tracing.journey(order_id, "order release"):
        async with p.unit() as uow:
            repo = uow.repository(ProductionRepository)
            order = await repo.update_if_held(
                order_id, action.operator_id, action.version, status=S.QUEUED, operator_id=None
            )
            if order is None:
                raise await _refusal(uow, repo, order_id, "release", action)
            await repo.close_assignment(order_id, "released")
            await repo.record(order_id, S.IN_PROGRESS, S.QUEUED, action.operator_id)
            data = production_order_dict(order)
            holder = action.operator_id
            return await keep_boards_current(
                uow, p, "released", data, S.IN_PROGRESS, operator_id=holder
            )


async def complete(p: Production, order_id: int, action: OperatorAction) -> bytes:
    """The holder finishes the order; the Shop order becomes `ready`."""
    with tracing.journey(order_id, "order complete"):
        async with p.unit() as uow:
            repo = uow.repository(ProductionRepository)
            order = await repo.update_if_held(
                order_id, action.operator_id, action.version, status=S.DONE
            )
            if order is None:
                raise await _refusal(uow, repo, order_id, "complete", action)
            await repo.close_assignment(order_id, "completed")
            await repo.record(order_id, S.IN_PROGRESS, S.DONE, action.operator_id)
            await repo.add_outbox("ready", order_id, _event(order))
            data = production_order_dict(order)
            holder = action.operator_id
            return await keep_boards_current(
                uow, p, "completed", data, S.IN_PROGRESS, operator_id=holder
            )


async def _refusal(
    uow: UnitOfWork,
    repo: ProductionRepository,
    order_id: int,
    verb: str,
    action: OperatorAction | None = None,
) -> Exception:
    """Why a conditional update matched nothing, as the error to answer with (a 409 repairs the
    order's pending cache upkeep first)."""
    current = await repo.get(order_id)
    if current is None:
        return NotFound(f"production order {order_id} does not exist")
    await repair_production_order(uow, order_id)
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
