"""`orderflow up` on an empty data dir: embedded servers, migrations, seed, three APIs, relay;
Ctrl-C stops everything; a second start finds the data still there."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from orderflow.kit.embedded import free_port, free_port_range
from tests.clients import wait_healthy


def start_platform(
    data_dir: Path, ports: dict[str, int], *args: str, **extra: str
) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORDERFLOW_")}
    env |= {
        "ORDERFLOW_DATA_DIR": str(data_dir),
        "ORDERFLOW_SEED_ORDERS": "500",
        "ORDERFLOW_SEED_CLIENTS": "50",
        "ORDERFLOW_SEED_ITEMS": "40",
    }
    env |= {f"ORDERFLOW_{name.upper()}_PORT": str(port) for name, port in ports.items()}
    env |= {f"ORDERFLOW_{name.upper()}": value for name, value in extra.items()}
    return subprocess.Popen(
        [sys.executable, "-m", "orderflow", "up", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def walk_through_the_readme(urls: dict[str, str]) -> str:
    """The README's curl walkthrough, run against `urls`: its output."""
    walk = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", readme_walkthrough()],
        env={**os.environ, "S": urls["shop"], "C": urls["crm"], "M": urls["mes"]},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert walk.returncode == 0, walk.stdout + walk.stderr
    assert '"holder":3' in walk.stdout
    assert walk.stdout.count('"status":"ready"') == 1
    assert '"status":"delivered"' in walk.stdout
    return walk.stdout


def readme_walkthrough() -> str:
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    section = readme.split("## One order's life, with curl", 1)[1]
    return section.split("```sh\n", 1)[1].split("```", 1)[0]


def stop(proc: subprocess.Popen[str]) -> str:
    proc.send_signal(signal.SIGINT)
    output, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, output
    return output


def test_up_runs_everything_and_keeps_data(tmp_path: Path) -> None:
    names = ("shop", "crm", "mes", "embedded_pg", "embedded_redis")
    ports = {name: free_port() for name in names}
    urls = {s: f"http://127.0.0.1:{ports[s]}" for s in ("shop", "crm", "mes")}

    first = start_platform(tmp_path, ports)
    try:
        for url in urls.values():
            wait_healthy(url, first, timeout_s=120)  # type: ignore[arg-type]
        stats = httpx.get(f"{urls['crm']}/orders/stats")
        assert stats.json().get("total") == 500, (stats.status_code, stats.text)
        client = httpx.post(f"{urls['shop']}/clients", json={"name": "K", "email": "k@example.com"})
        assert client.status_code == 201
        walk_through_the_readme(urls)
    finally:
        output = stop(first)
    assert "seeded 500 orders" in output
    assert "orderflow is up" in output

    second = start_platform(tmp_path, ports)
    started = time.monotonic()
    try:
        for url in urls.values():  # the second start: every API, not just the first to answer
            wait_healthy(url, second, timeout_s=60)  # type: ignore[arg-type]
        assert httpx.get(f"{urls['shop']}/clients/51").json()["email"] == "k@example.com"
        assert httpx.get(f"{urls['crm']}/orders/stats").json()["total"] == 501
    finally:
        output = stop(second)
    assert "not seeding" in output
    assert time.monotonic() - started < 60


def test_up_on_an_embedded_redis_cluster(tmp_path: Path) -> None:
    """`orderflow up --redis-cluster`: 3 masters and 3 replicas, and the platform on them."""
    ports = {name: free_port() for name in ("shop", "crm", "mes", "embedded_pg")}
    urls = {s: f"http://127.0.0.1:{ports[s]}" for s in ("shop", "crm", "mes")}
    base = str(free_port_range(6))
    proc = start_platform(tmp_path, ports, "--redis-cluster", embedded_redis_cluster_port=base)
    try:
        for url in urls.values():
            wait_healthy(url, proc, timeout_s=120)  # type: ignore[arg-type]
        walk_through_the_readme(urls)
        for url in urls.values():
            assert httpx.get(f"{url}/health").json()["cache"] == "ok"
        order = httpx.get(f"{urls['crm']}/orders", params={"limit": 1}).json()["items"][0]
        for _ in range(2):  # cached, and read from the cluster
            assert httpx.get(f"{urls['shop']}/orders/{order['id']}").json() == order
    finally:
        output = stop(proc)
    assert "orderflow is up" in output
    assert "master" in output  # the cluster's masters and replicas, as started
