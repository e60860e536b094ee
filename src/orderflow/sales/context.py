"""What the Shop's and the CRM's services work with."""

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, FastAPI, Request

from orderflow.cache import TTLPolicy
from orderflow.kit.caching import ServiceCache
from orderflow.kit.deps import Sessions
from orderflow.sales.caching import item_ttl


@dataclass
class Shop:
    sessions: Sessions
    cache: ServiceCache
    item_ttl: TTLPolicy


def get_shop(request: Request) -> Shop:
    return get_shop_of(request.app)


def get_shop_of(app: FastAPI) -> Shop:
    state = app.state
    shop: Shop | None = getattr(state, "shop", None)
    if shop is None:  # built on first use, once the lifespan has opened the resources
        resources = state.resources
        shop = Shop(resources.sessions["shopdb"], state.cache, item_ttl(resources.settings))
        state.shop = shop
    return shop


ShopDep = Annotated[Shop, Depends(get_shop)]
