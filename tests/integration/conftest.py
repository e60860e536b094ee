from collections.abc import AsyncIterator

import httpx
import pytest

from orderflow.kit.settings import Settings
from tests.clients import api


@pytest.fixture(scope="session")
async def shop(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with api("shop", settings) as client:
        yield client


@pytest.fixture(scope="session")
async def crm(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with api("crm", settings) as client:
        yield client


@pytest.fixture(scope="session")
async def mes(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with api("mes", settings) as client:
        yield client
