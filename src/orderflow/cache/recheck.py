"""The writer's second look: entries tombstoned at their committed version unless Redis holds it.

A write-through put is compare-and-set on versions, and that needs the newer version to be in
Redis. Should writer A's put of version 5 reach Redis after writer B put version 6 and Redis
evicted it in between, version 5 would land. So each writer looks again, a moment after its
puts (`ServiceCache` sends a put only within `PUT_WITHIN_S` of its commit, the journal's flusher
looks again no sooner than twice that): an entry found holding an older version gets a tombstone
at the committed version (`lua.RECHECK`; a missing one holds nothing stale, and leases are left
alone). One pipelined round trip per shard for a whole batch.
"""

from __future__ import annotations

from collections.abc import Sequence

from redis.typing import EncodableT

from orderflow.cache import entry
from orderflow.cache.errors import CacheError
from orderflow.cache.keys import Entity, Key
from orderflow.cache.metrics import for_entity
from orderflow.cache.scripts import Call
from orderflow.cache.store import Store

Written = tuple[Entity, Key, int]  # an entry and the version its writer committed


async def recheck(store: Store, written: Sequence[Written]) -> list[bool]:
    """Whether each entry is now safe: Redis held its version, a newer one or nothing, a
    tombstone was written, or its epoch moved (a new epoch refuses older puts pinned to the old
    one). False where its shard failed."""
    if not written:
        return []
    m = for_entity("recheck")
    calls: list[tuple[int, Call]] = []
    for entity, key, version in written:
        pin = store.pin(entity, key)
        keys = [store.epochs.key(pin.slot), pin.key]
        args: list[EncodableT] = [
            pin.epoch,
            version,
            entry.tombstone(version),
            store.tombstone_ttl_ms,
        ]
        calls.append((pin.slot, (store.scripts.recheck, keys, args)))
    replies = await store.shards.run(m, "recheck", calls)
    for (slot, _), reply in zip(calls, replies, strict=True):
        if isinstance(reply, list):  # {epoch}: adopt it; nothing older can land there
            store.epochs.adopt(slot, int(reply[0]))
        elif reply == 1:
            m.invalidations.inc()
    return [not isinstance(reply, CacheError) for reply in replies]
