"""Every dependency of every route is `async def`: FastAPI runs a plain `def` dependency in its
thread pool, a thread hop (and a GIL hand-over) on every request that uses it. A profile of the
Shop under the mixed load (py-spy, 100 users) found `run_in_threadpool` in 4.4 % of all its
samples, about a tenth of its busy ones, for dependencies that only read `app.state`."""

import inspect
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from orderflow.apps.crm import app as crm
from orderflow.apps.mes import app as mes
from orderflow.apps.shop import app as shop
from orderflow.kit.settings import Settings


def api_routes(routes: list[Any]) -> Iterator[APIRoute]:
    for route in routes:
        if isinstance(route, APIRoute):
            yield route
        elif (included := getattr(route, "original_router", None)) is not None:
            # FastAPI keeps an included router whole; its own dependencies are checked too
            assert all(is_async(d.dependency) for d in route.include_context.dependencies)
            yield from api_routes(included.routes)


def calls(dependant: Dependant) -> Iterator[Any]:
    for dependency in dependant.dependencies:
        if dependency.call is not None:
            yield dependency.call
        yield from calls(dependency)


def is_async(call: Any) -> bool:
    return (
        inspect.iscoroutinefunction(call)
        or inspect.isasyncgenfunction(call)
        or inspect.iscoroutinefunction(getattr(call, "__call__", None))  # noqa: B004
    )


@pytest.mark.parametrize("service", [shop, crm, mes], ids=["shop", "crm", "mes"])
def test_every_dependency_and_endpoint_is_async(service: Any) -> None:
    app = service.build(Settings())
    found = list(api_routes(app.router.routes))
    assert found, "no routes found: the walk no longer sees the app's routes"
    sync = {
        f"{route.path}: {getattr(call, '__qualname__', call)}"
        for route in found
        for call in [route.endpoint, *calls(route.dependant)]
        if not is_async(call)
    }
    assert not sync, f"run in the thread pool on every request: {sorted(sync)}"
