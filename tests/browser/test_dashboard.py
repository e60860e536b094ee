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

    await expect(page.locator("#redis-health")).to_have_text("healthy")  # not "closed"
    await expect(page.locator("main")).not_to_contain_text("client_order_view")

    await page.get_by_label("Off: read straight from PostgreSQL").check()
    await page.get_by_role("button", name="Review the switch…").click()  # asks first
    await expect(page.get_by_role("heading", level=1)).to_have_text("Switch the Shop's cache off?")
    await expect(page.locator("main")).to_contain_text("every read goes straight to PostgreSQL")
    await page.get_by_role("link", name="No, leave it as it is").click()
    await expect(page.locator("#mode")).to_have_text("on")
    assert get_json(f"{platform.shop}/admin/cache")["mode"] == "on"

    await page.get_by_label("Off: read straight from PostgreSQL").check()
    await page.get_by_role("button", name="Review the switch…").click()
    await page.get_by_role("button", name="Yes, switch it off").click()
    await expect(page.locator("#notice")).to_contain_text("Switched")
    await expect(page.locator("#mode")).to_have_text("off")
    await expect(page.locator("#mode-words")).to_contain_text("nothing is lost")
    await expect(page.locator("#hits-rate")).to_have_text("0.0", timeout=5_000)
    await expect(page.locator("#statements-rate")).to_have_text(SOME)  # PostgreSQL serves
    before = await page.locator("#hits-total").text_content()
    await page.wait_for_timeout(2_000)
    await expect(page.locator("#hits-total")).to_have_text(before or "")
    assert get_json(f"{platform.shop}/admin/cache")["mode"] == "off"


async def test_the_shops_client_navigation_has_no_dashboard(platform: Platform, page: Any) -> None:
    await page.goto(f"{platform.shop}/")
    await expect(page.locator('nav a[href^="/admin"]')).to_have_count(0)
    await page.goto(f"{platform.shop}/admin/")  # for operations people, by its address
    await expect(page.locator("nav a")).to_have_text(["Cache dashboard", "Traces"])
