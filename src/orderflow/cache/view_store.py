"""The Redis side of views: their lookups, keyed by generations, and the generations' bumps."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from redis.typing import EncodableT

from orderflow.cache.errors import CacheError
from orderflow.cache.found import (
    Busy,
    Fill,
    Found,
    Miss,
    Pinned,
    ViewHit,
    ViewMiss,
    by_slot,
    entry_found,
    text,
)
from orderflow.cache.generations import GENERATION_TTL_MS
from orderflow.cache.keys import Entity, Key
from orderflow.cache.metrics import EntityMetrics
from orderflow.cache.shards import each
from orderflow.cache.store import Store


class ViewStore:
    """View lookups and generation bumps over one `Store`. Raises `CacheError`."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._keys, self._epochs, self._layout = store.keys, store.epochs, store.layout

    async def lookup_view(
        self,
        m: EntityMetrics,
        entity: Entity,
        key: Key,
        families: Sequence[str],
        token: str,
        members: Entity | None = None,
        members_token: str = "",
    ) -> ViewHit | ViewMiss | Literal[Miss.MOVED]:
        """A view's entry under its families' current generations, in one round trip, with
        its members' entries if `members` is given and a script may build their keys (one
        node; on a cluster, members whose ids all carry the view's slot; else
        `ViewHit.members` is None). A missing view entry is leased to
        `token`, missing members to `members_token`, if free. On a cluster, a view whose
        families' counters are in other slots than its first family's reads them first: one
        more round trip."""
        slot = self._layout.slot(self._keys.generation(0, families[0]))
        gen_slots = [self._layout.slot(self._keys.generation(0, f)) for f in families]
        if self._layout.cluster:
            await self._store.learn(m, set(gen_slots))
        if any(s != slot for s in gen_slots):
            return await self._lookup_view_apart(m, entity, key, families, gen_slots, token)
        epoch = self._epochs.value(slot)
        head, tail = self._keys.view_entry(entity, epoch, key, families)
        # On a cluster, members whose ids carry a slot may be in the view's: the script checks.
        slotted = members is not None and members.slot_in_id and self._layout.cluster
        builds = members is not None and (self._layout.builds_members or slotted)
        member_head = self._keys.member_head(members, epoch) if members and builds else ""
        member_tag = self._keys.slot_tags[slot] if slotted else ""
        counters = [self._keys.generation(epoch, f) for f in families]
        script_keys = [self._epochs.key(slot), *counters]
        args: list[EncodableT] = [
            *(epoch, token, self._store.lease_ms, head, tail, member_head),
            *(GENERATION_TTL_MS, members_token, member_tag, slot),
        ]
        reply = await self._store.guard.run(
            m, "lookup_view", lambda: self._store.scripts.lookup_view(script_keys, args), slot
        )
        return self._found(reply, slot, epoch, builds)

    def _found(
        self, reply: Any, slot: int, epoch: int, builds: bool
    ) -> ViewHit | ViewMiss | Literal[Miss.MOVED]:
        """What LOOKUP_VIEW's `reply` says (its comment in `lua.py` lists the shapes)."""
        if isinstance(reply[0], bytes):
            if not builds or reply[1:] == [-1]:  # members elsewhere: looked up on their shards
                return ViewHit(reply[0], None, epoch)
            return ViewHit(reply[0], [entry_found(r) for r in reply[1:]], epoch)
        if len(reply) == 1:
            self._epochs.adopt(slot, int(reply[0]))
            return Miss.MOVED
        pin = Pinned(text(reply[1]), slot, epoch)
        return ViewMiss(pin, Miss.LEASED if reply[2] == 1 else Busy(text(reply[2])))

    async def _lookup_view_apart(
        self,
        m: EntityMetrics,
        entity: Entity,
        key: Key,
        families: Sequence[str],
        gen_slots: list[int],
        token: str,
    ) -> ViewHit | ViewMiss | Literal[Miss.MOVED]:
        """`lookup_view` of a view whose counters are in several slots: read the counters
        (each under its slot's epoch), then look the view up by its key. A counter of another
        slot than the view's carries its slot's epoch into the key, since an epoch bump there
        restarts that counter from the value "0" again."""
        epochs = [self._epochs.value(s) for s in gen_slots]
        pins = [
            Pinned(self._keys.generation(e, f), s, e)
            for f, s, e in zip(families, gen_slots, epochs, strict=True)
        ]
        groups = by_slot(pins)
        script = self._store.scripts.generations
        calls = [
            (slot, (script, self._store.epoch_keys(g), [g[0][1].epoch, GENERATION_TTL_MS]))
            for slot, g in groups
        ]
        replies = await self._store.shards.run(m, "generations", calls)
        gens: list[str] = [""] * len(pins)
        for (slot, group), reply in zip(groups, replies, strict=True):
            if isinstance(reply, CacheError):
                raise reply
            if len(reply) == 1:
                self._epochs.adopt(slot, int(reply[0]))
                return Miss.MOVED
            for (i, pin), gen in zip(group, reply[1:], strict=True):
                gens[i] = text(gen) if pin.slot == gen_slots[0] else f"{text(gen)}x{pin.epoch}"
        slot = gen_slots[0]
        epoch = self._epochs.value(slot)
        view = Pinned(self._keys.entry(entity, epoch, key, gens, families), slot, epoch)
        found = await self._store.lookup(m, view, token)
        if isinstance(found, bytes):
            return ViewHit(found, None)
        if found is Miss.MOVED:
            return Miss.MOVED
        return ViewMiss(view, found)

    async def bump(self, m: EntityMetrics, families: Sequence[str], ttl_ms: int) -> None:
        """Increment every family's counter under its slot's current epoch (following a move):
        one script per slot, the shards at once. Raises the first shard's error, if any."""
        slots: dict[int, list[str]] = {}
        for family in families:
            slots.setdefault(self._layout.slot(self._keys.generation(0, family)), []).append(family)

        async def bump_slot(slot: int, names: list[str]) -> None:
            async def attempt(epoch: int) -> Any:
                keys = [
                    self._epochs.key(slot),
                    *(self._keys.generation(epoch, f) for f in names),
                ]
                return await self._store.scripts.bump(keys=keys, args=[epoch, ttl_ms])

            await self._store.guard.run(m, "bump", lambda: self._epochs.write(slot, attempt), slot)

        await each([bump_slot(slot, names) for slot, names in slots.items()])

    async def fill_then_lookup_many(
        self, m: EntityMetrics, token: str, fill: Fill, pins: Sequence[Pinned]
    ) -> list[Found]:
        """A cold listing's middle round trip: the view's fill and its members' lookup."""
        pin, version, payload, ttl_ms = fill
        groups = by_slot(pins)
        calls = [(pin.slot, self._store.fill_call(pin, token, version, payload, ttl_ms))]
        calls += [(slot, self._store.lookup_many_call(group, token)) for slot, group in groups]
        filled, *found = await self._store.shards.run(m, "fill_many", calls)
        if not isinstance(filled, CacheError):
            self._store.count_fill(m, pin.slot, filled)
        return self._store.found_many(pins, groups, found)
