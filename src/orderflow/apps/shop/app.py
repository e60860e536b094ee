"""The Shop API: what clients use."""

from fastapi import FastAPI

from orderflow.apps.common.dashboard import shared_router
from orderflow.apps.common.pages import for_people
from orderflow.apps.shop.cart import router as cart
from orderflow.apps.shop.clients import router as clients
from orderflow.apps.shop.items import router as items
from orderflow.apps.shop.live import order_feed
from orderflow.apps.shop.live import router as live
from orderflow.apps.shop.my_orders import router as my_orders
from orderflow.apps.shop.orders import router as orders
from orderflow.apps.shop.pages import router as pages
from orderflow.apps.shop.session import session_key
from orderflow.kit.app import create_app, together
from orderflow.kit.settings import Settings
from orderflow.sales.caching import NAMESPACE, NEAR
from orderflow.sales.catalogue.warmer import warmer
from orderflow.sales.context import Sales


def build(settings: Settings) -> FastAPI:
    app = create_app(
        "shop",
        settings,
        databases=("shopdb",),
        namespace=NAMESPACE,
        context=Sales.open,
        near=NEAR,
        routers=[items, clients, orders, pages, cart, live, my_orders, shared_router()],
        description="Client-facing: the catalogue, client profiles, orders.",
        extra=together(warmer, order_feed),
    )
    app.state.session_key = session_key(settings)
    return for_people(app)
