"""Where keys live: one Redis node, or the slots of a Redis Cluster. The two differ only here.

On a cluster a script may touch only keys of one slot, and it must declare them. So:
- every key carries a hash tag (`KeySpace`): its slot is known before its epoch is;
- each slot has its own epoch key, `{ns}:epoch:{<tag>}`, where the tag is a short string that
  hashes to that slot (`slot_tags()`, found once by counting): the epoch check of a script is
  made against the epoch of the slot it writes in;
- a script never builds a key it was not given unless the key shares its slot (a view's own
  entry and lease do; a listing's members, keyed by their own ids, do not: `builds_members`);
- each shard (a master, its replicas and the slots they serve) has its own breaker, so a dead
  master sends only its slots to the database;
- a slot now served by another node than the one accepted for it (a replica promoted after its
  master failed, or the slot moved by a resharding) puts its shard in an outage: the node may
  lack the last writes acknowledged for it, so the shard's servers are checked (and the slot's
  epoch moves if its server changed) before it is used again. The node is tracked per slot, so
  a slot moved to another master and then failed over there is caught as well.

On one node there is one slot, one epoch key (`{ns}:epoch`) and one shard, and a script may
build any key. A shard is named by the lowest slot it served when the process first saw the
cluster; slots moved between shards later (resharding) keep their first shard's breaker and
are checked with its slots. A cluster whose topology could not be learnt at start (a process
started while a master was failing over) is not `ready`: nothing is read from it until it is
learnt, and then every shard starts in an outage (`Guard`), so each is checked before use.
"""

from __future__ import annotations

import functools
import time
from pathlib import Path
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.crc import REDIS_CLUSTER_HASH_SLOTS, key_slot
from redis.exceptions import SlotNotCoveredError

ONE_NODE = "redis"  # the name of a single node's only shard
UNKNOWN = "cluster"  # the one shard of a cluster whose topology is not learnt yet
REFRESH_EVERY_S = 2.0


@functools.cache
def slot_tags() -> tuple[str, ...]:
    """For every slot, the shortest hex number whose hash is that slot: found by counting up
    (a second of CPU), so kept in `slot_tags.txt`; `tests/cache/test_layout.py` checks it."""
    return tuple((Path(__file__).parent / "slot_tags.txt").read_text().split())


class Layout:
    """One Redis node: a single slot and shard (`ClusterLayout` overrides what differs)."""

    cluster = False
    builds_members = True  # a listing's script may look up its members' keys itself
    slot_tags: tuple[str, ...] = ()  # a cluster's: a tag of each slot (`KeySpace`)

    @property
    def ready(self) -> bool:
        """Whether the topology is known (always, on one node)."""
        return True

    def slot(self, key: str) -> int:
        return 0

    def slots(self) -> range:
        return range(1)

    def epoch_key(self, namespace: str, slot: int) -> str:
        return f"{namespace}:epoch"

    def shard(self, slot: int) -> str:
        return ONE_NODE

    def shard_slots(self, shard: str) -> list[int]:
        return [0]

    def shards(self) -> list[str]:
        return [ONE_NODE]

    def failed_over(self, shard: str, slot: int) -> bool:
        """True if another node serves `slot` (or `shard`'s first slot) now than the one
        last accepted for it."""
        return False

    def masters(self, shard: str) -> list[str]:
        """The nodes serving `shard`'s slots now, as the client's slot table says ("" for a
        slot while unknown)."""
        return []

    def settle(self, shard: str, masters: list[str]) -> None:
        """Accept `masters` (`masters(shard)`, seen before the shard was checked) for its slots."""

    async def start(self) -> None:
        """Learn the topology (a cluster's slots and their nodes)."""

    async def ping(self, redis: Any, slot: int) -> object:
        """PING the node serving `slot`."""
        return await redis.ping()

    async def run_id(self, redis: Any, slot: int) -> str:
        """The run id of the server serving `slot` (a new one at every start of a server)."""
        return str((await redis.info("server"))["run_id"])

    async def refresh(self) -> None:
        """Learn again which node serves which slot (before a shard's probe)."""


