"""The CRM API: what sellers use."""

from fastapi import FastAPI

from orderflow.apps.common.dashboard import shared_router
from orderflow.apps.common.pages import for_people
from orderflow.apps.crm.catalogue import router as catalogue
from orderflow.apps.crm.items import router as items
from orderflow.apps.crm.orders import router as orders
from orderflow.apps.crm.pages import router as pages
from orderflow.kit.app import create_app
from orderflow.kit.settings import Settings
from orderflow.sales.caching import NAMESPACE, NEAR
from orderflow.sales.context import Sales


def build(settings: Settings) -> FastAPI:
    app = create_app(
        "crm",
        settings,
        databases=("shopdb",),
        namespace=NAMESPACE,
        context=Sales.open,
        near=NEAR,
        routers=[orders, items, pages, catalogue, shared_router()],
        description="Seller-facing: every client's orders, their lifecycle, the catalogue.",
    )
    return for_people(app)
