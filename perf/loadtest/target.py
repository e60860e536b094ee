"""The platform under test: is it up, start one as a child, switch its cache, read its data."""

from __future__ import annotations

import ipaddress
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit

import httpx
from gevent.pool import Pool
from geventhttpclient import HTTPClient
from rich.console import Console

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
    answers = {}
    for service, base in urls.items():
        try:
            answers[service] = httpx.get(f"{base}/health", timeout=2.0).status_code == 200
        except httpx.HTTPError:
            answers[service] = False
    return answers


class Platform:
    """`orderflow up` as a child in its own session (Ctrl-C in the terminal does not reach it:
    we restore the cache switch first, then stop it with SIGTERM)."""

    def __init__(self, data_dir: Path, orders: int | None, log_path: Path) -> None:
        self.data_dir, self.orders, self.log_path = data_dir, orders, log_path
        self.proc: subprocess.Popen[bytes] | None = None
        self.log: IO[bytes] | None = None

    def start(self) -> None:
        env = dict(os.environ)
        if self.orders is not None:
            if (self.data_dir / "pg").exists():
                console.print(
                    f"{self.data_dir} already holds databases: testing the orders in it "
                    f"(--orders {self.orders:,} seeds only an empty data dir)"
                )
            env["ORDERFLOW_SEED_ORDERS"] = str(self.orders)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self.log = self.log_path.open("ab")
        cmd = [sys.executable, "-m", "orderflow", "up", "--data-dir", str(self.data_dir)]
        console.print(f"starting `orderflow up --data-dir {self.data_dir}` (log: {self.log_path})")
        self.proc = subprocess.Popen(
            cmd, env=env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True
        )

    def wait_healthy(
        self, urls: dict[str, str], timeout_s: float, stopping: Callable[[], bool]
    ) -> None:
        started = time.monotonic()
        next_note = started + 15.0
        while not all(health(urls).values()):
            if self.proc is not None and self.proc.poll() is not None:
                raise SystemExit(
                    f"`orderflow up` exited with {self.proc.returncode}: see {self.log_path}"
                )
            if stopping():
                raise SystemExit("interrupted while the platform was starting")
            if time.monotonic() - started > timeout_s:
                raise SystemExit(f"the platform was not healthy after {timeout_s:.0f}s")
            if time.monotonic() > next_note:
                waited = time.monotonic() - started
                console.print(f"  waiting for the platform ({waited:.0f}s; seeding takes a while)")
                next_note += 15.0
            time.sleep(1.0)
        console.print(f"platform healthy after {time.monotonic() - started:.1f}s")

    def stop(self, timeout_s: float = 120.0) -> None:
        proc = self.proc
        if proc is not None and proc.poll() is None:
            console.print("stopping the platform we started (SIGTERM)")
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                console.print("[yellow]the platform did not stop in time: SIGKILL")
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        if self.log is not None:
            self.log.close()


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
    job leaves it (`shop/warmer.py` warms the popular ones). Returns the seconds it took."""
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
