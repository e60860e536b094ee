"""SQL for the sellers' views over all clients' orders."""

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from orderflow.data.shopdb import Order


class OrderViewRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def search(
        self,
        *,
        status: str | None,
        client_id: int | None,
        created_from: datetime | None,
        created_to: datetime | None,
        limit: int,
        offset: int,
    ) -> tuple[Sequence[Order], int]:
        where: list[ColumnElement[bool]] = []
        if status:
            where.append(Order.status == status)
        if client_id:
            where.append(Order.client_id == client_id)
        if created_from:
            where.append(Order.created_at >= created_from)
        if created_to:
            where.append(Order.created_at < created_to)
        rows = await self.session.scalars(
            select(Order)
            .where(*where)
            .order_by(Order.created_at.desc(), Order.id.desc())
            .limit(limit)
            .offset(offset)
        )
        total = await self.session.scalar(select(func.count()).select_from(Order).where(*where))
        return rows.all(), int(total or 0)

    async def count_by_status(self) -> dict[str, int]:
        rows = await self.session.execute(select(Order.status, func.count()).group_by(Order.status))
        return {status: count for status, count in rows}
