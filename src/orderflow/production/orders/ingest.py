"""The relay delivers the Shop's hand-offs (`order_confirmed`, `order_cancelled`): apply each
once per event id, and keep the cache and the boards current after the commit. The item names
an event carries are kept as the MES's product data (`production/products`).

A redelivery, or a cancel that comes after a claim, changes nothing; the order's state is still
written through (an earlier delivery may have died between its commit and its cache write), but
no board is told anything new.
"""

from typing import Any

from orderflow.data.mesdb import ProductionOrder
from orderflow.kit.unit_of_work import UnitOfWork
from orderflow.production.caching import status_family
from orderflow.production.context import Production
from orderflow.production.orders.repository import ProductionRepository
from orderflow.production.orders.schemas import ProductionStatus, production_order_dict
from orderflow.production.orders.upkeep import REWRITE, keep_boards_current
from orderflow.production.products.repository import ProductRepository
from orderflow.production.products.service import names_in

S = ProductionStatus


async def ingest(
    uow: UnitOfWork, p: Production, event_id: str, event_type: str, payload: dict[str, Any]
) -> None:
    """Apply one event as a step of `uow`: the relay applies a batch in one transaction."""
    order_id = int(payload["order_id"])
    repo = uow.repository(ProductionRepository)
    changed = None
    if await repo.mark_processed(event_id):
        await uow.repository(ProductRepository).remember(names_in(payload.get("lines", [])))
        changed = await _apply(repo, event_type, order_id, payload)
    if changed is not None:
        event, order, from_status = changed
        await keep_boards_current(uow, p, event, production_order_dict(order), from_status)
    elif (current := await repo.get(order_id)) is not None:
        data = production_order_dict(current)
        also = (status_family(S.QUEUED),)  # whatever an earlier delivery left unbumped
        await keep_boards_current(uow, p, REWRITE, data, None, also=also)


async def _apply(
    repo: ProductionRepository, event_type: str, order_id: int, payload: dict[str, Any]
) -> tuple[str, ProductionOrder, str | None] | None:
    """The change `event_type` makes: (event to announce, new state, status it left)."""
    if event_type == "order_confirmed":
        lines = [{"item_id": ln["item_id"], "quantity": ln["quantity"]} for ln in payload["lines"]]
        if (order := await repo.insert_queued(order_id, lines)) is not None:
            await repo.record(order_id, None, S.QUEUED, None)
            return "queued", order, None
    elif event_type == "order_cancelled" and (order := await repo.cancel_if_queued(order_id)):
        await repo.record(order_id, S.QUEUED, S.CANCELLED, None)
        return "cancelled", order, S.QUEUED
    return None
