"""Browser tests: Playwright for Python driving a real headless Chromium against real servers.

Playwright's own browser download needs general internet, so the tests drive the system's
Chromium (Debian's `chromium`, which `make browser` installs) through `executable_path`. With no
Chromium they skip with a one-line reason, except under CI (`CI` set), where they fail.
The Shop, the CRM, the MES and the relay run as real processes for the whole browser session.
"""

import os
import shutil
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from orderflow.kit.settings import Settings
from tests.browser.helpers import CHROMIUM_ARGS, Platform
from tests.clients import running, server

CANDIDATES = ("chromium", "chromium-headless-shell", "chromium-browser", "google-chrome")
LIVE = {"ORDERFLOW_SSE_HEARTBEAT_S": "1"}


def find_chromium() -> str | None:
    if configured := os.environ.get("ORDERFLOW_CHROMIUM"):
        return configured
    for name in CANDIDATES:
        if found := shutil.which(name):
            return found
    return None


def unavailable(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI is set: browser tests must run)", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def chromium() -> str:
    path = find_chromium()
    if path is None:
        unavailable("no Chromium on this machine: `make browser` installs Debian's")
    try:
        import playwright  # noqa: F401
    except ImportError:
        unavailable("Playwright is not installed: `make install`")
    assert path is not None
    return path


# Package scope: the browser and the servers stop after the last browser test, not with the
# session, so the tests after them get the machine back.
@pytest.fixture(scope="package")
async def browser(chromium: str) -> AsyncIterator[Any]:
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        launched = await p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        yield launched
        await launched.close()


@pytest.fixture(scope="package")
def platform(chromium: str, settings: Settings) -> Iterator[Platform]:
    """The three services and the relay as real processes, for all the browser tests."""
    with (
        server("shop", settings) as shop,
        server("crm", settings) as crm,
        server("mes", settings, LIVE) as mes,
        running(["relay"], settings),
    ):
        yield Platform(shop, crm, mes, settings)


@pytest.fixture
async def context(browser: Any) -> AsyncIterator[Any]:
    made = await browser.new_context(viewport={"width": 1280, "height": 900})
    made.set_default_timeout(10_000)
    yield made
    await made.close()


@pytest.fixture
async def page(context: Any) -> Any:
    return await context.new_page()


def screenshot_dir() -> Path | None:
    """Where `make screens` wants the screenshots (ORDERFLOW_SCREENSHOTS), else None."""
    target = os.environ.get("ORDERFLOW_SCREENSHOTS")
    if not target:
        return None
    path = Path(target)
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture
def shop_load(platform: Platform) -> Iterator[None]:
    """Clients reading items and catalogue pages, ~50 reads a second, while the test runs."""
    stop = threading.Event()

    def read() -> None:
        with httpx.Client(base_url=platform.shop, timeout=5) as shop:
            n = 0
            while not stop.wait(0.02):
                n += 1
                shop.get(f"/items/{n % 20 + 1}")
                if n % 5 == 0:
                    shop.get("/items", params={"limit": 24, "offset": 24 * (n % 3)})

    worker = threading.Thread(target=read, daemon=True)
    worker.start()
    try:
        yield
    finally:
        stop.set()
        worker.join(5)
        httpx.put(f"{platform.shop}/admin/cache", json={"mode": "on"}, timeout=10)
