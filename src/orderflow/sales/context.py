"""What the sales domain's services (behind the Shop and the CRM) work with, built in one place."""

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, FastAPI, Request

from orderflow.cache import TTLPolicy
from orderflow.data.shopdb import ShopUpkeep
from orderflow.kit.resources import Resources
from orderflow.kit.unit_of_work import Sessions, UnitOfWork
from orderflow.sales.caching import JOURNALLED, NAMESPACE, item_ttl
from orderflow.service_cache.facade import ServiceCache
from orderflow.service_cache.journal import UpkeepJournal
from orderflow.service_cache.modes import CacheModes


@dataclass
class Sales:
    sessions: Sessions  # ShopDB
    cache: ServiceCache  # the "shop" namespace, which the Shop and the CRM share
    item_ttl: TTLPolicy
    journal: UpkeepJournal  # what writes owe the cache, kept in ShopDB (service_cache/journal.py)

    @classmethod
    def open(cls, resources: Resources, modes: CacheModes, service: str) -> "Sales":
        """The context of `service` (shop, crm, or the relay writing for them)."""
        settings, sessions = resources.settings, resources.sessions["shopdb"]
        cache = ServiceCache(resources.caches.get(NAMESPACE), modes, service)
        journal = UpkeepJournal(
            sessions, ShopUpkeep, cache, JOURNALLED, settings, database="shopdb"
        )
        return cls(sessions, cache, item_ttl(settings), journal)

    def unit(self, *, defer: bool = False) -> UnitOfWork:
        return UnitOfWork(self.sessions, self.journal, defer=defer)


async def get_sales(request: Request) -> Sales:
    return get_sales_of(request.app)


def get_sales_of(app: FastAPI) -> Sales:
    sales: Sales = app.state.context  # opened by the app's lifespan (`kit.app.create_app`)
    return sales


SalesDep = Annotated[Sales, Depends(get_sales)]
