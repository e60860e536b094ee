"""The dashboard's switch turns the cache off, and the hit counters stop moving."""

import re
from typing import Any

import pytest
from playwright.async_api import expect

from tests.browser.helpers import Platform, get_json

SOME = re.compile(r"^[1-9][0-9.]*$")


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
