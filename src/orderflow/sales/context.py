"""What the sales domain's services (behind the Shop and the CRM) work with."""

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, FastAPI, Request

from orderflow.cache import TTLPolicy
from orderflow.kit.caching import ServiceCache
from orderflow.kit.deps import Sessions
from orderflow.sales.caching import item_ttl


@dataclass
class Sales:
    sessions: Sessions
    cache: ServiceCache
    item_ttl: TTLPolicy


def get_sales(request: Request) -> Sales:
    return get_sales_of(request.app)


def get_sales_of(app: FastAPI) -> Sales:
    state = app.state
    sales: Sales | None = getattr(state, "sales", None)
    if sales is None:  # built on first use, once the lifespan has opened the resources
        resources = state.resources
        sales = Sales(resources.sessions["shopdb"], state.cache, item_ttl(resources.settings))
        state.sales = sales
    return sales


SalesDep = Annotated[Sales, Depends(get_sales)]
