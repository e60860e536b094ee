"""The catalogue: reads for the Shop, edits for the CRM's sellers."""

from orderflow.data.shopdb import Item
from orderflow.kit.db import transaction
from orderflow.kit.deps import Sessions
from orderflow.kit.errors import NotFound
from orderflow.kit.http import dumps
from orderflow.kit.pagination import Page, list_body
from orderflow.shop.items.repository import ItemRepository
from orderflow.shop.items.schemas import ItemIn, item_dict


async def get_item(sessions: Sessions, item_id: int) -> bytes:
    async with transaction(sessions) as session:
        item = await ItemRepository(session).get(item_id)
    if item is None:
        raise NotFound(f"item {item_id} does not exist")
    return dumps(item_dict(item))


async def search_items(
    sessions: Sessions, category: str | None, q: str | None, page: Page
) -> bytes:
    async with transaction(sessions) as session:
        rows, total = await ItemRepository(session).search(
            category=category, q=q, limit=page.limit, offset=page.offset
        )
    return dumps(list_body([item_dict(i) for i in rows], total))


async def create_item(sessions: Sessions, data: ItemIn) -> bytes:
    async with transaction(sessions) as session:
        item = await ItemRepository(session).add(Item(**data.model_dump()))
    return dumps(item_dict(item))


async def replace_item(sessions: Sessions, item_id: int, data: ItemIn) -> bytes:
    async with transaction(sessions) as session:
        item = await ItemRepository(session).update(item_id, **data.model_dump())
    if item is None:
        raise NotFound(f"item {item_id} does not exist")
    return dumps(item_dict(item))
