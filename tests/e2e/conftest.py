from collections.abc import Iterator

import pytest

from orderflow.kit.settings import Settings
from tests.clients import server


@pytest.fixture(scope="module")
def shop_url(settings: Settings) -> Iterator[str]:
    with server("shop", settings) as url:
        yield url


@pytest.fixture(scope="module")
def crm_url(settings: Settings) -> Iterator[str]:
    with server("crm", settings) as url:
        yield url


@pytest.fixture(scope="module")
def mes_url(settings: Settings) -> Iterator[str]:
    with server("mes", settings) as url:
        yield url
