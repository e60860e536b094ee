"""The MES API: what production operators use."""

from fastapi import FastAPI

from orderflow.apps.mes.events import router as events
from orderflow.apps.mes.orders import router as orders
from orderflow.kit.app import create_app
from orderflow.kit.settings import Settings
from orderflow.production.context import production_context


def build(settings: Settings) -> FastAPI:
    return create_app(
        "mes",
        settings,
        databases=("mesdb",),
        namespace="mes",
        routers=[orders, events],
        description="Operator-facing: the production queue, claims, statuses, live events.",
        extra=production_context,
    )
