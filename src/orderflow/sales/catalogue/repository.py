"""All SQL over the catalogue."""

from collections.abc import Iterable, Sequence

from sqlalchemy import func, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from orderflow.data.shopdb import Item, Order, OrderLine


class ItemRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, item_id: int) -> Item | None:
        return await self.session.get(Item, item_id)

    async def search(
        self, *, category: str | None, q: str | None, limit: int, offset: int
    ) -> tuple[Sequence[Item], int]:
        where = []
        if category:
            where.append(Item.category == category)
        if q:
            escaped = q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            where.append(Item.name.ilike(f"%{escaped}%", escape="\\"))
        rows = await self.session.scalars(
            select(Item).where(*where).order_by(Item.id).limit(limit).offset(offset)
        )
        total = await self.session.scalar(select(func.count()).select_from(Item).where(*where))
        return rows.all(), int(total or 0)

    async def many(self, item_ids: list[int]) -> Sequence[Item]:
        return (await self.session.scalars(select(Item).where(Item.id.in_(item_ids)))).all()

    async def names(self, item_ids: Iterable[int]) -> dict[int, str]:
        ids = sorted(set(item_ids))
        rows = await self.session.execute(select(Item.id, Item.name).where(Item.id.in_(ids)))
        return {item_id: name for item_id, name in rows}

    async def most_ordered(self, limit: int) -> list[int]:
        """Items in the most order lines of the last 30 days: what clients look at most."""
        recent = func.now() - text("interval '30 days'")
        rows = await self.session.execute(
            select(OrderLine.item_id)
            .join(Order, Order.id == OrderLine.order_id)
            .where(Order.created_at >= recent)
            .group_by(OrderLine.item_id)
            .order_by(func.count().desc())
            .limit(limit)
        )
        return [item_id for (item_id,) in rows]

    async def prices(self, item_ids: Iterable[int]) -> dict[int, int]:
        rows = await self.session.execute(
            select(Item.id, Item.price).where(Item.id.in_(set(item_ids)))
        )
        return {row.id: row.price for row in rows}

    async def add(self, item: Item) -> Item:
        self.session.add(item)
        await self.session.flush()
        await self.session.refresh(item)
        return item

    async def update(self, item_id: int, **values: object) -> Item | None:
        result = await self.session.scalars(
            update(Item)
            .where(Item.id == item_id)
            .values(**values, version=Item.version + 1, updated_at=func.now())
            .returning(Item)
        )
        return result.one_or_none()

    async def categories(self) -> list[tuple[str, int]]:
        """Every category with how many items it has, by name."""
        rows = await self.session.execute(
            select(Item.category, func.count()).group_by(Item.category).order_by(Item.category)
        )
        return [(category, int(count)) for category, count in rows]
