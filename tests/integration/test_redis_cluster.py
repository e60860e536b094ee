"""orderflow's Redis client on a real Redis Cluster (3 masters, 3 replicas), no mocks.

The embedded cluster is shared by the session: tests that kill or freeze a node bring it
back and wait until the cluster is whole again before they end. Those tests need the
embedded cluster and are skipped when ORDERFLOW_TEST_REDIS_CLUSTER_URL names another one.
"""

import asyncio
import time
import uuid
from collections.abc import AsyncIterator

import pytest
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import NoScriptError, RedisClusterException, RedisError

from orderflow.kit.embedded import free_port
from orderflow.kit.embedded_cluster import EmbeddedRedisCluster
from orderflow.kit.redis import create_redis, is_cluster
from orderflow.kit.settings import Settings

SLOTS = 16384
SETTINGS = Settings(redis_cluster=True)


@pytest.fixture
async def cluster(redis_cluster_url: str) -> AsyncIterator[RedisCluster]:
    client = create_redis(redis_cluster_url, SETTINGS, name="test")
    assert is_cluster(client)
    await client.initialize()
    yield client
    await client.aclose()


async def test_a_client_finds_the_cluster_from_any_node_its_url_names(
    redis_cluster_url: str,
) -> None:
    """A process started while the first node it names is down (a master failing over) finds
    the cluster from the next: before, the URL named one node, and such a process had no
    topology until that node came back."""
    nobody = free_port()
    client = create_redis(f"redis://127.0.0.1:{nobody}/0,{redis_cluster_url}", SETTINGS, name="t")
    assert is_cluster(client)
    try:
        await client.initialize()
        assert len(client.get_primaries()) == 3
        assert await client.set(f"t:{uuid.uuid4().hex}", "1", ex=10)
    finally:
        await client.aclose()


def embedded(redis_cluster: EmbeddedRedisCluster | None) -> EmbeddedRedisCluster:
    if redis_cluster is None:
        pytest.skip("kills nodes: needs the embedded cluster, not ORDERFLOW_TEST_REDIS_CLUSTER_URL")
    return redis_cluster


def key_on(client: RedisCluster, node_name: str, prefix: str = "t") -> str:
    """A fresh key whose slot the master `node_name` (host:port) serves, as the client sees."""
    run = uuid.uuid4().hex[:8]
    for i in range(100_000):
        key = f"{prefix}:{run}:{i}"
        if client.nodes_manager.get_node_from_slot(client.keyslot(key)).name == node_name:
            return key
    raise AssertionError(f"no key found on {node_name}")


def node_name(port: int) -> str:
    return f"127.0.0.1:{port}"


async def test_three_masters_three_replicas_cover_every_slot(cluster: RedisCluster) -> None:
    assert len(cluster.get_primaries()) == 3
    assert len(cluster.get_replicas()) == 3
    for node in cluster.get_nodes():
        info = await cluster.cluster_info(target_nodes=node)
        assert info["cluster_state"] == "ok", node.name
        assert int(info["cluster_slots_ok"]) == SLOTS, node.name
        assert int(info["cluster_known_nodes"]) == 6, node.name
    covered = sum(high - low + 1 for low, high in await cluster.cluster_slots())
    assert covered == SLOTS


async def test_set_and_get_on_every_shard(cluster: RedisCluster) -> None:
    for primary in cluster.get_primaries():
        key = key_on(cluster, primary.name)
        assert await cluster.set(key, primary.name, ex=60)
        assert await cluster.get(key) == primary.name.encode()
        # The key really lives on that master, not merely somewhere the client can reach.
        assert await cluster.execute_command("EXISTS", key, target_nodes=primary) == 1


async def test_a_script_runs_on_keys_that_share_a_hash_tag(cluster: RedisCluster) -> None:
    tag = f"{{c:{uuid.uuid4().hex[:8]}}}"
    entry, generation = f"{tag}:entry", f"{tag}:gen"
    assert cluster.keyslot(entry) == cluster.keyslot(generation)
    script = """
        local gen = redis.call('INCR', KEYS[2])
        redis.call('SET', KEYS[1], ARGV[1] .. ':' .. gen, 'EX', 60)
        return redis.call('GET', KEYS[1])
    """
    assert await cluster.eval(script, 2, entry, generation, "v") == b"v:1"
    sha = await cluster.script_load(script)  # loaded on every master
    assert await cluster.evalsha(sha, 2, entry, generation, "w") == b"w:2"
    # Keys of several slots are refused by the client before anything is sent.
    untagged = f"gen:{uuid.uuid4().hex}"
    assert cluster.keyslot(untagged) != cluster.keyslot(entry)
    with pytest.raises(RedisClusterException):
        await cluster.eval(script, 2, entry, untagged, "x")


