"""The Shop API: what clients use."""

from fastapi import FastAPI

from orderflow.kit.app import create_app
from orderflow.kit.settings import Settings
from orderflow.shop.caching import NEAR
from orderflow.shop.clients.router import router as clients
from orderflow.shop.items.router import router as items
from orderflow.shop.orders.router import router as orders
from orderflow.shop.warmer import warmer


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
