"""Small helpers of the browser tests: data through the JSON API, waits on a live system."""

import random
import time
from dataclasses import dataclass
from typing import Any

import httpx

from orderflow.kit.settings import Settings

# Debian's Chromium as root, on a machine with no network: no sandbox, nothing fetched in the
# background (its refused connections would otherwise pile up). Shared with perf.board_latency.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
# Set in a watching board when the claimed order's row turns "taken": Date.now() there.
WATCH = """id => new Promise(resolve => {
  const seen = () => document.querySelector('#q-' + id + '.taken');
  if (seen()) return resolve(Date.now());
  new MutationObserver((_, observer) => {
    if (seen()) { observer.disconnect(); resolve(Date.now()); }
  }).observe(document.getElementById('queue'), {childList: true, subtree: true, attributes: true});
})"""


@dataclass
class Platform:
    shop: str
    crm: str
    mes: str
    settings: Settings

    def api(self, base: str) -> httpx.Client:
        return httpx.Client(base_url=base, timeout=10)


def new_client(platform: Platform, name: str = "Browser") -> dict[str, Any]:
    with platform.api(platform.shop) as shop:
        slug = "".join(c for c in name.lower() if c.isascii() and c.isalnum())
        email = f"{slug}.{random.randrange(10**9)}@example.com"
        response = shop.post("/clients", json={"name": name, "email": email})
        response.raise_for_status()
        return response.json()  # type: ignore[no-any-return]


def place(platform: Platform, client_id: int, item_id: int = 1, quantity: int = 1) -> int:
    body = {"client_id": client_id, "lines": [{"item_id": item_id, "quantity": quantity}]}
    with platform.api(platform.shop) as shop:
        response = shop.post("/orders", json=body)
        response.raise_for_status()
        return int(response.json()["id"])


def queued_orders(platform: Platform, n: int) -> list[int]:
    """`n` new orders, confirmed by a seller and queued in the MES by the relay."""
    client = new_client(platform, "Queue")
    ids = [place(platform, client["id"]) for _ in range(n)]
    with platform.api(platform.crm) as crm:
        for order_id in ids:
            crm.post(f"/orders/{order_id}/confirm").raise_for_status()
    with platform.api(platform.mes) as mes:
        wait_for(lambda: all(mes.get(f"/orders/{i}").status_code == 200 for i in ids), 20)
    return ids


def wait_for(condition: Any, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"not true after {timeout_s}s"
        time.sleep(0.1)


def status_of(base: str, path: str) -> str:
    return str(httpx.get(base + path, timeout=10).json()["status"])


def get_json(url: str) -> Any:
    return httpx.get(url, timeout=10).raise_for_status().json()


def post_json(url: str, body: dict[str, Any]) -> Any:
    return httpx.post(url, json=body, timeout=10).raise_for_status().json()


async def sign_in(page: Any, shop: str, client: dict[str, Any]) -> None:
    """Sign the page's browser in as `client`, by email and client number, as a client does."""
    await page.goto(f"{shop}/me")
    await page.get_by_label("Your email").fill(client["email"])
    await page.get_by_label("Client number").fill(str(client["id"]))
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_url(lambda url: "/me" not in url)
