"""The Shop knows which client a browser is: signed in by email and client number, or
registered; it shows and acts on that client's orders only, and a cancel asks first."""

import re
from typing import Any

from playwright.async_api import expect

from tests.browser.helpers import (
    Platform,
    get_json,
    new_client,
    place,
    post_json,
    queued_orders,
    sign_in,
    status_of,
    wait_for,
)


async def test_a_strangers_browser_cannot_see_or_cancel_anothers_order(
    platform: Platform, browser: Any, page: Any
) -> None:
    owner = new_client(platform, "Owner")
    order_id = place(platform, owner["id"])
    stranger = await browser.new_context()
    try:
        other = await stranger.new_page()
        await other.goto(f"{platform.shop}/my/orders/{order_id}")  # not signed in: sign in first
        await expect(other.get_by_role("heading", level=1)).to_have_text("Sign in or register")
        await expect(other.get_by_text(f"Order {order_id}")).to_have_count(0)

        await sign_in(other, platform.shop, new_client(platform, "Stranger"))
        response = await other.goto(f"{platform.shop}/my/orders/{order_id}")
        assert response is not None and response.status == 404
        await expect(other.locator("main")).to_contain_text(f"You have no order {order_id}")
        await expect(other.get_by_role("link", name=re.compile("Cancel"))).to_have_count(0)
        confirm = await other.goto(f"{platform.shop}/my/orders/{order_id}/cancel")
        assert confirm is not None and confirm.status == 404
        refused = await other.request.post(f"{platform.shop}/my/orders/{order_id}/cancel")
        assert refused.status == 404
        await other.goto(f"{platform.shop}/my/orders")
        await expect(other.locator(f'tr[data-order="{order_id}"]')).to_have_count(0)
        # a cookie made up in the browser (another client's number, no valid signature)
        host = platform.shop.split("//")[1].split(":")[0]
        await stranger.clear_cookies()
        forged = {"name": "shop_session", "value": f"{owner['id']}.forged", "domain": host}
        await stranger.add_cookies([forged | {"path": "/"}])
        await other.goto(f"{platform.shop}/my/orders/{order_id}")
        await expect(other.get_by_role("heading", level=1)).to_have_text("Sign in or register")
    finally:
        await stranger.close()
    assert status_of(platform.shop, f"/orders/{order_id}") == "created"


async def test_a_cancel_asks_first_and_says_what_it_means(platform: Platform, page: Any) -> None:
    client = new_client(platform, "Careful")
    order_id = place(platform, client["id"])
    await sign_in(page, platform.shop, client)
    await page.goto(f"{platform.shop}/my/orders/{order_id}")
    await page.get_by_role("link", name="Cancel this order…").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text(f"Cancel order {order_id}?")
    await expect(page.locator("main")).to_contain_text("cannot be undone")
    await page.get_by_role("link", name="No, keep the order").click()
    await expect(page.locator("#status")).to_have_text("created")
    assert status_of(platform.shop, f"/orders/{order_id}") == "created"

    await page.get_by_role("link", name="Cancel this order…").click()
    await page.get_by_role("button", name=f"Yes, cancel order {order_id}").click()
    await expect(page.locator("#status")).to_have_text("cancelled")
    await expect(page.locator("#notice")).to_have_text("Your order is cancelled.")
    assert status_of(platform.shop, f"/orders/{order_id}") == "cancelled"


async def test_a_cancel_too_late_returns_to_the_order_saying_what_happened(
    platform: Platform, page: Any
) -> None:
    order_id = queued_orders(platform, 1)[0]
    client = get_json(f"{platform.shop}/clients/{status_client(platform, order_id)}")
    await sign_in(page, platform.shop, client)
    await page.goto(f"{platform.shop}/my/orders/{order_id}/cancel")  # still confirmed here
    post_json(f"{platform.mes}/orders/{order_id}/claim", {"operator_id": 7})
    wait_for(lambda: status_of(platform.shop, f"/orders/{order_id}") == "in_production", 10)
    await page.get_by_role("button", name=f"Yes, cancel order {order_id}").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text(f"Order {order_id}")
    notice = page.locator("#notice")
    await expect(notice).to_contain_text(f"Order {order_id} was not cancelled")
    await expect(notice).to_contain_text(re.compile(r"became in production on .+ \d\d:\d\d"))
    await expect(page.locator("#status")).to_have_text("in production")


def status_client(platform: Platform, order_id: int) -> int:
    return int(get_json(f"{platform.shop}/orders/{order_id}")["client_id"])


async def test_registering_welcomes_with_the_number_and_returns_to_the_item(
    platform: Platform, page: Any
) -> None:
    item = get_json(f"{platform.shop}/items/5")
    await page.goto(f"{platform.shop}/catalogue/5")
    await page.get_by_role("link", name="Sign in", exact=True).click()
    email = f"welcome.{id(page)}@example.com"
    await page.get_by_label("Name", exact=True).fill("Wendy Welcome")
    await page.get_by_label("Email", exact=True).fill(email)
    await page.get_by_role("button", name="Register").click()
    await page.wait_for_url(f"{platform.shop}/catalogue/5")
    await expect(page.get_by_role("heading", level=1)).to_have_text(item["name"])
    notice = page.locator("#notice")
    await expect(notice).to_contain_text("Welcome, Wendy Welcome! Your client number is")
    number = await notice.locator("strong").text_content()
    assert number is not None and get_json(f"{platform.shop}/clients/{number}")["email"] == email
    await page.reload()
    await expect(notice).to_be_empty()  # said once

    await page.get_by_role("link", name="Wendy Welcome").click()
    await page.get_by_role("button", name="Sign out").click()
    await page.get_by_label("Your email").fill(email.upper())  # any case
    await page.get_by_label("Client number").fill(number)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("link", name="Wendy Welcome")).to_be_visible()


async def test_a_refused_form_keeps_what_was_typed_and_says_why_beside_the_field(
    platform: Platform, page: Any
) -> None:
    await page.goto(f"{platform.shop}/me")
    await page.get_by_label("Name", exact=True).fill("Typo Tom")
    await page.get_by_label("Email", exact=True).fill("tom@nowhere")
    await page.get_by_label("Phone (optional)").fill("+44 20 7946 0000")
    async with page.expect_response(re.compile("/me/register$")) as answer:
        await page.get_by_role("button", name="Register").click()
    assert (await answer.value).status == 422
    email = page.get_by_label("Email", exact=True)
    await expect(page.get_by_label("Name", exact=True)).to_have_value("Typo Tom")
    await expect(email).to_have_value("tom@nowhere")
    await expect(page.get_by_label("Phone (optional)")).to_have_value("+44 20 7946 0000")
    await expect(email).to_have_attribute("aria-invalid", "true")
    await expect(page.locator("#register-email-error")).to_contain_text("email")

    taken = new_client(platform, "Taken")
    await email.fill(taken["email"])
    async with page.expect_response(re.compile("/me/register$")) as answer:
        await page.get_by_role("button", name="Register").click()
    assert (await answer.value).status == 409
    await expect(page.locator("#register-email-error")).to_have_text(
        "This email is already registered: sign in with it instead."
    )
    await expect(page.get_by_label("Name", exact=True)).to_have_value("Typo Tom")

    await page.get_by_label("Your email").fill(taken["email"])
    await page.get_by_label("Client number").fill(str(taken["id"] + 1))  # not theirs
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.locator("#signin-error")).to_contain_text("No client has this email")
    await expect(page.get_by_label("Your email")).to_have_value(taken["email"])
