"""An API host: Shop, CRM and MES, a relay, and the HAProxy beside them that sends their
PostgreSQL connections to whichever database host Patroni says is the primary.

Why HAProxy beside each API host, and not a DSN naming every database host with
`target_session_attrs`: asyncpg tries the hosts of such a DSN one after the other within one
connect timeout, so a host that drops packets (a partition, a hung machine) eats the whole
timeout before the next is tried; and a pooled connection to a primary that was demoted stays
open, its writes refused as read-only. HAProxy asks each Patroni's REST API (`GET /primary`,
200 only on the leader) twice a second from the API host itself, closes every session to a
server it marks down (`on-marked-down shutdown-sessions`), and refuses new ones at once when no
server is up, which the APIs answer 503. One per API host, so it is no single point of
failure: it dies with its host.

The relay has frontends of its own, one per database, so a partition can cut the relay off
from one database while the APIs beside it keep theirs (`nemesis.relay_cut`).
"""

from pathlib import Path

from orderflow.kit.settings import Settings
from tests.multihost import database
from tests.multihost.hosts import Host, Process

PORTS = {"shop": 8001, "crm": 8002, "mes": 8003}
APIS = tuple(PORTS)
PROXY = {"apis": 6001, "relay-shopdb": 6002, "relay-mesdb": 6003}


def haproxy_config(db_hosts: list[Host]) -> str:
    lines = [
        "global",
        "  maxconn 2000",
        "defaults",
        "  mode tcp",
        "  timeout connect 1s",
        "  timeout client 1h",
        "  timeout server 1h",
        "  timeout check 1s",
    ]
    for name, port in PROXY.items():
        lines += [
            f"listen {name}",
            f"  bind 127.0.0.1:{port}",
            "  option httpchk GET /primary",
            "  http-check expect status 200",
            "  default-server inter 500ms fastinter 250ms fall 2 rise 1"
            " on-marked-down shutdown-sessions",
        ]
        lines += [
            f"  server {h.name} {h.ip}:{database.PORT} check port {database.REST_PORT}"
            for h in db_hosts
        ]
    return "\n".join(lines) + "\n"


def local_dsn(port: int, db: str) -> str:
    user, password = database.SUPERUSER
    return f"postgresql+asyncpg://{user}:{password}@127.0.0.1:{port}/{db}"


def configure(host: Host, db_hosts: list[Host], redis_url: str, root: Path, python: str) -> None:
    """HAProxy, the three APIs and a relay, to be started in this order."""
    home = root / host.name
    home.mkdir(parents=True, exist_ok=True)
    config = home / "haproxy.cfg"
    config.write_text(haproxy_config(db_hosts))
    common = {
        "ORDERFLOW_REDIS_URL": redis_url,
        "ORDERFLOW_REDIS_CLUSTER": "true",
        "ORDERFLOW_HOST": host.ip,
        "ORDERFLOW_DB_CONNECT_TIMEOUT_S": "2",
        "ORDERFLOW_DB_STATEMENT_TIMEOUT_S": "5",
        "ORDERFLOW_RELAY_METRICS_PORT": "0",
    }
    apis = common | {
        "ORDERFLOW_SHOP_DSN": local_dsn(PROXY["apis"], "shopdb"),
        "ORDERFLOW_MES_DSN": local_dsn(PROXY["apis"], "mesdb"),
    }
    relay = common | {
        "ORDERFLOW_SHOP_DSN": local_dsn(PROXY["relay-shopdb"], "shopdb"),
        "ORDERFLOW_MES_DSN": local_dsn(PROXY["relay-mesdb"], "mesdb"),
    }
    host.processes = [
        Process("haproxy", ("haproxy", "-db", "-f", str(config))),
        *(
            Process(
                api,
                (python, "-m", "orderflow", "serve", api, "--port", str(port)),
                env=tuple(apis.items()),
            )
            for api, port in PORTS.items()
        ),
        Process("relay", (python, "-m", "orderflow", "relay"), env=tuple(relay.items())),
    ]


def settings_for_checks(db_hosts: list[Host], redis_url: str) -> Settings:
    """What the suite's checker uses from the client host: every database host in one DSN."""
    return Settings(
        shop_dsn=database.dsn(db_hosts, "shopdb"),
        mes_dsn=database.dsn(db_hosts, "mesdb"),
        redis_url=redis_url,
        redis_cluster=True,
    )
