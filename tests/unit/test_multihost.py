"""The multi-host lab's pure parts: when it refuses to run, the partitions' rules, HAProxy's
configuration, the balancer's choice. (The lab itself runs in `make multihost`.)"""

from pathlib import Path

import pytest

from tests.multihost import __main__ as cli
from tests.multihost import api_hosts
from tests.multihost.lab import Balancer, Lab
from tests.multihost.nemesis import loopback_port, peer


def test_it_says_why_it_cannot_run_elsewhere(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(cli.platform, "system", lambda: "Darwin")
    assert "Linux network namespaces" in (cli.why_not() or "")
    monkeypatch.setattr(cli.platform, "system", lambda: "Linux")
    monkeypatch.setattr(cli.os, "geteuid", lambda: 1000)
    assert "as root" in (cli.why_not() or "")
    monkeypatch.setattr(cli.os, "geteuid", lambda: 0)
    monkeypatch.setattr(cli.shutil, "which", lambda tool: None if tool == "etcd" else tool)
    monkeypatch.setattr(cli.database, "PATRONI", tmp_path / "patroni")
    assert cli.why_not() == (
        f"missing etcd, {tmp_path / 'patroni'}: `make multihost-tools` installs them (root, Debian)"
    )


def test_a_partition_drops_both_ways() -> None:
    assert peer("10.77.0.21", 7001) == [
        "ip saddr 10.77.0.21 tcp sport 7001",
        "ip daddr 10.77.0.21 tcp dport 7001",
    ]
    assert peer("10.77.0.31") == ["ip saddr 10.77.0.31", "ip daddr 10.77.0.31"]
    assert loopback_port(6002) == ["tcp dport 6002", "tcp sport 6002"]


def test_haproxy_follows_patronis_leader_on_every_frontend() -> None:
    lab = Lab()
    config = api_hosts.haproxy_config(lab.dbs)
    for name, port in api_hosts.PROXY.items():
        assert f"listen {name}\n  bind 127.0.0.1:{port}\n" in config
    assert config.count("option httpchk GET /primary") == len(api_hosts.PROXY)
    assert config.count("server db1 10.77.0.31:5432 check port 8008") == len(api_hosts.PROXY)
    assert config.count("on-marked-down shutdown-sessions") == len(api_hosts.PROXY)


def test_the_balancer_skips_a_host_whose_service_is_down() -> None:
    lab = Lab()
    balancer = Balancer(lab, settings=None)  # type: ignore[arg-type]  (not used by url)
    balancer.up = {("api1", "shop"): False, ("api2", "shop"): True}
    assert {balancer.url("shop") for _ in range(4)} == {"http://10.77.0.12:8001"}
    assert {balancer.url("crm") for _ in range(4)} == {
        "http://10.77.0.11:8002",
        "http://10.77.0.12:8002",
    }
    balancer.up = {("api1", "shop"): False, ("api2", "shop"): False}
    assert len({balancer.url("shop") for _ in range(4)}) == 2  # none up: try them all
