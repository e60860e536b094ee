"""The Redis Cluster of the lab: 3 masters and 3 replicas on three Redis hosts, two nodes
each, every master's replica on another host (`redis-cli --cluster create` places them so)."""

from dataclasses import dataclass, field
from pathlib import Path

from orderflow.kit.embedded_cluster import EmbeddedRedisCluster
from tests.multihost.hosts import Host, Process

BASE_PORT = 7001


@dataclass
class HostedRedisCluster(EmbeddedRedisCluster):
    """Node i (port BASE_PORT + i) on host i % 3: masters 7001-7003 on hosts 1-3, their
    replicas 7004-7006 on the next host round (`--cluster create` keeps a master's replica off
    its host)."""

    hosts: list[Host] = field(default_factory=list)
    logs: Path = Path()

    def host_of(self, port: int) -> Host:
        return self.hosts[(port - self.base_port) % len(self.hosts)]

    def address(self, port: int) -> str:
        return self.host_of(port).ip

    def ports_on(self, host: Host) -> list[int]:
        return [p for p in self.nodes if self.host_of(p) is host]

    def _spawn(self, port: int) -> None:
        process = Process(f"redis-{port}", tuple(self._args(port)))
        self.procs[port] = self.host_of(port).spawn(process, self.logs)


def redis_cluster(hosts: list[Host], root: Path, logs: Path) -> HostedRedisCluster:
    return HostedRedisCluster(root / "redis", BASE_PORT, hosts=hosts, logs=logs)
