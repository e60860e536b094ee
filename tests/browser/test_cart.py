"""The cart: a line's quantity changes in place, adding an item again adds to it, 0 removes
it, a wrong quantity is said beside the line; prices carry their currency."""

import re
from typing import Any

from playwright.async_api import expect

from tests.browser.helpers import Platform, get_json


async def add(page: Any, shop: str, item_id: int, quantity: int) -> None:
    await page.goto(f"{shop}/catalogue/{item_id}")
    await page.get_by_label("Quantity").fill(str(quantity))
    await page.get_by_role("button", name="Add to cart").click()
    await page.wait_for_url(f"{shop}/cart")


async def test_the_carts_quantities_change_in_place(platform: Platform, page: Any) -> None:
    chair, table = get_json(f"{platform.shop}/items/11"), get_json(f"{platform.shop}/items/12")
    await add(page, platform.shop, 11, 3)
    await add(page, platform.shop, 11, 1)  # the same item again: added, not replaced
    await add(page, platform.shop, 12, 1)
    quantity = page.get_by_role("spinbutton", name=f"Quantity of {chair['name']}")
    await expect(quantity).to_have_value("4")
    total = page.locator("#total")
    await expect(total).to_have_text(f"€{(4 * chair['price'] + table['price']) / 100:,.2f}")

    await quantity.fill("2")
    await page.get_by_role("button", name=f"Update the quantity of {chair['name']}").click()
    await expect(quantity).to_have_value("2")
    await expect(total).to_have_text(f"€{(2 * chair['price'] + table['price']) / 100:,.2f}")

    await quantity.fill("-1")
    async with page.expect_response(re.compile("/cart/update$")) as answer:
        await page.get_by_role("button", name=f"Update the quantity of {chair['name']}").click()
    assert (await answer.value).status == 422
    await expect(quantity).to_have_value("-1")  # as typed, with the reason beside it
    await expect(page.locator("#quantity-11-error")).to_contain_text("from 0 (remove)")
    await expect(total).to_have_text(f"€{(2 * chair['price'] + table['price']) / 100:,.2f}")

    await quantity.fill("0")
    await page.get_by_role("button", name=f"Update the quantity of {chair['name']}").click()
    await expect(page.locator("tr[data-item]")).to_have_count(1)
    await expect(total).to_have_text(f"€{table['price'] / 100:,.2f}")
