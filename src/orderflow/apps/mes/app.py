"""The MES API: what production operators use."""

from fastapi import FastAPI

from orderflow.apps.common.dashboard import shared_router
from orderflow.apps.common.pages import for_people
from orderflow.apps.mes.events import router as events
from orderflow.apps.mes.live import router as live
from orderflow.apps.mes.orders import router as orders
from orderflow.apps.mes.pages import router as pages
from orderflow.kit.app import create_app
from orderflow.kit.settings import Settings
from orderflow.production.caching import NAMESPACE
from orderflow.production.context import Production, live_boards


def build(settings: Settings) -> FastAPI:
    app = create_app(
        "mes",
        settings,
        databases=("mesdb",),
        namespace=NAMESPACE,
        context=Production.open,
        routers=[orders, events, pages, live, shared_router()],
        description="Operator-facing: the production queue, claims, statuses, live events.",
        extra=live_boards,
    )
    return for_people(app)
