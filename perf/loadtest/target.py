"""The platform under test: is it up, start one as a child, switch its cache, read its data."""

from __future__ import annotations

import ipaddress
import os
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
from gevent.pool import Pool
from geventhttpclient import HTTPClient
from rich.console import Console

from perf.common import Child, StartFailed, healthy, wait_until
from perf.loadtest.config import SERVICES, Mode

console = Console(stderr=True, soft_wrap=True)  # progress lines are not wrapped


def require_loopback(urls: dict[str, str]) -> None:
    """A load test only ever targets this machine."""
    for service, url in urls.items():
        host = urlsplit(url).hostname or ""
        try:
            address = ipaddress.ip_address(socket.gethostbyname(host))
        except (OSError, ValueError) as exc:
            raise SystemExit(f"{service}: cannot resolve {host!r}: {exc}") from exc
        if not address.is_loopback:
            raise SystemExit(f"{service}: {url} is not a loopback address; refusing to load it")


def health(urls: dict[str, str]) -> dict[str, bool]:
    return {service: healthy(base) for service, base in urls.items()}


class Platform:
    """`orderflow up` as a child in its own session (Ctrl-C in the terminal does not reach it:
    we restore the cache switch first, then stop it with SIGTERM)."""

    def __init__(self, data_dir: Path, orders: int | None, log_path: Path) -> None:
        self.data_dir, self.orders, self.log_path = data_dir, orders, log_path
        self.child: Child | None = None

    def start(self) -> None:
        env = dict(os.environ)
        if self.orders is not None:
            if (self.data_dir / "pg").exists():
                console.print(
                    f"{self.data_dir} already holds databases: testing the orders in it "
                    f"(--orders {self.orders:,} seeds only an empty data dir)"
                )
            env["ORDERFLOW_SEED_ORDERS"] = str(self.orders)
        console.print(f"starting `orderflow up --data-dir {self.data_dir}` (log: {self.log_path})")
        args = ["up", "--data-dir", str(self.data_dir)]
        self.child = Child("orderflow", args, env, self.log_path)

    def wait_healthy(
        self, urls: dict[str, str], timeout_s: float, stopping: Callable[[], bool]
    ) -> None:
        def note(waited: float) -> None:
            console.print(f"  waiting for the platform ({waited:.0f}s; seeding takes a while)")

        try:
            took = wait_until(
                lambda: all(health(urls).values()),
                "the platform",
                timeout_s=timeout_s,
                children=[self.child] if self.child else [],
                stopping=stopping,
                poll_s=1.0,
                note=note,
            )
        except StartFailed as exc:
            raise SystemExit(str(exc)) from exc
        console.print(f"platform healthy after {took:.1f}s")

    def stop(self, timeout_s: float = 120.0) -> None:
        if self.child is not None and self.child.returncode is None:
            console.print("stopping the platform we started (SIGTERM)")
            self.child.stop(timeout_s)


def set_cache(urls: dict[str, str], mode: Mode) -> dict[str, Any]:
    """`PUT /admin/cache` on every service; each answers once every process applied it."""
    states = {}
    for service in SERVICES:
        resp = httpx.put(f"{urls[service]}/admin/cache", json={"mode": mode}, timeout=120.0)
        resp.raise_for_status()
        states[service] = resp.json()
    return states


def catalogue(urls: dict[str, str]) -> tuple[list[str], int]:
    """The categories among the first 200 items, and how many items there are."""
    resp = httpx.get(f"{urls['shop']}/items?limit=200", timeout=30.0).raise_for_status()
    body = resp.json()
    return sorted({row["category"] for row in body["items"]}), int(body["total"])


def order_count(urls: dict[str, str]) -> int | None:
    try:
        resp = httpx.get(f"{urls['crm']}/orders/stats", timeout=30.0).raise_for_status()
    except httpx.HTTPError:
        return None
    return int(resp.json()["total"])


def warm_items(urls: dict[str, str], items: int, stopping: Callable[[], bool]) -> float:
    """Read items 1..`items` through the Shop once, 32 at a time: the cache as the quiet-window
    job leaves it (`sales/catalogue/warmer.py` warms the popular ones). Returns the seconds it
    took."""
    started = time.monotonic()
    http = HTTPClient.from_url(urls["shop"], concurrency=32, network_timeout=30.0)

    def one(item_id: int) -> None:
        with http.get(f"/items/{item_id}") as resp:
            resp.read()

    try:
        pool = Pool(32)
        for item_id in range(1, items + 1):
            if stopping():
                break
            pool.spawn(one, item_id)
        pool.join()
    finally:
        http.close()
    return time.monotonic() - started