async def test_evalsha_in_a_pipeline_goes_through_execute_command(cluster: RedisCluster) -> None:
    """`pipe.evalsha` is blocked on a cluster pipeline; the raw command works (one slot per
    call), and NOSCRIPT comes back as that command's result, not as the pipeline's error."""
    script = "return redis.call('GET', KEYS[1])"
    sha = await cluster.script_load(script)
    keys = [key_on(cluster, primary.name) for primary in cluster.get_primaries()]
    for key in keys:
        await cluster.set(key, key, ex=60)
    pipe = cluster.pipeline(transaction=False)
    for key in keys:
        pipe.execute_command("EVALSHA", sha, 1, key)
    pipe.execute_command("EVALSHA", "0" * 40, 1, keys[0])
    *found, missing = await pipe.execute(raise_on_error=False)
    assert found == [key.encode() for key in keys]
    assert isinstance(missing, NoScriptError)


async def test_a_hung_master_costs_one_timeout(
    redis_cluster: EmbeddedRedisCluster | None, cluster: RedisCluster
) -> None:
    """SIGSTOP keeps the master's sockets open but unanswered: a call to its slots fails after
    one socket timeout (redis-py's default would retry it 10 times). Thawed well within the
    node timeout, so no failover starts."""
    nodes = embedded(redis_cluster)
    victim = nodes.master_ports()[0]
    key = key_on(cluster, node_name(victim))
    other = key_on(cluster, node_name(nodes.master_ports()[1]))
    await cluster.set(key, "before", ex=60)
    nodes.freeze(victim)
    try:
        started = time.monotonic()
        with pytest.raises(RedisError):
            await cluster.set(key, "during", ex=60)
        took = time.monotonic() - started
    finally:
        nodes.thaw(victim)
    print(f"\na call to a hung master failed after {took:.3f}s")
    assert SETTINGS.redis_timeout_s * 0.9 <= took < 1.5  # one timeout: no retries, no hang
    assert await cluster.set(other, "fine", ex=60)  # reloads the slot table, then goes on
    # The write that timed out was in the hung server's socket buffer: it applied once the
    # server woke. A timeout says nothing about whether a write happened.
    assert await cluster.get(key) == b"during"
    nodes.wait_healthy()
    assert victim in nodes.master_ports()


async def test_a_killed_master_is_replaced_by_its_replica_and_rejoins(
    redis_cluster: EmbeddedRedisCluster | None, cluster: RedisCluster
) -> None:
    nodes = embedded(redis_cluster)
    victim = nodes.master_ports()[0]
    replica = nodes.replica_of(victim)
    assert replica is not None
    key = key_on(cluster, node_name(victim))
    others = [key_on(cluster, node_name(p)) for p in nodes.master_ports() if p != victim]
    await cluster.set(key, "before", ex=120)

    killed = time.monotonic()
    nodes.kill(victim)
    failed_calls, slowest_failure, other_writes = 0, 0.0, 0
    while True:
        # require-full-coverage no: the other shards take writes all along.
        for other in others:
            assert await cluster.set(other, "during", ex=120)
            other_writes += 1
        started = time.monotonic()
        try:
            await cluster.set(key, "after", ex=120)
            break
        except RedisError:
            failed_calls += 1
            slowest_failure = max(slowest_failure, time.monotonic() - started)
        assert time.monotonic() - killed < 15, "the replica was not promoted within 15 s"
        await asyncio.sleep(0.05)
    writable_after = time.monotonic() - killed
    print(
        f"\nmaster {victim} killed: its slots writable again after {writable_after:.2f}s "
        f"(replica {replica} promoted); {failed_calls} failed calls, the slowest "
        f"{slowest_failure:.3f}s; {other_writes} writes to the other shards, none failed"
    )
    assert slowest_failure < SETTINGS.redis_timeout_s + 0.25 + 0.2  # one timeout (+ CLUSTERDOWN)
    deadline = time.monotonic() + 5  # every node learns of the promotion through gossip
    while replica not in nodes.master_ports():
        assert time.monotonic() < deadline, "a node still does not see the promoted replica"
        await asyncio.sleep(0.05)
    assert await cluster.get(key) == b"after"

    nodes.restart(victim)
    deadline = time.monotonic() + 15
    while nodes.replica_of(replica) != victim:
        assert time.monotonic() < deadline, "the restarted node did not rejoin as a replica"
        await asyncio.sleep(0.05)
    nodes.wait_healthy()
    rejoined_after = time.monotonic() - killed
    print(f"node {victim} back as a replica of {replica} {rejoined_after:.2f}s after the kill")
    assert len(nodes.master_ports()) == 3
    assert await cluster.get(key) == b"after"
    for other in others:
        assert await cluster.get(other) == b"during"
