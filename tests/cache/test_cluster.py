"""The cache library on a real Redis Cluster (3 masters, 3 replicas): the same rules as on one
node, with an epoch per slot, a breaker per shard and failovers treated as outages.

The cluster is the session's (`redis_cluster`): tests that freeze or kill a node bring it back
and wait until the cluster is whole before they end.
"""

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from redis import Redis as SyncRedis
from redis.asyncio.cluster import RedisCluster
from redis.crc import key_slot

from orderflow.cache import SLOTS, Cache, Entity, FixedTTL, Listing, tag_slot
from orderflow.kit.embedded_cluster import EmbeddedRedisCluster
from orderflow.kit.redis import create_cluster
from tests.cache.conftest import Loader, sample

TTL = FixedTTL(60)
ORDER = Entity("order")
CLIENT_VIEW = Entity("client_order_view", client_tagged=True)
TIMEOUT_S = 1.0  # not the platform's 0.25 s: these tests count hits on a busy machine


@pytest.fixture
async def client(redis_cluster_url: str) -> AsyncIterator[RedisCluster]:
    redis = create_cluster(redis_cluster_url, socket_timeout=TIMEOUT_S, socket_connect_timeout=1)
    await redis.initialize()
    yield redis
    await redis.aclose()


@pytest.fixture
async def cache(client: RedisCluster) -> Cache:
    cache = Cache(client, f"t{uuid.uuid4().hex[:12]}", timeout_s=TIMEOUT_S)
    await cache.start()
    await cache.started()  # every slot's epoch learnt: no lookup waits behind that
    return cache


@pytest.fixture
def entity() -> Entity:
    return Entity(f"item_{uuid.uuid4().hex[:8]}", prefix="item")


def embedded(redis_cluster: EmbeddedRedisCluster | None) -> EmbeddedRedisCluster:
    if redis_cluster is None:
        pytest.skip("stops nodes: needs the embedded cluster")
    return redis_cluster


def port_of(client: RedisCluster, key: str) -> int:
    """The port of the master serving `key`, as the client sees it now."""
    return int(client.nodes_manager.get_node_from_slot(key_slot(key.encode())).port)


def keys_by_master(cache: Cache, client: RedisCluster, entity: Entity) -> dict[int, int]:
    """For each master's port, one integer key of `entity` whose entry it serves."""
    found: dict[int, int] = {}
    for key in range(1000):
        found.setdefault(port_of(client, cache.key_of(entity, key)), key)
        if len(found) == 3:
            return found
    raise AssertionError("the keys do not spread over three masters")


async def test_reads_writes_and_batches_land_on_every_shard(
    cache: Cache, client: RedisCluster, entity: Entity
) -> None:
    keys = list(keys_by_master(cache, client, entity).values())
    loader = Loader(1, b'{"v":1}')
    for key in keys:
        assert await cache.get_or_load(entity, key, loader, TTL) == b'{"v":1}'
        assert await cache.get_or_load(entity, key, loader, TTL) == b'{"v":1}'
    assert loader.calls == 3  # one miss per key, then hits
    for key in keys:
        assert await client.get(cache.key_of(entity, key)) == b'1|{"v":1}'
    assert await cache.put(entity, keys[0], 2, b'{"v":2}', TTL)
    assert await cache.invalidate(entity, keys[1], 2)

    async def many(indexes: list[int]) -> dict[int, tuple[int | None, bytes]]:
        return {i: (2, b'{"v":2}') for i in indexes}

    # One lookup per shard, at once: the stored, the tombstoned and the missing answered apart.
    bodies = await cache.get_or_load_many(entity, [*keys, 9999], many, TTL)
    assert bodies == [b'{"v":2}', b'{"v":2}', b'{"v":1}', b'{"v":2}']


