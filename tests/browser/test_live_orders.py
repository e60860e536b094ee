""" "My orders" follows its statuses over Server-Sent Events, with no request for the list;
only while no stream can be held does it poll."""

import re
from typing import Any

from playwright.async_api import expect

from tests.browser.helpers import Platform, new_client, place, post_json, sign_in


async def test_my_orders_changes_status_with_no_request_to_the_list(
    platform: Platform, page: Any
) -> None:
    client = new_client(platform, "Live")
    order_id = place(platform, client["id"])
    await sign_in(page, platform.shop, client)
    await page.goto(f"{platform.shop}/my/orders")
    await expect(page.locator("#live")).to_have_attribute("data-state", "live")
    asked: list[str] = []
    page.on("request", lambda request: asked.append(request.url))

    post_json(f"{platform.crm}/orders/{order_id}/confirm", {})
    row = page.locator(f'tr[data-order="{order_id}"] .status')
    await expect(row).to_have_text("confirmed", timeout=5_000)
    second = place(platform, client["id"])  # a new order appears too
    await expect(page.locator(f'tr[data-order="{second}"]')).to_be_visible(timeout=5_000)
    assert not [url for url in asked if re.search(r"/my/orders(\?|$)", url)], asked

    await page.goto(f"{platform.shop}/my/orders/{order_id}")  # one order's page, live too
    await expect(page.locator("#live")).to_have_attribute("data-state", "live")
    asked.clear()
    post_json(f"{platform.crm}/orders/{order_id}/cancel", {})
    await expect(page.locator("#status")).to_have_text("cancelled", timeout=5_000)
    assert not [url for url in asked if re.search(rf"/my/orders/{order_id}$", url)], asked


async def test_without_a_stream_the_page_polls(platform: Platform, context: Any) -> None:
    await context.route("**/my/orders/events**", lambda route: route.abort())
    page = await context.new_page()
    client = new_client(platform, "Polled")
    order_id = place(platform, client["id"])
    await sign_in(page, platform.shop, client)
    await page.goto(f"{platform.shop}/my/orders")
    await expect(page.locator("#live")).to_have_attribute("data-state", "polling")
    post_json(f"{platform.crm}/orders/{order_id}/confirm", {})
    row = page.locator(f'tr[data-order="{order_id}"] .status')
    await expect(row).to_have_text("confirmed", timeout=6_000)


async def test_a_stream_follows_only_the_signed_in_clients_orders(
    platform: Platform, page: Any
) -> None:
    owner = new_client(platform, "Followed")
    order_id = place(platform, owner["id"])
    await sign_in(page, platform.shop, new_client(platform, "Follower"))
    answer = await page.request.get(f"{platform.shop}/my/orders/events?order={order_id}")
    assert answer.status == 404
