"""The dashboard's switch turns the cache off, and the hit counters stop moving."""

import re
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from playwright.async_api import expect

from tests.browser.helpers import Platform, get_json

SOME = re.compile(r"^[1-9][0-9.]*$")


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

    worker = threading.Thread(target=read, daemon=True)
    worker.start()
    try:
        yield
    finally:
        stop.set()
        worker.join(5)
        httpx.put(f"{platform.shop}/admin/cache", json={"mode": "on"}, timeout=10)


@pytest.mark.usefixtures("shop_load")
async def test_the_switch_turns_the_cache_off_and_hits_stop(platform: Platform, page: Any) -> None:
    await page.goto(f"{platform.shop}/admin/")
    await expect(page.get_by_role("heading", level=1)).to_contain_text("Cache dashboard")
    await expect(page.locator("#mode")).to_have_text("on")
    await expect(page.locator("#hits-rate")).to_have_text(SOME)
    await expect(page.locator("#reads-chart canvas")).to_have_count(1)  # uPlot drew it

    await page.get_by_label("off: straight to PostgreSQL").check()
    await page.get_by_role("button", name="Apply to every process").click()
    await expect(page.locator("#mode")).to_have_text("off")
    await expect(page.locator("#hits-rate")).to_have_text("0.0", timeout=5_000)
    await expect(page.locator("#statements-rate")).to_have_text(SOME)  # PostgreSQL serves
    before = await page.locator("#hits-total").text_content()
    await page.wait_for_timeout(2_000)
    await expect(page.locator("#hits-total")).to_have_text(before or "")
    assert get_json(f"{platform.shop}/admin/cache")["mode"] == "off"
