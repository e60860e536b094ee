"""Claim-to-other-board latency, measured in a real browser (Playwright driving Chromium).

    python -m perf.board_latency --shop URL --crm URL --mes URL [--claims 30]

Against a running platform (`make run`): two operators' boards open in two browser contexts;
orders are placed and confirmed through the JSON API and queued in the MES by the relay; then
operator A clicks Claim on each, and board B records, in the page (a MutationObserver and
`Date.now()`), when that order's row turned "taken". The latency is B's moment minus the moment
just before A's click, both read from the one machine's clock.
"""

import argparse
import asyncio
import random
import shutil
import statistics

import httpx
from playwright.async_api import async_playwright, expect

from tests.browser.helpers import CHROMIUM_ARGS, WATCH


async def queue(args: argparse.Namespace) -> list[int]:
    async with httpx.AsyncClient(timeout=10) as http:
        email = f"latency.{random.randrange(10**9)}@example.com"
        client = (
            await http.post(f"{args.shop}/clients", json={"name": "L", "email": email})
        ).json()
        body = {"client_id": client["id"], "lines": [{"item_id": 1, "quantity": 1}]}
        ids = [
            (await http.post(f"{args.shop}/orders", json=body)).json()["id"]
            for _ in range(args.claims)
        ]
        for order_id in ids:
            (await http.post(f"{args.crm}/orders/{order_id}/confirm")).raise_for_status()
    return ids


async def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    for name, port in (("shop", 8001), ("crm", 8002), ("mes", 8003)):
        parser.add_argument(f"--{name}", default=f"http://127.0.0.1:{port}")
    parser.add_argument("--claims", type=int, default=30)
    parser.add_argument("--operators", type=int, nargs=2, default=(1, 2))
    parser.add_argument("--chromium", default=shutil.which("chromium") or "/usr/bin/chromium")
    args = parser.parse_args()
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=args.chromium, args=CHROMIUM_ARGS)
        a, b = [await (await browser.new_context()).new_page() for _ in range(2)]
        for page, operator in zip((a, b), args.operators, strict=True):
            await page.goto(f"{args.mes}/?operator={operator}")
            await expect(page.locator("#live")).to_have_attribute("data-state", "on")
        ids = await queue(args)
        latencies = []
        for order_id in ids:
            button = a.get_by_role("button", name=f"Claim order {order_id}", exact=True)
            await expect(button).to_be_visible(timeout=20_000)  # queued, live, on A's board
            watched = asyncio.ensure_future(b.evaluate(WATCH, order_id))
            clicked_at = await a.evaluate("Date.now()")
            await button.click()
            latencies.append(await watched - clicked_at)
        await browser.close()
    latencies.sort()
    print(f"{len(latencies)} claims, claim click on board A to board B's update (ms):")
    print(
        f"median {statistics.median(latencies):.0f}, p90 {latencies[int(len(latencies) * 0.9)]},"
        f" max {latencies[-1]}, min {latencies[0]}"
    )


if __name__ == "__main__":
    asyncio.run(main())
