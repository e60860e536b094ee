"""`Annotated` dependency shortcuts; tests override the resources on app.state."""

from typing import Annotated

from fastapi import Depends, Request

from orderflow.kit.resources import Resources
from orderflow.kit.unit_of_work import Sessions

__all__ = ["ResourcesDep", "Sessions", "get_resources"]


async def get_resources(request: Request) -> Resources:
    resources: Resources = request.app.state.resources
    return resources


ResourcesDep = Annotated[Resources, Depends(get_resources)]
