"""Operators' boards: a claim shows on every open board within a second, without a reload; a
board opened later shows the current state; the loser of a race reads who won; a board that
lost its connection says so, then catches up."""

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from playwright.async_api import expect

from orderflow.kit.embedded import free_port
from tests.browser.conftest import LIVE, screenshot_dir
from tests.browser.helpers import WATCH, Platform, queued_orders
from tests.clients import running, wait_healthy

LATENCIES_MS: list[int] = []  # claim click to the other board's update, reported at the end


async def board(
    browser: Any, base: str, operator: int, *, feed: bool = True, q: int | None = None
) -> Any:
    """An operator's board; with `q`, searched for that order (the queue is paged, oldest
    first: an order queued during the tests is rarely on its first page)."""
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(10_000)
    if not feed:  # a board whose live feed never gets through: its page goes stale
        await context.route("**/board/events**", lambda route: route.abort())
    page = await context.new_page()
    await page.goto(f"{base}/?operator={operator}" + (f"&q={q}" if q else ""))
    await expect(page.locator("#live")).to_have_attribute("data-state", "on" if feed else "lost")
    return page


def claim_button(page: Any, order_id: int) -> Any:
    return page.get_by_role("button", name=f"Claim order {order_id}", exact=True)


async def test_a_claim_shows_on_every_board(platform: Platform, browser: Any) -> None:
    a = await board(browser, platform.mes, 11)
    b = await board(browser, platform.mes, 12)
    ids = queued_orders(platform, 3)  # queued while the boards are open: they appear live
    for page in (a, b):
        for order_id in ids:
            await expect(claim_button(page, order_id)).to_be_visible()

    target = ids[0]
    watched = b.evaluate(WATCH, target)
    clicked_at = await a.evaluate("Date.now()")
    await claim_button(a, target).click()
    latency_ms = await watched - clicked_at
    LATENCIES_MS.append(latency_ms)
    print(f"claim on one board to the other board's update: {latency_ms} ms")
    assert latency_ms < 1000
    await expect(b.locator(f"#q-{target}")).to_contain_text("taken by operator 11")
    await expect(claim_button(b, target)).to_have_count(0)
    await expect(a.locator(f"#m-{target}")).to_be_visible()
    await expect(a.locator("#notice")).to_have_text(f"You took order {target}.")

    later = await board(browser, platform.mes, 11)  # opened after the claim
    await expect(later.locator(f"#m-{target}")).to_be_visible()
    await expect(claim_button(later, target)).to_have_count(0)
    third = await board(browser, platform.mes, 13, q=target)
    await expect(third.locator(f"#q-{target}")).to_contain_text("taken by operator 11")
    third = await board(browser, platform.mes, 13, q=ids[1])
    await expect(claim_button(third, target)).to_have_count(0)
    await expect(claim_button(third, ids[1])).to_be_visible()


async def test_the_loser_of_a_race_reads_who_won(platform: Platform, browser: Any) -> None:
    ids = queued_orders(platform, 1)
    stale = await board(browser, platform.mes, 14, feed=False, q=ids[0])
    winner = await board(browser, platform.mes, 15, q=ids[0])
    await expect(claim_button(stale, ids[0])).to_be_visible()
    await claim_button(winner, ids[0]).click()
    await expect(winner.locator(f"#m-{ids[0]}")).to_be_visible()

    await claim_button(stale, ids[0]).click()  # too late: the page did not know
    await expect(stale.locator("#notice")).to_have_text(f"Order {ids[0]}: operator 15 took it.")
    await expect(stale.locator(f"#q-{ids[0]}")).to_contain_text("taken by operator 15")
    if (folder := screenshot_dir()) is not None:
        await stale.locator(f"#q-{ids[0]}").scroll_into_view_if_needed()
        await stale.screenshot(path=str(folder / "mes-board-race.png"))


@contextmanager
def mes_on(platform: Platform, port: int) -> Iterator[str]:
    """An MES process on `port`, killed at the end of the block (a crash, not a shutdown)."""
    args = ["serve", "mes", "--port", str(port)]
    with running(args, platform.settings, LIVE) as proc:
        url = f"http://127.0.0.1:{port}"
        wait_healthy(url, proc)
        yield url
        proc.kill()
        proc.wait()


async def test_a_board_that_lost_its_connection_says_so_and_catches_up(
    platform: Platform, page: Any
) -> None:
    ids = queued_orders(platform, 1)
    port = free_port()
    with mes_on(platform, port) as url:
        await page.goto(f"{url}/?operator=16&q={ids[0]}")
        await expect(page.locator("#live")).to_have_attribute("data-state", "on")
        await expect(claim_button(page, ids[0])).to_be_visible()
    await expect(page.locator("#live")).to_have_attribute("data-state", "lost")
    await expect(page.locator("#live")).to_have_text("connection lost, reconnecting…")

    with platform.api(platform.mes) as mes:  # meanwhile, on another MES process
        mes.post(f"/orders/{ids[0]}/claim", json={"operator_id": 17}).raise_for_status()
    with mes_on(platform, port):
        await expect(page.locator("#live")).to_have_attribute("data-state", "on")
        await expect(page.locator("#live")).to_have_text("live again, caught up")
        # Caught up by a replay (the row reads who took it) or by a snapshot (the row is gone
        # from the queue): either way the board no longer offers the order.
        await expect(claim_button(page, ids[0])).to_have_count(0)
        row = page.locator(f"#q-{ids[0]}")
        if await row.count():
            await expect(row).to_contain_text("taken by operator 17")
