"""A seller filters, confirms, meets a refusal in words, edits a price the Shop shows at once."""

import random
import re
from typing import Any

from playwright.async_api import expect

from tests.browser.helpers import Platform, new_client, place, post_json

CLIENT = "Client: name, email or number"


async def test_seller_filters_confirms_and_edits_a_price(
    platform: Platform, context: Any, page: Any
) -> None:
    client = new_client(platform, "Seller")
    order_id = place(platform, client["id"], item_id=9, quantity=3)

    await page.goto(platform.crm + "/")
    await page.get_by_label(re.compile(r"^Status")).select_option("created")
    await page.get_by_label("Client: name, email or number").fill(str(client["id"]))
    await page.get_by_role("button", name="Filter").click()
    await expect(page.locator("#orders tr[data-order]")).to_have_count(1)
    stale = await context.new_page()  # a second tab on the same order, left open
    await stale.goto(f"{platform.crm}/console/orders/{order_id}")

    await page.get_by_role("link", name=f"Order {order_id}", exact=True).click()
    await page.get_by_role("button", name="Confirm").click()
    await expect(page.locator("#status")).to_have_text("confirmed")
    await expect(page.locator("#notice")).to_have_text("Done: confirm.")

    await stale.get_by_role("button", name="Confirm").click()  # back on the order, told why
    await expect(stale.get_by_role("heading", level=1)).to_contain_text(f"Order {order_id}")
    await expect(stale.locator("#status")).to_have_text("confirmed")
    await expect(stale.locator("#notice")).to_contain_text(
        re.compile(rf"Order {order_id} was not confirmed: it became confirmed on .+ \d\d:\d\d")
    )
    await expect(stale.get_by_role("button", name="Confirm")).to_have_count(0)


async def test_a_price_edit_shows_in_the_shop_at_once(
    platform: Platform, context: Any, page: Any
) -> None:
    body = {"name": "Browser test stool", "category": "Stools", "price": 4999}
    item = post_json(f"{platform.crm}/items", body)
    shop = await context.new_page()
    await shop.goto(f"{platform.shop}/catalogue/{item['id']}")  # now cached, near cache too
    await expect(shop.locator("#price")).to_have_text("€49.99")

    await page.goto(f"{platform.crm}/console/items")
    await page.get_by_label("Name contains").fill("Browser test stool")
    await page.get_by_role("button", name="Search").click()
    await page.get_by_role("link", name="Browser test stool").first.click()
    await page.get_by_label("Price").fill("1234.5")
    await page.get_by_role("button", name="Save").click()
    await expect(page.locator("#notice")).to_contain_text("Saved")

    await shop.reload()
    await expect(shop.locator("#price")).to_have_text("€1,234.50")


async def test_a_seller_finds_a_client_by_name_or_email_and_the_counts_follow(
    platform: Platform, page: Any
) -> None:
    tag = f"{random.randrange(10**6, 10**7)}"
    eva = new_client(platform, f"Eva Quist{tag}")
    other = new_client(platform, f"Eva Quist{tag}b")
    orders = [place(platform, eva["id"]), place(platform, eva["id"])]
    place(platform, other["id"])

    await page.goto(platform.crm + "/")
    await page.get_by_label(CLIENT).fill(f"quist{tag}")  # part of the name, any case: two
    await page.get_by_role("button", name="Filter").click()
    matches = page.locator("#client-matches li")
    await expect(matches).to_have_count(2)
    await page.get_by_role("link", name=f"Eva Quist{tag}", exact=True).click()
    await expect(page.locator("#orders tr[data-order]")).to_have_count(2)
    await expect(page.locator("#found-total")).to_contain_text(f"2 orders of Eva Quist{tag}")
    await expect(page.locator(".counts a").first).to_have_text("all 2")
    await expect(page.locator('.counts a[data-status="created"] strong')).to_have_text("2")
    for order_id in orders:
        row = page.locator(f'#orders tr[data-order="{order_id}"]')
        await expect(row).to_contain_text(f"Eva Quist{tag}")  # a name, not "client N"

    await page.get_by_label(CLIENT).fill(eva["email"].upper())  # the whole email: one client
    await page.get_by_role("button", name="Filter").click()
    await expect(page.locator("#orders tr[data-order]")).to_have_count(2)
    await expect(page.locator("#client-matches")).to_have_count(0)

    await page.get_by_label(CLIENT).fill(f"Nobody{tag}")
    await page.get_by_role("button", name="Filter").click()
    await expect(page.get_by_role("heading", level=2)).to_have_text(
        f"No client matches “Nobody{tag}”"
    )


async def test_a_refused_item_form_keeps_what_was_typed_and_the_price_takes_what_the_list_shows(
    platform: Platform, page: Any
) -> None:
    await page.goto(f"{platform.crm}/console/items")
    await page.get_by_label("Name", exact=True).fill("Typed stool")
    await page.get_by_label("Category").fill("Stools")
    await page.get_by_label("Price (EUR)").fill("12.345")
    await page.get_by_label("Description").fill("Three legs.")
    async with page.expect_response(re.compile("/console/items$")) as answer:
        await page.get_by_role("button", name="Add item").click()
    assert (await answer.value).status == 422
    price = page.get_by_label("Price (EUR)")
    await expect(price).to_have_value("12.345")
    await expect(price).to_have_attribute("aria-invalid", "true")
    await expect(page.locator("#price-error")).to_have_text("must be an amount like 1,234.50")
    await expect(page.get_by_label("Name", exact=True)).to_have_value("Typed stool")
    await expect(page.get_by_label("Description")).to_have_value("Three legs.")

    await price.fill("1,234.50")
    await page.get_by_role("button", name="Add item").click()
    await expect(page.locator("#notice")).to_contain_text("Saved")
    await expect(page.get_by_label("Price (EUR)")).to_have_value("1,234.50")
    item_id = int(page.url.split("/console/items/")[1].split("?")[0])
    with platform.api(platform.shop) as shop:
        assert shop.get(f"/items/{item_id}").json()["price"] == 123450
