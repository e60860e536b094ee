"""`/admin/traces`: a seller finds an order's trace by its id and reads its waterfall, across
the Shop, the CRM, the relay and the MES, under a `default-src 'self'` policy."""

import re
from typing import Any

from playwright.async_api import expect

from tests.browser.conftest import screenshot_dir
from tests.browser.helpers import Platform, new_client, place, status_of, wait_for

CSP = "default-src 'self'"
# What the shared frame (base.html) still does against the policy, not these pages: its
# `data:` favicon, and htmx's own indicator <style> (`includeIndicatorStyles`, this hash).
SHARED_FRAME = ("'data:,'", "sha256-faU7yAF8NxuMTNEwVmBz+VcYeIoBQ2EMHW3WaVxCvnk=")


def violation(message: str) -> bool:
    return "Content Security" in message and not any(known in message for known in SHARED_FRAME)


async def with_csp(route: Any) -> None:
    """Every answer as if the servers sent a strict policy: no inline script or style runs."""
    response = await route.fetch()
    headers = {**response.headers, "content-security-policy": CSP}
    await route.fulfill(response=response, headers=headers)


def journey(platform: Platform) -> int:
    """An order placed, confirmed, claimed and completed, through the APIs."""
    order_id = place(platform, new_client(platform, "Traced")["id"])
    with platform.api(platform.crm) as crm:
        crm.post(f"/orders/{order_id}/confirm").raise_for_status()
    with platform.api(platform.mes) as mes:
        wait_for(lambda: mes.get(f"/orders/{order_id}").status_code == 200, 20)
        mes.post(f"/orders/{order_id}/claim", json={"operator_id": 7}).raise_for_status()
        mes.post(f"/orders/{order_id}/complete", json={"operator_id": 7}).raise_for_status()
    wait_for(lambda: status_of(platform.shop, f"/orders/{order_id}") == "ready", 20)
    return order_id


async def test_find_an_order_and_read_its_waterfall(
    platform: Platform, page: Any, context: Any
) -> None:
    violations: list[str] = []
    page.on("console", lambda m: violations.append(m.text) if violation(m.text) else None)
    await page.route("**/admin/traces**", with_csp)  # the documents carry the policy
    board = await context.new_page()  # an open board: its pushes are spans of the trace
    await board.goto(f"{platform.mes}/")
    await expect(board.locator("#queue")).to_be_visible()
    order_id = journey(platform)

    await page.goto(f"{platform.crm}/admin/traces")
    await expect(page.get_by_role("heading", level=1)).to_contain_text("Traces")
    await page.get_by_label("Order id").fill(str(order_id))
    await page.get_by_role("button", name="Find").click()
    await expect(page.locator("#traces-heading")).to_contain_text(f"Traces of order {order_id}")
    journey_row = page.locator("#traces tbody tr").first  # the order's journey comes first
    await expect(journey_row).to_contain_text("Journey: order placed")
    for service in ("shop", "crm", "relay", "mes"):
        await expect(journey_row.locator(f".svc-{service}")).to_have_count(1)
    await expect(page).to_have_url(re.compile(rf"order={order_id}"))

    await journey_row.get_by_role("link", name="order placed").click()
    await expect(page.get_by_role("heading", level=1)).to_contain_text("Trace")
    rows = page.locator("table.waterfall tbody tr")
    for name in ("order placed", "order confirm", "relay order_confirmed", "board push",
                 "order claim", "order complete", "relay ready"):  # fmt: skip
        await expect(rows.filter(has_text=name).first).to_be_visible()
    await expect(page.locator("table.waterfall rect.svc-relay").first).to_be_attached()
    await expect(rows.locator(".outcome").first).to_be_visible()  # the cache's decisions
    cache_row = rows.filter(has=page.locator(".outcome")).first
    await cache_row.locator("summary").click()
    await expect(cache_row.locator("dl.attributes")).to_contain_text("cache.key_kind")
    assert violations == [], violations
    await page.unroute_all(behavior="ignoreErrors")
    if (folder := screenshot_dir()) is not None:
        await cache_row.locator("summary").click()  # folded again
        await page.set_viewport_size({"width": 1280, "height": 1800})
        await page.screenshot(path=str(folder / "traces.png"))
