"""SQL over an outbox table (both databases' outboxes have one shape)."""

from collections.abc import Sequence
from typing import cast

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from orderflow.data.mesdb import MesOutbox
from orderflow.data.shopdb import ShopOutbox

OutboxRow = ShopOutbox | MesOutbox


class OutboxRepository:
    def __init__(self, session: AsyncSession, model: type[ShopOutbox] | type[MesOutbox]) -> None:
        self.session = session
        self.model = model

    async def lock_batch(self, limit: int) -> Sequence[OutboxRow]:
        """Oldest unpublished events, locked; other relays skip them instead of waiting."""
        m = self.model
        rows = await self.session.scalars(
            select(m)
            .where(m.published_at.is_(None))
            .order_by(m.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        return cast(Sequence[OutboxRow], rows.all())

    async def mark_published(self, ids: list[int]) -> None:
        m = self.model
        await self.session.execute(update(m).where(m.id.in_(ids)).values(published_at=func.now()))

    async def backlog(self) -> int:
        m = self.model
        count = await self.session.scalar(
            select(func.count()).select_from(m).where(m.published_at.is_(None))
        )
        return int(count or 0)
