"""SQL over an outbox table (both databases' outboxes have one shape)."""

import zlib
from collections.abc import Sequence
from typing import cast

from sqlalchemy import func, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from orderflow.data.mesdb import MesOutbox
from orderflow.data.shopdb import ShopOutbox

OutboxRow = ShopOutbox | MesOutbox


class OutboxRepository:
    def __init__(self, session: AsyncSession, model: type[ShopOutbox] | type[MesOutbox]) -> None:
        self.session = session
        self.model = model

    async def take_turn(self) -> bool:
        """Whether this transaction may deliver from this outbox: one relay at a time, so that
        one order's events are applied in the order they were written. Rows taken by several
        relays at once (`SKIP LOCKED`, until 2026-12-07) let a later batch commit before an
        earlier one: a cancel applied before its confirmation changes nothing, and the
        confirmation then queues a cancelled order. A transaction-level advisory lock: a relay
        that dies lets it go with its connection."""
        key = zlib.crc32(f"orderflow relay {self.model.__tablename__}".encode())
        taken = await self.session.scalar(
            text("SELECT pg_try_advisory_xact_lock(:key)"), {"key": key}
        )
        return bool(taken)

    async def next_batch(self, limit: int) -> Sequence[OutboxRow]:
        """The oldest unpublished events (no row locks: `take_turn` keeps other relays out)."""
        m = self.model
        rows = await self.session.scalars(
            select(m).where(m.published_at.is_(None)).order_by(m.id).limit(limit)
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
