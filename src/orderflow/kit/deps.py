"""`Annotated` dependency shortcuts; tests override the resources on app.state."""

from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from orderflow.kit.resources import Resources

Sessions = async_sessionmaker[AsyncSession]


def get_resources(request: Request) -> Resources:
    resources: Resources = request.app.state.resources
    return resources


def get_shop_sessions(request: Request) -> Sessions:
    return get_resources(request).sessions["shopdb"]


def get_mes_sessions(request: Request) -> Sessions:
    return get_resources(request).sessions["mesdb"]


ResourcesDep = Annotated[Resources, Depends(get_resources)]
ShopSessions = Annotated[Sessions, Depends(get_shop_sessions)]
MesSessions = Annotated[Sessions, Depends(get_mes_sessions)]
