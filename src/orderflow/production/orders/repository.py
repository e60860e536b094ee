"""SQL over production orders, assignments, history and the MES outbox, in a unit of work (the
reads behind the cache are single statements outside one: `lean_reads.py`)."""

from typing import Any

from sqlalchemy import ColumnElement, exists, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from orderflow.data.mesdb import (
    Assignment,
    MesOutbox,
    MesProcessedEvent,
    Operator,
    ProductionOrder,
    StatusHistory,
)
from orderflow.kit import tracing
from orderflow.production.orders.schemas import ProductionStatus

PO = ProductionOrder
S = ProductionStatus


class ProductionRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, order_id: int) -> ProductionOrder | None:
        return await self.session.get(PO, order_id)

    async def operator_exists(self, operator_id: int) -> bool:
        return bool(await self.session.scalar(select(exists().where(Operator.id == operator_id))))

    async def claim_if_queued(self, order_id: int, operator_id: int) -> ProductionOrder | None:
        """Take the order for `operator_id` if it is queued and nobody holds it. PostgreSQL lets
        exactly one of any number of racing claimants match; None for every other."""
        return await self._update_where(
            order_id,
            [PO.status == S.QUEUED, PO.operator_id.is_(None)],
            status=S.IN_PROGRESS,
            operator_id=operator_id,
        )

    async def update_if_held(
        self, order_id: int, holder: int, version: int | None, **values: Any
    ) -> ProductionOrder | None:
        """Change the order only while `holder` holds it and, when `version` is given, only at
        that version (a fencing token against a holder acting on stale state)."""
        conditions = [PO.status == S.IN_PROGRESS, PO.operator_id == holder]
        if version is not None:
            conditions.append(PO.version == version)
        return await self._update_where(order_id, conditions, **values)

    async def cancel_if_queued(self, order_id: int) -> ProductionOrder | None:
        """Cancel the order unless production has started (then it is not ours to cancel)."""
        return await self._update_where(order_id, [PO.status == S.QUEUED], status=S.CANCELLED)

    async def _update_where(
        self, order_id: int, conditions: list[ColumnElement[bool]], **values: Any
    ) -> ProductionOrder | None:
        """The MES's only way to change a row: one conditional UPDATE, None when it matched
        nothing; the version goes up by one with every change."""
        result = await self.session.scalars(
            update(PO)
            .where(PO.id == order_id, *conditions)
            .values(**values, version=PO.version + 1, updated_at=func.now())
            .returning(PO)
        )
        return result.one_or_none()

    async def insert_queued(
        self, order_id: int, lines: list[dict[str, Any]]
    ) -> ProductionOrder | None:
        """None when the order is already here (a redelivered event)."""
        result = await self.session.scalars(
            insert(PO)
            .values(id=order_id, status=S.QUEUED, lines=lines)
            .on_conflict_do_nothing()
            .returning(PO)
        )
        return result.one_or_none()

    async def record(
        self, order_id: int, from_status: str | None, to_status: str, operator_id: int | None
    ) -> None:
        self.session.add(
            StatusHistory(
                order_id=order_id,
                from_status=from_status,
                to_status=to_status,
                operator_id=operator_id,
            )
        )

    async def open_assignment(self, order_id: int, operator_id: int) -> None:
        self.session.add(Assignment(order_id=order_id, operator_id=operator_id))

    async def close_assignment(self, order_id: int, outcome: str) -> None:
        await self.session.execute(
            update(Assignment)
            .where(Assignment.order_id == order_id, Assignment.ended_at.is_(None))
            .values(ended_at=func.now(), outcome=outcome)
        )

    async def add_outbox(self, event_type: str, order_id: int, payload: dict[str, Any]) -> None:
        event = MesOutbox(event_type=event_type, order_id=order_id, payload=payload)
        event.traceparent = tracing.traceparent()  # the relay continues this trace
        self.session.add(event)

    async def mark_processed(self, event_id: str) -> bool:
        result = await self.session.execute(
            insert(MesProcessedEvent)
            .values(event_id=event_id)
            .on_conflict_do_nothing()
            .returning(MesProcessedEvent.event_id)
        )
        return result.first() is not None
