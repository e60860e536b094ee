"""Every screen: labelled inputs, one main heading, named actions reachable by keyboard.

With ORDERFLOW_SCREENSHOTS=DIR (what `make screens` sets) each screen is also saved as a PNG.
"""

from typing import Any

import pytest
from playwright.async_api import expect

from tests.browser.conftest import screenshot_dir
from tests.browser.helpers import Platform, new_client, place, queued_orders, sign_in

AUDIT = """() => {
  const problems = [];
  const visible = el => el.getClientRects().length > 0;
  for (const el of document.querySelectorAll('input, select, textarea')) {
    if (el.type === 'hidden' || !visible(el)) continue;
    const named = (el.labels && el.labels.length) || el.getAttribute('aria-label')
      || el.getAttribute('aria-labelledby');
    if (!named) problems.push('unlabelled: ' + el.outerHTML.slice(0, 90));
  }
  for (const el of document.querySelectorAll('button, a[href]')) {
    if (!visible(el)) continue;
    const html = el.outerHTML.slice(0, 90);
    if (el.tabIndex < 0 || el.disabled) problems.push('not by keyboard: ' + html);
    const name = (el.getAttribute('aria-label') || el.textContent).trim();
    if (!name) problems.push('no name: ' + html);
  }
  const h1 = document.querySelectorAll('h1').length;
  if (h1 !== 1) problems.push(h1 + ' h1 elements');
  if (!document.documentElement.lang) problems.push('no lang on <html>');
  if (!document.querySelector('main')) problems.push('no <main>');
  return problems;
}"""


@pytest.fixture(scope="module")
def screens(platform: Platform) -> list[tuple[str, str, str]]:
    """(name, url, the action a keyboard must reach) of every screen, with data to show."""
    client = new_client(platform, "Grace")
    order_id = place(platform, client["id"], item_id=3, quantity=2)
    [queued] = queued_orders(platform, 1)
    s, c, m = platform.shop, platform.crm, platform.mes
    return [
        ("shop-catalogue", f"{s}/", "Search"),
        ("shop-item", f"{s}/catalogue/3", "Add to cart"),
        ("shop-who", f"{s}/me", "Register"),
        ("shop-sign-in", f"{s}/me?next=/cart", "Sign in"),
        ("shop-cart", f"{s}/cart", "Place order"),
        ("shop-my-orders", f"{s}/my/orders", f"Order {order_id}"),
        ("shop-order", f"{s}/my/orders/{order_id}", "Cancel this order…"),
        ("shop-cancel", f"{s}/my/orders/{order_id}/cancel", f"Yes, cancel order {order_id}"),
        ("crm-orders", f"{c}/", "Filter"),
        ("crm-orders-of-a-client", f"{c}/?client={client['id']}", "Filter"),
        ("crm-client-matches", f"{c}/?client=client+1", "Filter"),
        ("crm-order", f"{c}/console/orders/{order_id}", "Confirm"),
        ("crm-catalogue", f"{c}/console/items", "Add item"),
        ("crm-item", f"{c}/console/items/3", "Save"),
        ("mes-board", f"{m}/?operator=18", "Switch"),
        ("mes-board-search", f"{m}/?operator=18&q={queued}", "Find"),
        ("dashboard", f"{s}/admin/", "Review the switch…"),
        ("dashboard-confirm", f"{s}/admin/switch?mode=off", "Yes, switch it off"),
        ("error-404", f"{s}/catalogue/999999999", "Start page"),
        ("error-422", f"{s}/catalogue/abc", "Start page"),
        ("crm-orders-refused-filter", f"{c}/?from=not-a-date", "Filter"),
    ], client


async def reach_by_keyboard(page: Any, name: str) -> None:
    """Tab from the top of the page until the named action has the focus."""
    for _ in range(80):
        await page.keyboard.press("Tab")
        focused = await page.evaluate(
            "() => { const e = document.activeElement;"
            " return (e.getAttribute('aria-label') || e.textContent || e.value || '').trim(); }"
        )
        if focused == name:
            return
    raise AssertionError(f"{name!r} is not reachable with Tab")


@pytest.mark.usefixtures("shop_load")  # the dashboard has something to show
async def test_every_screen_is_usable_by_keyboard_and_labelled(
    platform: Platform, context: Any, page: Any, screens: Any
) -> None:
    pages, client = screens
    host = platform.shop.split("//")[1].split(":")[0]
    await context.add_cookies([{"name": "cart", "value": "3-2.7-1", "domain": host, "path": "/"}])
    for name, url, action in pages:
        if name == "shop-cart":
            await sign_in(page, platform.shop, client)
        await page.goto(url)
        await expect(page.get_by_role("heading", level=1)).to_have_count(1)
        problems = await page.evaluate(AUDIT)
        assert problems == [], f"{name}: {problems}"
        await reach_by_keyboard(page, action)


WIDTHS = (360, 768, 1280)
OVERFLOW = """() => {
  const width = document.documentElement.clientWidth;
  const wide = [];
  for (const el of document.querySelectorAll('body *')) {
    const box = el.getBoundingClientRect();
    if (box.width && box.right > width + 1 && !el.closest('.visually-hidden')) {
      const id = el.id ? '#' + el.id : '';
      wide.push(el.tagName.toLowerCase() + id + ' ' + Math.round(box.right));
    }
  }
  return {scroll: document.documentElement.scrollWidth, width, wide: wide.slice(0, 5)};
}"""


@pytest.mark.usefixtures("shop_load")  # the dashboard has something to show
async def test_every_screen_fits_phones_tablets_and_desktops(
    platform: Platform, browser: Any, screens: Any
) -> None:
    """At 360, 768 and 1280 px nothing is wider than the viewport (tables stack on phones);
    with ORDERFLOW_SCREENSHOTS each screen is saved as NAME-WIDTH.png."""
    pages, client = screens
    host = platform.shop.split("//")[1].split(":")[0]
    folder = screenshot_dir()
    for width in WIDTHS:
        context = await browser.new_context(viewport={"width": width, "height": 900})
        context.set_default_timeout(10_000)
        cart = {"name": "cart", "value": "3-2.7-1", "domain": host, "path": "/"}
        await context.add_cookies([cart])
        page = await context.new_page()
        try:
            for name, url, _ in pages:
                if name == "shop-cart":  # the screens before it are a stranger's
                    await sign_in(page, platform.shop, client)
                await page.goto(url)
                await expect(page.get_by_role("heading", level=1)).to_have_count(1)
                if folder is not None:
                    await page.wait_for_timeout(6_000 if name == "dashboard" else 300)
                    await page.screenshot(path=str(folder / f"{name}-{width}.png"))
                fit = await page.evaluate(OVERFLOW)
                assert fit["scroll"] <= fit["width"] and not fit["wide"], (
                    f"{name} at {width}: {fit}"
                )
        finally:
            await context.close()


async def test_a_claim_by_keyboard_alone(platform: Platform, page: Any) -> None:
    ids = queued_orders(platform, 1)
    await page.goto(f"{platform.mes}/?operator=19&q={ids[0]}")
    await expect(page.locator("#live")).to_have_attribute("data-state", "on")
    await reach_by_keyboard(page, f"Claim order {ids[0]}")
    await page.keyboard.press("Enter")
    await expect(page.locator(f"#m-{ids[0]}")).to_be_visible()
