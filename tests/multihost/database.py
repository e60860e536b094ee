"""PostgreSQL on three hosts under Patroni, with etcd on three hosts of its own as the store
Patroni elects its leader in.

etcd has hosts of its own because Debian 12's etcd (3.4.23) lets a member that was the Raft
leader, paused and resumed, revoke every lease it thinks expired before it learns it is no
longer the leader (etcd-io/etcd#15247; fixed by #16822, November 2023, in 3.4 and 3.5). Beside the
primary, a pause of that host fits what the lab saw: the new primary lost its leader key, the
resumed old primary, still believing it held the key, took it, and what the new primary had
acknowledged was rewound away (docs/reliability.md). On hosts of their own, a hung database
host leaves etcd whole.

Replication is synchronous (`synchronous_mode` and `synchronous_mode_strict`): a commit is
acknowledged once a standby has it, and Patroni promotes only that standby, so an acknowledged
commit survives the death of its primary; with no standby left, commits wait (strict) rather
than go on unreplicated.

`ttl` 20 s (Patroni 4's least), `loop_wait` 1 s, `retry_timeout` 3 s: a primary that cannot
reach etcd demotes itself within 1 + 2 * 3 = 7 s, long before its leader key runs out
(Patroni's rule), so two primaries never accept writes at once; a dead one is replaced about
20 s after it died.

Patroni is PyPI's 4.1.5 (`make multihost-tools` puts it in `.tools/patroni`), not Debian 12's
3.0.2: there a primary paused past the `ttl` could take the leader key back after a standby's
promotion (patroni#2787, fixed in 3.1.0), and the lab saw two timelines at once.
"""

import json
import shutil
import time
import urllib.request
from pathlib import Path
from typing import Any

from tests.multihost.hosts import Host, Process

BIN = Path("/usr/lib/postgresql/15/bin")
PATRONI = Path(__file__).resolve().parents[2] / ".tools" / "patroni" / "bin" / "patroni"
PORT = 5432
REST_PORT = 8008
ETCD_CLIENT, ETCD_PEER = 2379, 2380
SUPERUSER = ("postgres", "orderflow")
TTL_S, LOOP_WAIT_S, RETRY_TIMEOUT_S = 20, 1, 3


def configure(db_hosts: list[Host], etcd_hosts: list[Host], root: Path) -> None:
    """Give each etcd host its member, and each database host its Patroni (with PostgreSQL)."""
    cluster = ",".join(f"{h.name}=http://{h.ip}:{ETCD_PEER}" for h in etcd_hosts)
    for host in etcd_hosts:
        home = root / host.name
        shutil.rmtree(home, ignore_errors=True)
        home.mkdir(parents=True)
        etcd = (
            "etcd", "--name", host.name, "--data-dir", str(home / "etcd"),
            "--listen-client-urls", f"http://{host.ip}:{ETCD_CLIENT}",
            "--advertise-client-urls", f"http://{host.ip}:{ETCD_CLIENT}",
            "--listen-peer-urls", f"http://{host.ip}:{ETCD_PEER}",
            "--initial-advertise-peer-urls", f"http://{host.ip}:{ETCD_PEER}",
            "--initial-cluster", cluster, "--initial-cluster-state", "new",
            "--initial-cluster-token", "orderflow-multihost",
            # A member back from a partition would start an election with the term it raised
            # while alone, and etcd would answer nobody for seconds: long enough for Patroni to
            # demote a primary elected a moment before. Pre-vote (3.5's default) stops that.
            "--pre-vote",
        )  # fmt: skip
        host.processes = [Process("etcd", etcd)]
    for host in db_hosts:
        home = root / host.name
        shutil.rmtree(home, ignore_errors=True)
        (home / "pg").mkdir(parents=True)
        shutil.chown(home / "pg", "postgres", "postgres")
        home.chmod(0o755)
        config = home / "pg" / "patroni.yml"  # JSON is YAML
        patroni = _patroni_config(host, etcd_hosts, home / "pg")
        config.write_text(json.dumps(patroni, indent=1))
        shutil.chown(config, "postgres", "postgres")
        host.processes = [Process("patroni", (str(PATRONI), str(config)), user="postgres")]


