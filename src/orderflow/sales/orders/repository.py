"""All SQL over orders, their lines and the ShopDB outbox."""

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from orderflow.data.shopdb import (
    Order,
    OrderLine,
    OrderStatusCount,
    ShopOutbox,
    ShopProcessedEvent,
)


class OrderRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, order_id: int) -> Order | None:
        return await self.session.get(Order, order_id)

    async def by_idempotency_key(self, key: str) -> Order | None:
        return await self.session.scalar(select(Order).where(Order.idempotency_key == key))

    async def insert(self, **values: Any) -> Order | None:
        """None when the idempotency key is already used (the unique index decides)."""
        stmt = insert(Order).values(**values)
        if values.get("idempotency_key"):
            stmt = stmt.on_conflict_do_nothing(index_elements=["idempotency_key"])
        result = await self.session.scalars(stmt.returning(Order))
        return result.one_or_none()

    async def add_lines(self, lines: list[OrderLine]) -> None:
        self.session.add_all(lines)
        await self.session.flush()

    async def lines_of(self, order_ids: Sequence[int]) -> dict[int, list[OrderLine]]:
        rows = await self.session.scalars(
            select(OrderLine)
            .where(OrderLine.order_id.in_(order_ids))
            .order_by(OrderLine.order_id, OrderLine.line_no)
        )
        by_order: dict[int, list[OrderLine]] = defaultdict(list)
        for line in rows:
            by_order[line.order_id].append(line)
        return by_order

    async def many(self, order_ids: Sequence[int]) -> Sequence[Order]:
        return (await self.session.scalars(select(Order).where(Order.id.in_(order_ids)))).all()

    async def search_ids(
        self,
        *,
        status: str | None,
        client_id: int | None,
        created_from: datetime | None,
        created_to: datetime | None,
        limit: int,
        offset: int,
    ) -> tuple[list[int], int]:
        """One page of ids, newest first, and how many orders match in all."""
        where: list[ColumnElement[bool]] = []
        if status:
            where.append(Order.status == status)
        if client_id:
            where.append(Order.client_id == client_id)
        if created_from:
            where.append(Order.created_at >= created_from)
        if created_to:
            where.append(Order.created_at < created_to)
        ids = await self.session.scalars(
            select(Order.id)
            .where(*where)
            .order_by(Order.created_at.desc(), Order.id.desc())
            .limit(limit)
            .offset(offset)
        )
        if client_id or created_from or created_to:
            total = await self.session.scalar(select(func.count()).select_from(Order).where(*where))
        else:  # by status or all: the counter table, not a count over every order
            counted = select(func.sum(OrderStatusCount.n))
            if status:
                counted = counted.where(OrderStatusCount.status == status)
            total = await self.session.scalar(counted)
        return list(ids.all()), int(total or 0)

    async def count_by_status(self) -> dict[str, int]:
        """From the counter table the triggers keep (see `OrderStatusCount`)."""
        rows = await self.session.execute(select(OrderStatusCount.status, OrderStatusCount.n))
        return {status: int(n) for status, n in rows}

    async def set_status(self, order_id: int, status: str, *, from_any: list[str]) -> Order | None:
        """Conditional update: only from one of `from_any`; None when the row is elsewhere."""
        result = await self.session.scalars(
            update(Order)
            .where(Order.id == order_id, Order.status.in_(from_any))
            .values(status=status, version=Order.version + 1, updated_at=func.now())
            .returning(Order)
        )
        return result.one_or_none()

    async def add_outbox(self, event_type: str, order_id: int, payload: dict[str, Any]) -> None:
        self.session.add(ShopOutbox(event_type=event_type, order_id=order_id, payload=payload))
        await self.session.flush()

    async def mark_processed(self, event_id: str) -> bool:
        """Record `event_id` as applied; False when it was applied before (a redelivery)."""
        result = await self.session.execute(
            insert(ShopProcessedEvent)
            .values(event_id=event_id)
            .on_conflict_do_nothing()
            .returning(ShopProcessedEvent.event_id)
        )
        return result.first() is not None
