"""What production knows of items: their names, carried by the events that queue orders.

The MES has no catalogue; the event that queues an order names each line's item, and the MES
keeps the latest name per item (a rename in the CRM reaches it with the next order of that
item). A board reads the names of the rows it shows in one primary-key query; an item the
MES never heard named reads "item N".
"""

from collections.abc import Iterable, Mapping
from typing import Any

from orderflow.production.context import Production
from orderflow.production.products.repository import ProductRepository


async def item_names(p: Production, item_ids: Iterable[int]) -> dict[int, str]:
    ids = list(item_ids)
    async with p.unit() as uow:
        known = await uow.repository(ProductRepository).names(ids)
    return {i: known.get(i, f"item {i}") for i in ids}


def names_in(lines: Iterable[Mapping[str, Any]]) -> dict[int, str]:
    """The item names an event's lines carry (events from before names were sent have none)."""
    return {int(ln["item_id"]): str(ln["name"]) for ln in lines if ln.get("name")}


def item_ids_of(orders: Iterable[Mapping[str, Any]]) -> set[int]:
    return {int(line["item_id"]) for o in orders for line in o["lines"]}
