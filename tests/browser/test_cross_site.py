"""In a real Chromium: the pages run under their Content-Security-Policy without a violation,
and a page of another site can act on nothing, by form or by fetch (kit/security.py)."""

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from playwright.async_api import expect

from tests.browser.helpers import (
    Platform,
    get_json,
    new_client,
    place,
    queued_orders,
    status_of,
)


def violations(page: Any) -> list[str]:
    """Console messages that report the CSP blocking something, collected as they come."""
    found: list[str] = []

    def seen(message: Any) -> None:
        text = message.text
        if "Content Security Policy" in text or "Refused to" in text:
            found.append(text)

    page.on("console", seen)
    return found


async def test_every_screen_runs_under_its_csp(platform: Platform, page: Any) -> None:
    blocked = violations(page)
    order_id = place(platform, new_client(platform, "Csp")["id"])
    screens = [
        f"{platform.shop}/",
        f"{platform.shop}/cart",
        f"{platform.shop}/catalogue/1",
        f"{platform.crm}/",
        f"{platform.crm}/console/orders/{order_id}",
        f"{platform.crm}/console/items",
    ]
    for url in screens:
        await page.goto(url)
        assert await page.evaluate("htmx.config.allowEval") is False
    await page.goto(f"{platform.mes}/?operator=5")
    await expect(page.locator("#live")).to_have_attribute("data-state", "on")  # SSE, board.js
    await page.goto(f"{platform.crm}/admin/")
    await expect(page.locator("#reads-chart canvas")).to_have_count(1)  # uPlot drew it
    # an error page leads on by a link of its own (no javascript: link, no history)
    await page.goto(f"{platform.shop}/catalogue/abc")
    await expect(page.get_by_role("heading", level=1)).to_contain_text("not valid")
    await page.get_by_role("link", name="Start page").click()
    await expect(page).to_have_url(f"{platform.shop}/")
    assert blocked == []


EVIL_PAGE = """<!doctype html><title>A page of another site</title>
<form id="cancel" method="post" action="{crm}/console/orders/{order}/cancel"></form>
<form id="claim" method="post" enctype="text/plain" action="{mes}/board/orders/{queued}/claim">
  <input name="operator_id" value="7">
</form>
<script>
  // A no-cors answer is opaque, and with Cross-Origin-Resource-Policy: same-origin the browser
  // drops it (a network error here): what counts is what the server did, read afterwards.
  async function send(url, init) {{
    try {{ await fetch(url, Object.assign({{method: "POST", mode: "no-cors"}}, init)); }}
    catch (err) {{ }}
  }}
  async function noCors() {{
    await send("{crm}/orders/{order}/cancel", {{body: "{{}}"}});
    await send("{mes}/orders/{queued}/claim", {{body: '{{"operator_id": 7}}'}});
    await send("{crm}/admin/switch", {{body: "mode=off",
               headers: {{"content-type": "application/x-www-form-urlencoded"}}}});
    document.title = "sent";
  }}
</script>"""


@pytest.fixture
def evil_site(platform: Platform) -> Iterator[tuple[str, int, int]]:
    """A page served from another site: http://localhost:PORT, where the services are
    http://127.0.0.1:... (another host name: another site, as far as a browser can tell)."""
    order = place(platform, new_client(platform, "Victim")["id"])
    (queued,) = queued_orders(platform, 1)
    html = EVIL_PAGE.format(crm=platform.crm, mes=platform.mes, order=order, queued=queued)

    class Page(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = html.encode()
            self.send_response(200)
            self.send_header("content-type", "text/html; charset=utf-8")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_: object) -> None:
            pass

    site = ThreadingHTTPServer(("127.0.0.1", 0), Page)
    thread = threading.Thread(target=site.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://localhost:{site.server_address[1]}/", order, queued
    finally:
        site.shutdown()
        site.server_close()


async def test_a_page_of_another_site_can_act_on_nothing(
    platform: Platform, page: Any, evil_site: tuple[str, int, int]
) -> None:
    url, order, queued = evil_site
    await page.goto(url)
    await page.evaluate("noCors()")
    await expect(page).to_have_title("sent")
    await page.evaluate("document.getElementById('cancel').submit()")
    await expect(page.get_by_role("heading", level=1)).to_contain_text("Refused")
    await expect(page.locator("main")).to_contain_text("own pages")
    await page.goto(url)
    await page.evaluate("document.getElementById('claim').submit()")
    await expect(page.get_by_role("heading", level=1)).to_contain_text("Refused")

    assert status_of(platform.crm, f"/orders/{order}") == "created"
    assert status_of(platform.mes, f"/orders/{queued}") == "queued"
    assert get_json(f"{platform.crm}/admin/cache")["mode"] == "on"
