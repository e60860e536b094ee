"""A client finds an item, orders it, submits twice, has one order, and sees a seller confirm it."""

import re
from typing import Any

from playwright.async_api import expect

from tests.browser.helpers import Platform, get_json

RESUBMIT = """fields => {
  const form = document.createElement("form");
  form.method = "post";
  form.action = "/checkout";
  for (const [name, value] of fields) {
    const input = document.createElement("input");
    input.type = "hidden"; input.name = name; input.value = value;
    form.appendChild(input);
  }
  document.body.appendChild(form);
  form.submit();
}"""


async def test_client_orders_once_and_sees_the_seller_confirm(
    platform: Platform, context: Any, page: Any
) -> None:
    item = get_json(f"{platform.shop}/items/7")
    await page.goto(platform.shop + "/")
    await page.get_by_label("Name contains").fill(item["name"])
    await page.get_by_role("button", name="Search").click()
    await page.get_by_role("link", name=item["name"], exact=True).click()
    await expect(page.get_by_role("heading", level=1)).to_have_text(item["name"])
    await page.get_by_label("Quantity").fill("2")
    await page.get_by_role("button", name="Add to cart").click()

    await page.get_by_role("link", name="Sign in", exact=True).click()
    await page.get_by_label("Name", exact=True).fill("Ada Browser")
    await page.get_by_label("Email", exact=True).fill(f"ada.{id(page)}@example.com")
    await page.get_by_role("button", name="Register").click()
    await expect(page.get_by_role("link", name="Ada Browser")).to_be_visible()
    await expect(page).to_have_url(f"{platform.shop}/cart")  # back where the client was

    await expect(page.locator("#total")).to_have_text(re.compile(r"\d"))
    form = page.locator("form#checkout input[type=hidden]")
    fields = [
        (await field.get_attribute("name"), await field.get_attribute("value"))
        for field in await form.all()
    ]
    await page.get_by_role("button", name="Place order").dblclick()  # a double click
    await page.wait_for_url(re.compile(r"/my/orders/\d+$"))
    order_id = int(page.url.rsplit("/", 1)[-1])

    await page.evaluate(RESUBMIT, fields)  # the same form submitted again, as a resubmit does
    await page.wait_for_url(re.compile(rf"/my/orders/{order_id}$"))
    await page.get_by_role("link", name="My orders", exact=True).click()
    await expect(page.locator("#my-orders tbody tr")).to_have_count(1)
    row = page.locator(f'tr[data-order="{order_id}"] .status')
    await expect(row).to_have_text("created")

    seller = await context.new_page()
    await seller.goto(f"{platform.crm}/console/orders/{order_id}")
    await seller.get_by_role("button", name="Confirm").click()
    await expect(seller.locator("#status")).to_have_text("confirmed")
    await expect(row).to_have_text("confirmed", timeout=6_000)  # no reload: the page follows
