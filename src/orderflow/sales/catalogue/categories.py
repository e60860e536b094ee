"""The catalogue's categories, for browsing: a view of the catalogue family.

Cached like a catalogue page (same entity, same family): a seller's edit bumps the catalogue's
generation, so a new category shows at once, and otherwise it expires in the quiet window.
"""

from orderflow.kit.http import dumps
from orderflow.sales.caching import CATALOGUE, CATALOGUE_PAGE
from orderflow.sales.catalogue.repository import ItemRepository
from orderflow.sales.context import Sales

KEY = ("categories",)  # catalogue page keys have four parts: no collision


async def list_categories(sales: Sales) -> bytes:
    """`{"items": [{"name": ..., "count": n}], "total": n}`, by name."""

    async def load() -> tuple[int, bytes]:
        async with sales.unit() as uow:
            rows = await uow.repository(ItemRepository).categories()
        items = [{"name": name, "count": count} for name, count in rows]
        return 0, dumps({"items": items, "total": len(items)})

    return await sales.cache.read_view(CATALOGUE_PAGE, KEY, [CATALOGUE], load, sales.item_ttl)
