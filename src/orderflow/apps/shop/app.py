"""The Shop API: what clients use."""

from fastapi import FastAPI

from orderflow.apps.shop.clients import router as clients
from orderflow.apps.shop.items import router as items
from orderflow.apps.shop.orders import router as orders
from orderflow.kit.app import create_app
from orderflow.kit.settings import Settings
from orderflow.sales.caching import NEAR
from orderflow.sales.catalogue.warmer import warmer


def build(settings: Settings) -> FastAPI:
    return create_app(
        "shop",
        settings,
        databases=("shopdb",),
        namespace="shop",
        near=NEAR,
        routers=[items, clients, orders],
        description="Client-facing: the catalogue, client profiles, orders.",
        extra=warmer,
    )
