"""`Annotated` dependency shortcuts; tests override the resources on app.state."""

from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from orderflow.kit.resources import Resources

Sessions = async_sessionmaker[AsyncSession]


def get_resources(request: Request) -> Resources:
    resources: Resources = request.app.state.resources
    return resources


ResourcesDep = Annotated[Resources, Depends(get_resources)]
