"""The catalogue: cached reads for the Shop, edits for the CRM's sellers.

Items are cache-aside and expire inside the quiet window; a seller's edit invalidates the
item (a tombstone at the new version, so a slow reader cannot put the old one back) and bumps
the catalogue's generation, so no catalogue page shows the old item either. Both happen after
the commit and before the seller is answered, journalled in the edit's transaction so that they
are repaired if they fail or the process dies first (`UnitOfWork.keep_cached`).
"""

from collections.abc import Iterable

import orjson

from orderflow.data.shopdb import Item
from orderflow.kit.errors import NotFound
from orderflow.kit.http import dumps
from orderflow.kit.pagination import Page, list_body
from orderflow.sales.caching import CATALOGUE, CATALOGUE_PAGE, ITEM
from orderflow.sales.catalogue.repository import ItemRepository
from orderflow.sales.catalogue.schemas import ItemIn, item_dict
from orderflow.sales.context import Sales
from orderflow.service_cache.upkeep import Upkeep


async def get_item(sales: Sales, item_id: int) -> bytes:
    async def load() -> tuple[int, bytes]:
        async with sales.unit() as uow:
            item = await uow.repository(ItemRepository).get(item_id)
        if item is None:
            raise NotFound(f"item {item_id} does not exist")
        return item.version, dumps(item_dict(item))

    return await sales.cache.read(ITEM, item_id, load, sales.item_ttl)


async def search_items(sales: Sales, category: str | None, q: str | None, page: Page) -> bytes:
    async def load() -> tuple[int, bytes]:
        async with sales.unit() as uow:
            rows, total = await uow.repository(ItemRepository).search(
                category=category, q=q, limit=page.limit, offset=page.offset
            )
        return 0, dumps(list_body([item_dict(i) for i in rows], total))

    key = (category or "", q or "", page.limit, page.offset)
    return await sales.cache.read_view(CATALOGUE_PAGE, key, [CATALOGUE], load, sales.item_ttl)


async def create_item(sales: Sales, data: ItemIn) -> bytes:
    """A new item: only the catalogue pages change (its id was never cached; a repair of the
    journal row would tombstone it at version 1, which refuses nothing)."""
    async with sales.unit() as uow:
        item = await uow.repository(ItemRepository).add(Item(**data.model_dump()))
        await uow.keep_cached(
            Upkeep(ITEM, item.id, item.version, (CATALOGUE,)),
            lambda: sales.cache.bump([CATALOGUE]),
        )
    return dumps(item_dict(item))


async def replace_item(sales: Sales, item_id: int, data: ItemIn) -> bytes:
    async with sales.unit() as uow:
        item = await uow.repository(ItemRepository).update(item_id, **data.model_dump())
        if item is None:
            raise NotFound(f"item {item_id} does not exist")
        version = item.version

        async def apply() -> bool:
            dropped = await sales.cache.invalidate(ITEM, item_id, version)
            return await sales.cache.bump([CATALOGUE]) and dropped

        await uow.keep_cached(Upkeep(ITEM, item_id, version, (CATALOGUE,)), apply)
    return dumps(item_dict(item))


async def item_names(sales: Sales, item_ids: Iterable[int]) -> dict[int, str]:
    """Each item's name, for pages listing an order's lines (cached reads); a placeholder for an
    item that no longer exists."""
    names = {}
    for item_id in item_ids:
        try:
            names[item_id] = orjson.loads(await get_item(sales, item_id))["name"]
        except NotFound:
            names[item_id] = f"item {item_id}"
    return names


async def popular_item_ids(sales: Sales, limit: int) -> list[int]:
    """The items to re-warm at the start of the quiet window (see `warm_items`)."""
    async with sales.unit() as uow:
        return await uow.repository(ItemRepository).most_ordered(limit)


async def warm_items(sales: Sales, item_ids: list[int]) -> int:
    """Load `item_ids` into the cache with fresh quiet-window TTLs; returns how many.

    Each fill takes a lease first, as a miss does: a seller's edit committed while the job
    reads revokes it, so the job never stores an item older than the edit."""
    cache = sales.cache.cache
    if cache is None or not item_ids:
        return 0

    async def load(indexes: list[int]) -> dict[int, tuple[int | None, bytes]]:
        wanted = [item_ids[i] for i in indexes]
        async with sales.unit() as uow:
            items = {item.id: item for item in await uow.repository(ItemRepository).many(wanted)}
        return {
            i: (item.version, dumps(item_dict(item)))
            if (item := items.get(item_ids[i]))
            else (None, b"{}")
            for i in indexes
        }

    return await cache.refresh_many(ITEM, item_ids, load, sales.item_ttl)
