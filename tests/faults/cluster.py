"""The Redis faults on a Redis Cluster: a master killed (its replica takes over) or paused.

On one node Redis is killed and restarted, or paused; on a cluster the same faults hit one
master, in turn (the masters change as replicas are promoted): the others go on serving.
"""

import asyncio
import sys
import time

import httpx
from redis.asyncio import Redis
from redis.exceptions import RedisError

from orderflow.cache.layout import slot_tags
from tests.faults.history import Failover
from tests.faults.platform import APIS, FaultPlatform

FAILOVER_BOUND_S = 30.0  # a replica took over in 2.3-3.9 s here (node timeout 1 s)
HEALTHY_BOUND_S = 60.0  # each process's probe bumps the epochs of thousands of slots
PAUSE_S = 0.5  # shorter than the node timeout (1 s): no failover


def _master(p: FaultPlatform, turn: int) -> int:
    masters = p.cluster.master_ports()
    return masters[turn % len(masters)]


async def master_killed(p: FaultPlatform) -> None:
    """SIGKILL a master while the load runs; once its replica serves its slots (measured from
    the kill, in `p.failovers`), start it again: it rejoins as a replica."""
    cluster = p.cluster
    port = _master(p, len(p.failovers))
    replica = await asyncio.to_thread(cluster.replica_of, port)
    assert replica is not None, f"master {port} has no replica"
    slots = await asyncio.to_thread(cluster.slots_of, port)
    key = f"orderflow-faults:failover:{{{slot_tags()[slots[0][0]]}}}"
    killed = time.monotonic()
    await asyncio.to_thread(cluster.kill, port)
    seconds = await _writable(replica, key, killed) - killed
    healthy = await _apis_healthy(p, killed)
    p.failovers.append(Failover(port, seconds, healthy and healthy - killed))
    print(
        f"master {port} killed: {replica} serves its slots after {seconds:.2f} s",
        file=sys.stderr,
    )
    await asyncio.to_thread(cluster.restart, port)
    await asyncio.to_thread(cluster.wait_healthy, FAILOVER_BOUND_S)


async def _writable(port: int, key: str, since: float) -> float:
    """When the node on `port` first accepted a write of `key` (a replica answers MOVED, so it
    accepts one only once it is the master of `key`'s slot); fails after FAILOVER_BOUND_S."""
    node = Redis(host="127.0.0.1", port=port, socket_timeout=0.5, socket_connect_timeout=0.5)
    try:
        while time.monotonic() - since < FAILOVER_BOUND_S:
            try:
                await node.set(key, "1", ex=60)
            except (RedisError, OSError):
                await asyncio.sleep(0.02)
                continue
            return time.monotonic()
    finally:
        await node.aclose()
    raise AssertionError(f"replica {port} not serving {key!r} {FAILOVER_BOUND_S} s after the kill")


async def _apis_healthy(p: FaultPlatform, since: float) -> float | None:
    """When every API's /health first said ok after the kill (each process's breaker of the
    shard closed again, the probe having moved its epochs forward); None after the bound.
    (Its polling lets a due probe through, as any request to the shard does.)"""
    reports: dict[str, object] = {}
    async with httpx.AsyncClient(timeout=2.0) as http:
        while time.monotonic() - since < HEALTHY_BOUND_S:
            for api in APIS:
                try:
                    reply = await http.get(f"{p.url(api)}/health")
                    reports[api] = reply.json() if reply.status_code == 200 else reply.status_code
                except (httpx.HTTPError, ValueError) as exc:
                    reports[api] = repr(exc)
            if all(isinstance(r, dict) and r.get("status") == "ok" for r in reports.values()):
                return time.monotonic()
            await asyncio.sleep(0.05)
    print(f"not every API healthy {HEALTHY_BOUND_S} s after the kill: {reports}", file=sys.stderr)
    return None


async def master_paused(p: FaultPlatform) -> None:
    """SIGSTOP a master for PAUSE_S (calls to its slots time out), then SIGCONT: shorter than
    the node timeout, so no failover (and none is expected: the cluster is healthy after)."""
    cluster = p.cluster
    port = _master(p, p.pauses)
    p.pauses += 1
    cluster.freeze(port)
    try:
        await asyncio.sleep(PAUSE_S)
    finally:
        cluster.thaw(port)
    await asyncio.to_thread(cluster.wait_healthy, FAILOVER_BOUND_S)
    if port not in await asyncio.to_thread(cluster.master_ports):
        print(f"master {port} paused {PAUSE_S} s was failed over", file=sys.stderr)
