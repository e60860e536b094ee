"""The MES board as an operator's workbench: their own orders first, newest claim first and
counted; the queue paged and searchable by order number; item names on every row."""

from typing import Any

from playwright.async_api import expect

from tests.browser.helpers import Platform, get_json, post_json, queued_orders


async def test_a_claimed_order_is_at_the_top_of_the_operators_list_after_a_reload(
    platform: Platform, page: Any
) -> None:
    older, newer = queued_orders(platform, 2)
    post_json(f"{platform.mes}/orders/{older}/claim", {"operator_id": 20})
    await page.goto(f"{platform.mes}/?operator=20")
    await page.get_by_label("Order number").fill(str(newer))
    await page.get_by_role("button", name="Find").click()
    await page.get_by_role("button", name=f"Claim order {newer}", exact=True).click()
    await expect(page.locator(f"#m-{newer}")).to_be_visible()

    await page.goto(f"{platform.mes}/?operator=20")  # a reload, on the plain board
    mine = page.locator("#mine article")
    await expect(mine.first).to_have_attribute("data-order", str(newer))
    await expect(mine.nth(1)).to_have_attribute("data-order", str(older))
    total = get_json(f"{platform.mes}/orders?status=in_progress&operator_id=20")["total"]
    await expect(page.locator("#mine-count")).to_have_text(str(total))
    # the operator's own list comes before the queue, and its first action before any claim
    mine_box = await page.locator("#mine").bounding_box()
    queue_box = await page.locator("#queue").bounding_box()
    assert mine_box is not None and queue_box is not None
    assert mine_box["y"] <= queue_box["y"]
    await page.keyboard.press("Tab")
    for _ in range(12):  # the first Complete is a few Tabs away, not a hundred
        label = await page.evaluate("() => document.activeElement.getAttribute('aria-label')")
        if label == f"Complete order {newer}":
            break
        await page.keyboard.press("Tab")
    else:
        raise AssertionError("the first Complete is not among the first 12 stops")


async def test_a_new_order_is_found_in_the_queue_by_its_number_with_item_names(
    platform: Platform, page: Any
) -> None:
    [order_id] = queued_orders(platform, 1)
    item_id = get_json(f"{platform.shop}/orders/{order_id}")["lines"][0]["item_id"]
    name = get_json(f"{platform.shop}/items/{item_id}")["name"]
    await page.goto(f"{platform.mes}/?operator=21")
    await expect(page.locator("#queue article").first).not_to_contain_text("\u00d7 item ")
    await page.get_by_label("Order number").fill(str(order_id))
    await page.get_by_role("button", name="Find").click()
    row = page.locator(f"#q-{order_id}")
    await expect(row).to_contain_text(f"\u00d7 {name}")
    await expect(page.get_by_role("button", name=f"Claim order {order_id}")).to_be_visible()
    await expect(page.locator("#live")).to_have_attribute("data-state", "on")
    await expect(row).to_be_visible()  # the live feed's snapshot keeps to the search

    await page.get_by_label("Order number").fill("999999999")
    await page.get_by_role("button", name="Find").click()
    await expect(page.locator("#search-words")).to_have_text(
        "No order 999999999 in production: a seller has not confirmed it yet."
    )
    await page.get_by_role("link", name="Show the whole queue").click()
    await expect(page.locator("#queue article").first).to_be_visible()


async def test_the_queue_is_paged_oldest_first(platform: Platform, page: Any) -> None:
    queued_orders(platform, 1)
    total = get_json(f"{platform.mes}/orders?status=queued&limit=1")["total"]
    await page.goto(f"{platform.mes}/?operator=22")
    first_page = page.locator("#queue article")
    await expect(first_page).to_have_count(min(total, 25))
    if total <= 25:
        return
    first_ids = [int(await a.get_attribute("data-order")) for a in await first_page.all()]
    assert first_ids == sorted(first_ids)  # oldest first: the order of priority
    await page.get_by_role("link", name="Later →").click()
    await expect(page.locator("#queue-total")).to_contain_text("page 2 of")
    second = int(await page.locator("#queue article").first.get_attribute("data-order"))
    assert second > first_ids[-1]
    await expect(page.locator("#live")).to_have_attribute("data-state", "on")
    await expect(page.locator(f'#queue article[data-order="{second}"]')).to_be_visible()
