"""All SQL over the MES's product data (item names)."""

from collections.abc import Iterable, Mapping

from sqlalchemy import select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from orderflow.data.mesdb import Product

# Items on the boards (queued or in progress) whose name production does not know yet.
UNNAMED = text(
    "SELECT DISTINCT (line->>'item_id')::bigint FROM production_orders AS po,"
    " jsonb_array_elements(po.lines) AS line"
    " WHERE po.status IN ('queued', 'in_progress') AND NOT EXISTS"
    " (SELECT 1 FROM products AS p WHERE p.item_id = (line->>'item_id')::bigint)"
)


class ProductRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def names(self, item_ids: Iterable[int]) -> dict[int, str]:
        ids = sorted(set(item_ids))
        if not ids:
            return {}
        rows = await self.session.execute(
            select(Product.item_id, Product.name).where(Product.item_id.in_(ids))
        )
        return {item_id: name for item_id, name in rows}

    async def remember(self, names: Mapping[int, str]) -> None:
        """Insert or rename; in item order, so two writers never wait on each other in a
        circle."""
        if not names:
            return
        rows = [{"item_id": i, "name": names[i][:200]} for i in sorted(names)]
        stmt = insert(Product).values(rows)
        await self.session.execute(
            stmt.on_conflict_do_update(
                index_elements=[Product.item_id],
                set_={"name": stmt.excluded.name, "updated_at": text("now()")},
                where=Product.name.is_distinct_from(stmt.excluded.name),
            )
        )

    async def unnamed_item_ids(self) -> list[int]:
        return [int(i) for i in (await self.session.scalars(UNNAMED)).all()]