class ClusterLayout(Layout):
    """A Redis Cluster through redis-py's `RedisCluster`, which routes each call by its keys."""

    cluster = True
    builds_members = False

    def __init__(self, redis: RedisCluster) -> None:
        self._redis = redis
        self.slot_tags = slot_tags()
        self._shard_of: list[str] = []  # slot -> shard, from the first topology seen
        self._slots_of: dict[str, list[int]] = {}
        self._settled: list[str] = []  # slot -> the node accepted as its master
        self._refreshed = 0.0  # when `refresh` last reloaded the slot table

    @property
    def ready(self) -> bool:
        return bool(self._shard_of)

    def slot(self, key: str) -> int:
        return key_slot(key.encode())

    def slots(self) -> range:
        return range(REDIS_CLUSTER_HASH_SLOTS)

    def epoch_key(self, namespace: str, slot: int) -> str:
        return f"{namespace}:epoch:{{{slot_tags()[slot]}}}"

    def shard(self, slot: int) -> str:
        return self._shard_of[slot] if self._shard_of else UNKNOWN

    def shard_slots(self, shard: str) -> list[int]:
        return self._slots_of.get(shard) or list(self.slots())

    def shards(self) -> list[str]:
        return list(self._slots_of) or [UNKNOWN]

    def failed_over(self, shard: str, slot: int) -> bool:
        if not self._settled:
            return False
        first = self._slots_of[shard][0] if shard in self._slots_of else slot
        for s in (slot, first):
            master = self._master(s)  # "" while redis-py reloads its slot table: no news
            if master != "" and master != self._settled[s]:
                return True
        return False

    def masters(self, shard: str) -> list[str]:
        return [self._master(slot) for slot in self.shard_slots(shard)]

    def settle(self, shard: str, masters: list[str]) -> None:
        if not self._settled:
            return
        # The masters seen *before* the check: had a slot moved again meanwhile, its next call
        # finds another node than this one, and is not trusted.
        for slot, master in zip(self.shard_slots(shard), masters, strict=False):
            if master:
                self._settled[slot] = master

    async def start(self) -> None:
        if self._shard_of:
            return
        await self._redis.initialize()
        owners = [self._master(slot) for slot in self.slots()]
        if "" in owners:  # a table being reloaded, or a slot no node serves: not yet
            await self._redis.nodes_manager.initialize()
            owners = [self._master(slot) for slot in self.slots()]
            if "" in owners:
                raise SlotNotCoveredError(f"slot {owners.index('')} is served by no node")
        first: dict[str, str] = {}
        for slot, node in enumerate(owners):
            first.setdefault(node, f"slots-{slot}")
        shard_of = [first[node] for node in owners]
        for slot, shard in enumerate(shard_of):
            self._slots_of.setdefault(shard, []).append(slot)
        self._settled = owners
        self._shard_of = shard_of  # last: `ready` from here on

    async def refresh(self) -> None:
        # redis-py reloads its slot table on the call after a failed single command, but not
        # after a failed pipeline, and a shard whose breaker is open sees only its probes.
        # At most once per REFRESH_EVERY_S: a reload drops connections other calls are using
        # (they fail, their shards' breakers count it), so probes must not reload in a storm.
        now = time.monotonic()
        if now - self._refreshed >= REFRESH_EVERY_S:
            self._refreshed = now
            await self._redis.nodes_manager.initialize()

    async def ping(self, redis: Any, slot: int) -> object:
        # Not `get_node_from_slot`, whose KeyError (a slot table being reloaded) would escape.
        nodes: Any = self._redis.nodes_manager.slots_cache.get(slot)
        if not nodes:
            raise SlotNotCoveredError(f"slot {slot} is in no slot table now")
        return await self._redis.ping(target_nodes=nodes[0])

    async def run_id(self, redis: Any, slot: int) -> str:
        nodes: Any = self._redis.nodes_manager.slots_cache.get(slot)
        if not nodes:
            raise SlotNotCoveredError(f"slot {slot} is in no slot table now")
        return str((await self._redis.info("server", target_nodes=nodes[0]))["run_id"])

    def _master(self, slot: int) -> str:
        nodes: Any = self._redis.nodes_manager.slots_cache.get(slot)
        return str(nodes[0].name) if nodes else ""


def layout_of(redis: Redis | RedisCluster) -> Layout:
    return ClusterLayout(redis) if isinstance(redis, RedisCluster) else Layout()