async def test_a_listing_whose_members_live_on_other_shards(cache: Cache) -> None:
    """A client's list is tagged by the client; its orders, keyed by their own ids, are spread
    over the shards: the view's script cannot build their keys, so they are looked up apart."""
    listing = Listing(CLIENT_VIEW, TTL, ORDER, TTL)
    ids = list(range(100, 120))
    view = Loader(0, b'{"ids":' + str(ids).replace(" ", "").encode() + b',"total":20}')
    loads: list[list[int]] = []

    async def members(wanted: list[int]) -> dict[int, tuple[int | None, bytes]]:
        loads.append(wanted)
        return {id_: (1, b'{"id":%d}' % id_) for id_ in wanted}

    families = ["c:7", "status:x"]  # counters in two slots: the view reads them first
    for _ in range(3):
        page, bodies = await cache.get_or_load_listing(listing, (7, 1), families, view, members)
        assert page["ids"] == ids
        assert bodies == [b'{"id":%d}' % i for i in ids]
    assert view.calls == 1 and len(loads) == 1  # cold once, then hits: view and members
    assert await cache.bump(["status:x"])  # a counter on another shard than the view's
    await cache.get_or_load_listing(listing, (7, 1), families, view, members)
    assert view.calls == 2  # the view is keyed by that counter too


async def scripts_run(client: RedisCluster) -> int:
    """EVALSHA calls on every master so far (`INFO commandstats`)."""
    stats = await client.info("commandstats", target_nodes=RedisCluster.PRIMARIES)
    return sum(
        int(node_stats.get("cmdstat_evalsha", {}).get("calls", 0)) for node_stats in stats.values()
    )


async def test_a_client_s_list_of_orders_carrying_its_slot_is_one_script_on_one_shard(
    cache: Cache, client: RedisCluster
) -> None:
    """Orders whose ids carry their client's slot live on the client's shard: a hit on the
    client's list page is one script there, which reads the page and every order on it.
    A page naming an order of another slot (an id from before ids carried slots) is still
    served whole: the script leaves the members to lookups on their shards."""
    slot = tag_slot("c:7")
    listing = Listing(CLIENT_VIEW, TTL, Entity("order", slot_in_id=True), TTL)
    ids = [n * SLOTS + slot for n in range(1, 21)]
    legacy = [*ids[:19], 20 * SLOTS + (slot + 1) % SLOTS]
    assert {key_slot(cache.key_of(listing.members, i).encode()) for i in ids} == {slot}

    async def members(wanted: list[int]) -> dict[int, tuple[int | None, bytes]]:
        return {id_: (1, b'{"id":%d}' % id_) for id_ in wanted}

    for page_ids, page in ((ids, 1), (legacy, 2)):
        view = Loader(0, b'{"ids":' + str(page_ids).replace(" ", "").encode() + b',"total":20}')
        await cache.get_or_load_listing(listing, (7, page), ["c:7"], view, members)  # cold
        before = await scripts_run(client)
        _, bodies = await cache.get_or_load_listing(listing, (7, page), ["c:7"], view, members)
        assert bodies == [b'{"id":%d}' % i for i in page_ids]
        assert view.calls == 1
        scripts = await scripts_run(client) - before
        assert scripts == (1 if page_ids is ids else 3)  # the view, then one per slot
        before = await scripts_run(client)
        built = await cache.get_or_load_page(listing, (7, page), ["c:7"], view, members)
        assert built == b'{"items":[' + b",".join(bodies) + b'],"total":20}'
        assert await scripts_run(client) - before == scripts  # the same scripts


async def test_a_frozen_master_sends_only_its_own_slots_to_the_database(
    redis_cluster: EmbeddedRedisCluster | None, cache: Cache, client: RedisCluster, entity: Entity
) -> None:
    nodes = embedded(redis_cluster)
    by_master = keys_by_master(cache, client, entity)
    victim = nodes.master_ports()[0]
    frozen_key = by_master[victim]
    others = [key for port, key in by_master.items() if port != victim]
    loader = Loader(1, b'{"v":1}')
    for key in by_master.values():
        await cache.get_or_load(entity, key, loader, TTL)
    nodes.freeze(victim)
    try:
        for _ in range(3):  # the shard's breaker opens after three timeouts
            await cache.get_or_load(entity, frozen_key, loader, TTL)
        calls = loader.calls
        rejected = sample(
            "orderflow_cache_errors_total", entity=entity.name, op="lookup", kind="unavailable"
        )
        assert await cache.get_or_load(entity, frozen_key, loader, TTL) == b'{"v":1}'
        assert loader.calls == calls + 1
        # rejected by the shard's breaker: no Redis call
        assert (
            sample(
                "orderflow_cache_errors_total", entity=entity.name, op="lookup", kind="unavailable"
            )
            == rejected + 1
        )
        hits = sample("orderflow_cache_requests_total", entity=entity.name, result="hit")
        for key in others:  # the other shards serve hits all along
            assert await cache.get_or_load(entity, key, loader, TTL) == b'{"v":1}'
        assert sample("orderflow_cache_requests_total", entity=entity.name, result="hit") == (
            hits + len(others)
        )
        assert cache.breaker_state == "open"
    finally:
        nodes.thaw(victim)
        nodes.wait_healthy()


