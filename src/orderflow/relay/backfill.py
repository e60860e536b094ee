"""Names for items the MES met before events carried them (orders queued before mesdb_0005,
or loaded by the seed): the relay reaches both databases, so it copies them once as it starts.

Only items of orders still on a board (queued or in progress) are looked up: a finished order
is not shown. An item gone from the catalogue stays "item N". A failure is logged and the relay
goes on: names are for people, never a reason to hold up a hand-off.
"""

import logging

from orderflow.production.context import Production
from orderflow.production.products.repository import ProductRepository
from orderflow.sales.catalogue.repository import ItemRepository
from orderflow.sales.context import Sales

log = logging.getLogger(__name__)


async def backfill_item_names(sales: Sales, production: Production) -> int:
    """Name every unnamed item on the boards that ShopDB knows; returns how many."""
    async with production.unit() as uow:
        missing = await uow.repository(ProductRepository).unnamed_item_ids()
    if not missing:
        return 0
    async with sales.unit() as uow:
        names = await uow.repository(ItemRepository).names(missing)
    async with production.unit() as uow:
        await uow.repository(ProductRepository).remember(names)
    log.info("named %d items of orders queued before names were sent", len(names))
    return len(names)