def _patroni_config(host: Host, etcd_hosts: list[Host], home: Path) -> dict[str, Any]:
    user, password = SUPERUSER
    return {
        "scope": "orderflow",
        "name": host.name,
        "restapi": {
            "listen": f"{host.ip}:{REST_PORT}",
            "connect_address": f"{host.ip}:{REST_PORT}",
        },
        "etcd3": {"hosts": [f"{h.ip}:{ETCD_CLIENT}" for h in etcd_hosts]},
        "bootstrap": {
            "dcs": {
                "ttl": TTL_S,
                "loop_wait": LOOP_WAIT_S,
                "retry_timeout": RETRY_TIMEOUT_S,
                "maximum_lag_on_failover": 1 << 20,
                "synchronous_mode": True,
                "synchronous_mode_strict": True,
                "postgresql": {
                    "use_pg_rewind": True,
                    "parameters": {
                        "max_connections": 300,
                        "wal_log_hints": "on",
                        "max_wal_senders": 10,
                        "max_replication_slots": 10,
                        "wal_keep_size": "256MB",
                    },
                },
            },
            "initdb": [{"encoding": "UTF8"}, {"locale": "C"}],
        },
        "postgresql": {
            "listen": f"{host.ip},127.0.0.1:{PORT}",
            "connect_address": f"{host.ip}:{PORT}",
            "data_dir": str(home / "data"),
            # A pg_rewind cut short (its source paused or killed meanwhile) can leave WAL that
            # no later rewind reads: the old primary then stays `starting` for ever. Clone it
            # afresh instead (seen in the lab: a rewind from a primary that was then paused).
            "remove_data_directory_on_rewind_failure": True,
            "bin_dir": str(BIN),
            "pgpass": str(home / "pgpass"),
            "authentication": {
                "superuser": {"username": user, "password": password},
                "replication": {"username": "replicator", "password": "replicator"},
                "rewind": {"username": "rewinder", "password": "rewinder"},
            },
            "parameters": {"unix_socket_directories": str(home)},
            "pg_hba": [
                "local all all trust",
                "host all all 127.0.0.1/32 trust",
                "host replication all 127.0.0.1/32 trust",  # Patroni asks its own timeline
                "host replication replicator 10.77.0.0/24 trust",
                "host all all 10.77.0.0/24 trust",
            ],
        },
    }


def members(host: Host, timeout_s: float = 1.0) -> list[dict[str, Any]]:
    """Patroni's view of the cluster, asked of `host`'s REST API (role, state, lag...)."""
    url = f"http://{host.ip}:{REST_PORT}/cluster"
    with urllib.request.urlopen(url, timeout=timeout_s) as reply:
        return list(json.load(reply)["members"])


def etcd_health(host: Host) -> str:
    """What the etcd member on `host` says of itself (`GET /health`)."""
    try:
        url = f"http://{host.ip}:{ETCD_CLIENT}/health"
        with urllib.request.urlopen(url, timeout=1.0) as reply:
            return "healthy" if json.load(reply).get("health") == "true" else "unhealthy"
    except OSError as exc:
        return f"not answering ({type(exc).__name__})"


def cluster_view(db_hosts: list[Host]) -> list[dict[str, Any]]:
    """The members as the primary sees them, else the first database host that answers ([] if
    none answers): a host cut off a moment ago may still hold an old view."""
    first = leader(db_hosts)
    for host in ([first] if first else []) + [h for h in db_hosts if h is not first]:
        try:
            return members(host)
        except OSError:
            continue
    return []


def leader(db_hosts: list[Host]) -> Host | None:
    """The host whose Patroni says it is the primary, asked of itself (`GET /primary`)."""
    for host in db_hosts:
        try:
            with urllib.request.urlopen(f"http://{host.ip}:{REST_PORT}/primary", timeout=1):
                return host
        except OSError:
            continue
    return None


def health_problem(db_hosts: list[Host]) -> str | None:
    """None once there is one running leader and both other members stream from it, on its
    timeline, one of them as the synchronous standby (named in Patroni's /sync key, so that it
    alone may be promoted next). A member that is not `streaming` is not enough: an old primary
    that has not yet rejoined is listed as a `running` replica; a fault injected then would
    find no standby Patroni may promote."""
    view = cluster_view(db_hosts)
    leaders = [m for m in view if m["role"] == "leader" and m.get("state") == "running"]
    roles = sorted(m["role"] for m in view)
    streaming = [m for m in view if m["role"] != "leader" and m.get("state") == "streaming"]
    one_timeline = len({m.get("timeline") for m in view}) == 1
    healthy = roles == ["leader", "replica", "sync_standby"] and len(streaming) == 2
    if healthy and leaders and one_timeline:
        return None
    return f"members: {[(m['name'], m['role'], m.get('state'), m.get('timeline')) for m in view]}"


def wait_healthy(db_hosts: list[Host], timeout_s: float) -> float:
    """Seconds until `health_problem` is None; raises after `timeout_s`."""
    started = time.monotonic()
    while (problem := health_problem(db_hosts)) is not None:
        if time.monotonic() - started > timeout_s:
            raise TimeoutError(f"PostgreSQL cluster not healthy in {timeout_s:.0f} s: {problem}")
        time.sleep(0.2)
    return time.monotonic() - started


def dsn(db_hosts: list[Host], database: str) -> str:
    """A DSN naming every database host, connecting to the one that takes writes (asyncpg's
    `target_session_attrs`): what the checker, outside any API host, uses."""
    user, password = SUPERUSER
    hosts = ",".join(f"{h.ip}:{PORT}" for h in db_hosts)
    return (
        f"postgresql+asyncpg://{user}:{password}@{hosts}/{database}?target_session_attrs=read-write"
    )