async def test_after_a_failover_nothing_cached_before_it_in_that_shard_is_served(
    redis_cluster: EmbeddedRedisCluster | None, cache: Cache, client: RedisCluster, entity: Entity
) -> None:
    """A promoted replica may lack writes its master acknowledged (the cache's tombstones among
    them): the first call that finds the shard served by another node is not trusted, and the
    shard's epochs move forward before it is used again."""
    nodes = embedded(redis_cluster)
    by_master = keys_by_master(cache, client, entity)
    victim = nodes.master_ports()[0]
    replica = nodes.replica_of(victim)
    key = by_master[victim]
    old = Loader(1, b'{"v":1}')
    await cache.get_or_load(entity, key, old, TTL)
    await asyncio.sleep(0.1)  # replicated: the promoted replica holds v1
    before = cache.key_of(entity, key)
    killed = time.monotonic()
    nodes.kill(victim)
    try:
        new = Loader(2, b'{"v":2}')  # the database moved on (its tombstone lost in the failover)
        while True:
            # Until the replica is promoted the shard fails, and reads go to the database; the
            # probe then bumps the shard's epochs. Every answer is the database's or a new fill.
            assert await cache.get_or_load(entity, key, new, TTL) == b'{"v":2}'
            if cache.breaker_state == "closed" and cache.key_of(entity, key) != before:
                break
            assert time.monotonic() - killed < 20, "the shard did not come back"
            await asyncio.sleep(0.05)
        print(f"\nshard of {victim} served from Redis again {time.monotonic() - killed:.2f}s after")
        assert await client.get(before) == b'1|{"v":1}'  # still there, never served again
        assert await cache.get_or_load(entity, key, new, TTL) == b'{"v":2}'
    finally:
        await asyncio.to_thread(nodes.rejoin, victim, replica)


async def test_an_epoch_below_what_a_process_believed_moves_past_it(
    cache: Cache, client: RedisCluster, entity: Entity
) -> None:
    """What a promoted replica that missed an epoch bump looks like: the epoch went back."""
    loader = Loader(1, b'{"v":1}')
    await cache.get_or_load(entity, 5, loader, TTL)
    key = cache.key_of(entity, 5)
    slot = key_slot(key.encode())
    epoch_key = cache._epochs.key(slot)
    believed = int(await client.get(epoch_key))
    await client.set(epoch_key, believed - 1)
    assert await cache.get_or_load(entity, 5, loader, TTL) == b'{"v":1}'
    assert int(await client.get(epoch_key)) == believed + 1  # past the belief, never back
    assert cache.key_of(entity, 5) != key


