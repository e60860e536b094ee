"""The catalogue: cached reads for the Shop, edits for the CRM's sellers.

Items are cache-aside and expire inside the quiet window; a seller's edit invalidates the
item (a tombstone at the new version, so a slow reader cannot put the old one back) and bumps
the catalogue's generation, so no catalogue page shows the old item either.
"""

from orderflow.data.shopdb import Item
from orderflow.kit.db import transaction
from orderflow.kit.errors import NotFound
from orderflow.kit.http import dumps
from orderflow.kit.pagination import Page, list_body
from orderflow.sales.caching import CATALOGUE, CATALOGUE_PAGE, ITEM
from orderflow.sales.context import Shop
from orderflow.sales.catalogue.repository import ItemRepository
from orderflow.sales.catalogue.schemas import ItemIn, item_dict


async def get_item(shop: Shop, item_id: int) -> bytes:
    async def load() -> tuple[int, bytes]:
        async with transaction(shop.sessions) as session:
            item = await ItemRepository(session).get(item_id)
        if item is None:
            raise NotFound(f"item {item_id} does not exist")
        return item.version, dumps(item_dict(item))

    return await shop.cache.read(ITEM, item_id, load, shop.item_ttl)


async def search_items(shop: Shop, category: str | None, q: str | None, page: Page) -> bytes:
    async def load() -> tuple[int, bytes]:
        async with transaction(shop.sessions) as session:
            rows, total = await ItemRepository(session).search(
                category=category, q=q, limit=page.limit, offset=page.offset
            )
        return 0, dumps(list_body([item_dict(i) for i in rows], total))

    key = (category or "", q or "", page.limit, page.offset)
    return await shop.cache.read_view(CATALOGUE_PAGE, key, [CATALOGUE], load, shop.item_ttl)


async def create_item(shop: Shop, data: ItemIn) -> bytes:
    async with transaction(shop.sessions) as session:
        item = await ItemRepository(session).add(Item(**data.model_dump()))
    await shop.cache.bump([CATALOGUE])
    return dumps(item_dict(item))


async def replace_item(shop: Shop, item_id: int, data: ItemIn) -> bytes:
    async with transaction(shop.sessions) as session:
        item = await ItemRepository(session).update(item_id, **data.model_dump())
    if item is None:
        raise NotFound(f"item {item_id} does not exist")
    await shop.cache.invalidate(ITEM, item_id, item.version)
    await shop.cache.bump([CATALOGUE])
    return dumps(item_dict(item))


async def popular_item_ids(shop: Shop, limit: int) -> list[int]:
    """The items to re-warm at the start of the quiet window (see `warm_items`)."""
    async with transaction(shop.sessions) as session:
        return await ItemRepository(session).most_ordered(limit)


async def warm_items(shop: Shop, item_ids: list[int]) -> int:
    """Load `item_ids` into the cache with fresh quiet-window TTLs; returns how many."""
    async with transaction(shop.sessions) as session:
        items = await ItemRepository(session).many(item_ids)
    cache = shop.cache.cache
    if cache is None:
        return 0
    stored = 0
    for item in items:
        body = dumps(item_dict(item))
        stored += await cache.put(ITEM, item.id, item.version, body, shop.item_ttl)
    return stored
