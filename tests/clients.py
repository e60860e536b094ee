"""In-process API clients and a running-server helper for tests."""

import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager

import httpx
from fastapi import FastAPI

from orderflow.cli import build_app
from orderflow.kit.embedded import free_port
from orderflow.kit.settings import ServiceName, Settings


@asynccontextmanager
async def api(service: ServiceName, settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """One service in-process, lifespan included, behind an httpx client."""
    app: FastAPI = build_app(service, settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=f"http://{service}") as client:
            yield client


def settings_env(settings: Settings, extra: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ) | (extra or {})
    env |= {
        "ORDERFLOW_SHOP_DSN": settings.shop_dsn,
        "ORDERFLOW_MES_DSN": settings.mes_dsn,
        "ORDERFLOW_REDIS_URL": settings.redis_url,
        "ORDERFLOW_REDIS_CLUSTER": "true" if settings.redis_cluster else "false",
    }
    return env


@contextmanager
def running(
    args: list[str], settings: Settings, env: dict[str, str] | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """`python -m orderflow ARGS` as a real process; terminated at the end."""
    cmd = [sys.executable, "-m", "orderflow", *args]
    proc = subprocess.Popen(cmd, env=settings_env(settings, env))
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@contextmanager
def server(
    service: ServiceName, settings: Settings, env: dict[str, str] | None = None
) -> Iterator[str]:
    """A real uvicorn process serving `service` on a free loopback port; yields its URL."""
    port = free_port()
    with running(["serve", service, "--port", str(port)], settings, env) as proc:
        url = f"http://127.0.0.1:{port}"
        wait_healthy(url, proc)
        yield url


def wait_healthy(url: str, proc: subprocess.Popen[bytes], timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"server exited with {proc.returncode}"
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"{url} not healthy after {timeout_s}s")