async def test_a_slot_moved_to_another_master_and_failed_over_there_serves_nothing_old(
    redis_cluster: EmbeddedRedisCluster | None, cache: Cache, client: RedisCluster, entity: Entity
) -> None:
    """A resharding moves a slot, keys and all, to another master; later that master fails and
    its replica takes over. The process must check the slot then, though the shard it first saw
    the slot in never failed over: the promoted replica may lack the last writes."""
    nodes = embedded(redis_cluster)
    by_master = keys_by_master(cache, client, entity)
    home, away = nodes.master_ports()[:2]
    key = by_master[home]
    slot = key_slot(cache.key_of(entity, key).encode())
    old = Loader(1, b'{"v":1}')
    await cache.get_or_load(entity, key, old, TTL)
    await asyncio.to_thread(move_slot, nodes, slot, away)
    replica = nodes.replica_of(away)
    try:
        # The move is seen (the slot's node changed), its server checked, and the entry filled
        # again in the slot's new epoch; then every key is on the replica too.
        while (
            cache.breaker_state != "closed"
            or await cache.get_or_load(entity, key, old, TTL) != b'{"v":1}'
        ):
            await asyncio.sleep(0.05)
        for _ in range(3):
            await cache.get_or_load(entity, key, old, TTL)
        await asyncio.sleep(0.2)
        before = cache.key_of(entity, key)
        nodes.kill(away)
        await asyncio.to_thread(wait_serving, nodes, replica)
        new = Loader(2, b'{"v":2}')  # the database moved on (its tombstone lost in the failover)
        deadline = time.monotonic() + 20
        while cache.breaker_state != "closed" or cache.key_of(entity, key) == before:
            assert await cache.get_or_load(entity, key, new, TTL) == b'{"v":2}'
            assert time.monotonic() < deadline, "the slot was not served from Redis again"
            await asyncio.sleep(0.05)
        assert await cache.get_or_load(entity, key, new, TTL) == b'{"v":2}'
    finally:
        await asyncio.to_thread(nodes.rejoin, away, replica)
        await asyncio.to_thread(move_slot, nodes, slot, home)  # the cluster as it was


async def test_a_process_that_could_not_learn_the_topology_reads_nothing_until_it_has(
    redis_cluster: EmbeddedRedisCluster | None, cache: Cache, entity: Entity
) -> None:
    """A process started while its only known node did not answer (the platform's APIs start
    during failovers): it must not trust the cluster blind (before, every slot was one unknown
    shard, never failed over, whose probe raised an IndexError on every call after a trip),
    nor stay unusable: the cluster is learnt in the background, and each shard then probed
    (its server checked, its recovery run) before it is read."""
    nodes = embedded(redis_cluster)
    key = 1
    await cache.get_or_load(entity, key, Loader(1, b'{"v":1}'), TTL)  # cached by another process
    replica = nodes.replica_of(nodes.master_ports()[0])
    assert replica is not None
    late = create_cluster(
        f"redis://127.0.0.1:{replica}", socket_timeout=TIMEOUT_S, socket_connect_timeout=1
    )
    process = Cache(late, cache.namespace, timeout_s=TIMEOUT_S)
    replayed: list[float] = []

    async def replay() -> None:  # the journal's replay: this process's refused write
        assert await process.invalidate(entity, key, 2)
        replayed.append(time.monotonic())

    process.recovery.add(replay)
    new = Loader(2, b'{"v":2}')
    nodes.freeze(replica)
    try:
        await process.start()
        assert not await process.invalidate(entity, key, 2)  # refused: not known where it goes
        assert await process.get_or_load(entity, key, new, TTL) == b'{"v":2}'
        assert (await process.health()).startswith("degraded")
    finally:
        nodes.thaw(replica)
    try:
        process.trip(probe_now=True)  # as a mode change or a failed call does
        deadline = time.monotonic() + 20
        while process.breaker_state != "closed" or not replayed:
            assert await process.get_or_load(entity, key, new, TTL) == b'{"v":2}'
            assert time.monotonic() < deadline, "the topology was not learnt, or not probed"
            await process.health()  # lets each shard's probe through, as /health polling does
            await asyncio.sleep(0.05)
        assert await process.get_or_load(entity, key, new, TTL) == b'{"v":2}'
        assert await process.health() == "ok"
    finally:
        await late.aclose()


