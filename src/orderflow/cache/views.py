"""Reads of views and listings: generations, entry and members found in one round trip.

One node (a cluster: one round trip more where a script may not build another slot's keys,
so members are looked up on their own shards, and a view whose families' counters are in
several slots reads them first):

a hit (view and every member stored)          1 round trip   LOOKUP_VIEW
a view stored, some members not               2              + the members' fills
a view not stored (we get its lease)          2              + its fill
a listing not stored, nor its members         3              + the view's fill and the
                                                               members' lookup, pipelined
                                                             + the members' fills
"""

from __future__ import annotations

from collections.abc import Sequence

import orjson

from orderflow.cache import entry
from orderflow.cache.admission import Doorkeeper
from orderflow.cache.aside import Loader, Read, Reader, bypass, bypass_many, quietly
from orderflow.cache.errors import CacheError
from orderflow.cache.found import Found, Miss, ViewHit, ViewMiss
from orderflow.cache.keys import Entity, Key
from orderflow.cache.listing import Listed, Listing, MembersLoader, by_index
from orderflow.cache.metrics import EntityMetrics, for_entity
from orderflow.cache.store import Store
from orderflow.cache.ttl import TTLPolicy
from orderflow.cache.view_store import ViewStore


class Views:
    """View and listing reads of one `Cache`: through Redis, or around it (the cache off, or
    a first sight the doorkeeper does not admit)."""

    def __init__(self, store: Store, reader: Reader, doorkeeper: Doorkeeper) -> None:
        self._store = store
        self._views = ViewStore(store)
        self._reader = reader
        self._doorkeeper = doorkeeper

    async def read(
        self,
        entity: Entity,
        key: Key,
        families: Sequence[str],
        loader: Loader,
        ttl: TTLPolicy,
        enabled: bool,
    ) -> bytes:
        """A view, keyed by its families' generations (see `Cache.get_or_load_view`)."""
        m = for_entity(entity.name)
        if not enabled:
            return await bypass(m, loader)
        if not self._doorkeeper.admit((entity.key_prefix, key, *families)):
            return await bypass(m, loader, m.first_sight)
        try:
            token, found = await self._reader.looked_up(
                lambda token: self._views.lookup_view(m, entity, key, families, token),
                _leased,
            )
        except CacheError:
            return await bypass(m, loader)
        if isinstance(found, ViewHit):
            m.hit.inc()
            return entry.body(found.raw)
        if found is Miss.MOVED:  # the generations read belong to an old epoch: do not fill
            return await bypass(m, loader, m.miss)
        return await self._reader.read_missed(Read(m, found.key, token, loader, ttl), found.lease)

    async def listing(
        self,
        listing: Listing,
        key: Key,
        families: Sequence[str],
        loader: Loader,
        members: MembersLoader,
        enabled: bool,
    ) -> Listed:
        """A listing through Redis, or around it: the cache off, or a first sight."""
        if not enabled or not self._doorkeeper.admit((listing.view.key_prefix, key)):
            return await self._bypass_listing(listing, loader, members, enabled)
        return await self._read_listing(listing, key, families, loader, members)

    async def _bypass_listing(
        self, listing: Listing, loader: Loader, members: MembersLoader, first_sight: bool
    ) -> Listed:
        """A listing read without Redis: a first sight (`admission`), or the cache off."""
        m, mm = for_entity(listing.view.name), for_entity(listing.members.name)
        view = await bypass(m, loader, m.first_sight if first_sight else m.bypass)
        ids = orjson.loads(view)["ids"]
        many = by_index(ids, members)
        return Listed(view, await bypass_many(mm, many, len(ids), first_sight=first_sight))

    async def _read_listing(
        self,
        listing: Listing,
        key: Key,
        families: Sequence[str],
        loader: Loader,
        members: MembersLoader,
    ) -> Listed:
        """A list view and its members (see `Cache.get_or_load_listing`)."""
        m, mm = for_entity(listing.view.name), for_entity(listing.members.name)
        members_token = self._reader.token()  # nobody waits on it: see `Reader.read_many`
        try:
            token, found = await self._reader.looked_up(
                lambda token: self._views.lookup_view(
                    m, listing.view, key, families, token, listing.members, members_token
                ),
                _leased,
            )
        except CacheError:
            view = await bypass(m, loader)
            ids = orjson.loads(view)["ids"]
            return Listed(view, await bypass_many(mm, by_index(ids, members), len(ids)))
        if isinstance(found, ViewHit):
            m.hit.inc()
            return await self._hit(found, mm, listing, members, members_token)
        if isinstance(found, ViewMiss) and found.lease is Miss.LEASED:
            read = Read(m, found.key, token, loader, listing.ttl)
            return await self._cold(read, mm, listing, members)
        if found is Miss.MOVED:
            view = await bypass(m, loader, m.miss)
        else:
            view = await self._reader.read_missed(
                Read(m, found.key, token, loader, listing.ttl), found.lease
            )
        ids = orjson.loads(view)["ids"]
        return Listed(view, await self._read_members(mm, listing, ids, members))

    async def _hit(
        self,
        found: ViewHit,
        mm: EntityMetrics,
        listing: Listing,
        members: MembersLoader,
        members_token: str,
    ) -> Listed:
        """A listing whose view was stored: its members as `found` has them, or looked up."""
        view = entry.body(found.raw)
        ids = orjson.loads(view)["ids"]
        if found.members is None:  # a cluster: the members are looked up on their shards
            return Listed(view, await self._read_members(mm, listing, ids, members))
        stored = [raw for raw in found.members if isinstance(raw, bytes)]
        if len(stored) == len(found.members):  # the hot path: every member was there
            mm.hit.inc(len(stored))
            return Listed(view, [entry.body(raw) for raw in stored])
        found_members, epoch = found.members, found.epoch
        return Listed(
            view,
            await self._read_members(
                mm, listing, ids, members, members_token, found_members, epoch
            ),
        )

    async def _cold(
        self, read: Read, mm: EntityMetrics, listing: Listing, members: MembersLoader
    ) -> Listed:
        """A listing whose view we hold the lease on: load it, then fill it and look up its
        members in one pipelined round trip, then fill the members in one more."""
        version, view = await self._reader.load_leased(read)
        ids = orjson.loads(view)["ids"]
        if version is None:  # not to be cached: give the lease back, read the members
            await quietly(self._store.release(read.m, read.pin, read.token))
            return Listed(view, await self._read_members(mm, listing, ids, members))
        fill = (read.pin, version, view, read.ttl.ttl_ms())
        if not ids:
            await quietly(self._store.fill_many(read.m, read.token, [fill]))
            return Listed(view, [])
        pins = await self._store.pins(mm, listing.members, ids)
        try:
            found = await self._views.fill_then_lookup_many(read.m, read.token, fill, pins)
        except CacheError:
            return Listed(view, await bypass_many(mm, by_index(ids, members), len(ids)))
        return Listed(
            view,
            await self._reader.complete_many(
                mm, read.token, pins, found, by_index(ids, members), listing.members_ttl
            ),
        )

    async def _read_members(
        self,
        mm: EntityMetrics,
        listing: Listing,
        ids: list[int],
        members: MembersLoader,
        token: str = "",
        found: Sequence[Found] = (),
        epoch: int | None = None,
    ) -> list[bytes]:
        """The members at `ids`: looked up now, or completed from `found` (looked up with
        `token`, in `epoch`)."""
        pins = await self._store.pins(mm, listing.members, ids, epoch)
        many, ttl = by_index(ids, members), listing.members_ttl
        if not found:
            return await self._reader.read_many(mm, pins, many, ttl) if ids else []
        return await self._reader.complete_many(mm, token, pins, found, many, ttl)


def _leased(found: ViewHit | ViewMiss | Miss) -> bool:
    return isinstance(found, ViewMiss) and found.lease is Miss.LEASED