async def test_two_probes_whose_replays_write_to_each_others_shard_do_not_wait_for_each_other(
    cache: Cache, client: RedisCluster, entity: Entity
) -> None:
    """A journal row touches several shards (an entry in one, list generations in others).
    Each probe replays the journal; a write to a shard whose own probe is in flight waits for
    that probe. Two probes replaying into each other's shards waited for each other until both
    timed out (15 s), and failed, again on every retry: a failover left an API unhealthy for
    over a minute. A probe's writes to another shard now never wait: refused, the row stays
    for that shard's own replay."""
    one, two = list(keys_by_master(cache, client, entity).values())[:2]
    written: list[bool] = []

    def replaying(key: int) -> Callable[[], Awaitable[None]]:
        async def replay() -> None:
            written.append(await cache.invalidate(entity, key, 2))

        return replay

    cache.recovery.add(replaying(two))
    cache.recovery.add(replaying(one))
    cache.trip(probe_now=True)
    new = Loader(2, b'{"v":2}')
    bodies = await asyncio.wait_for(
        asyncio.gather(*(cache.get_or_load(entity, k, new, TTL) for k in (one, two))), 10
    )
    assert bodies == [b'{"v":2}', b'{"v":2}']
    assert await cache.health() == "ok"  # the third shard's probe too
    assert cache.breaker_state == "closed"
    assert len(written) >= 2  # each probe replayed (its write to the other shard may be refused)


def move_slot(nodes: EmbeddedRedisCluster, slot: int, to_port: int) -> None:
    """Reshard one slot, keys included, to the master on `to_port` (what `redis-cli --cluster
    reshard` does for each slot), and wait until every node agrees."""
    rows = nodes.cluster_nodes()
    source = next(r for r in rows if r.is_master and any(a <= slot <= b for a, b in r.slots))
    target = next(r for r in rows if r.port == to_port)
    with (
        SyncRedis(host="127.0.0.1", port=source.port) as src,
        SyncRedis(host="127.0.0.1", port=to_port) as dst,
    ):
        dst.execute_command("CLUSTER", "SETSLOT", slot, "IMPORTING", source.node_id)
        src.execute_command("CLUSTER", "SETSLOT", slot, "MIGRATING", target.node_id)
        while keys := src.execute_command("CLUSTER", "GETKEYSINSLOT", slot, 100):
            src.execute_command("MIGRATE", "127.0.0.1", to_port, "", 0, 5000, "KEYS", *keys)
    for row in rows:
        if row.is_master and not row.failed:
            with SyncRedis(host="127.0.0.1", port=row.port) as node:
                node.execute_command("CLUSTER", "SETSLOT", slot, "NODE", target.node_id)
    deadline = time.monotonic() + 20
    while not all(owner_of(nodes, port, slot) == to_port for port in nodes.live_ports()):
        assert time.monotonic() < deadline, f"slot {slot} not moved to {to_port} everywhere"
        time.sleep(0.05)


def owner_of(nodes: EmbeddedRedisCluster, port: int, slot: int) -> int | None:
    rows = nodes.cluster_nodes(port)
    return next((r.port for r in rows if any(a <= slot <= b for a, b in r.slots)), None)


def wait_serving(nodes: EmbeddedRedisCluster, port: int | None) -> None:
    deadline = time.monotonic() + 20
    while port not in nodes.master_ports():
        assert time.monotonic() < deadline, f"{port} did not take over"
        time.sleep(0.05)


async def test_a_probe_on_an_unchanged_server_checks_one_run_id_not_every_slot(
    redis_cluster: EmbeddedRedisCluster | None, cache: Cache, client: RedisCluster, entity: Entity
) -> None:
    """A trip with no failover (a timeout, a partition healed): each shard's probe asks its
    master's run id once and finds the slots checked against it already. Repeating the checks
    of its thousands of slots in every probe kept loaded processes from ever recovering."""
    nodes = embedded(redis_cluster)
    by_master = keys_by_master(cache, client, entity)

    def scripts_run() -> int:
        total = 0
        for port in nodes.master_ports():
            with SyncRedis(port=port) as node:
                stats = node.info("commandstats")
            total += sum(
                stats.get(c, {}).get("calls", 0) for c in ("cmdstat_evalsha", "cmdstat_eval")
            )
        return total

    loader = Loader(1, b'{"v":1}')
    for key in by_master.values():
        await cache.get_or_load(entity, key, loader, TTL)
    before = scripts_run()
    cache.trip(probe_now=True)
    for key in by_master.values():  # one read per shard: each carries its shard's probe
        assert await cache.get_or_load(entity, key, loader, TTL) == b'{"v":1}'
    assert cache.breaker_state == "closed"
    assert scripts_run() - before < 100  # a full check is one script per slot: 16,384
