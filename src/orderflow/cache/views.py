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
from typing import Any

import orjson

from orderflow.cache import entry
from orderflow.cache.aside import Loader, Read, Reader, bypass, bypass_many, quietly
from orderflow.cache.errors import CacheError
from orderflow.cache.found import Found, Miss, ViewHit, ViewMiss
from orderflow.cache.keys import Entity, Key
from orderflow.cache.listing import Listing, MembersLoader, by_index
from orderflow.cache.metrics import EntityMetrics, for_entity
from orderflow.cache.store import Store
from orderflow.cache.ttl import TTLPolicy
from orderflow.cache.view_store import ViewStore


class Views:
    """View and listing reads of one `Cache` (which checks that it is enabled)."""

    def __init__(self, store: Store, reader: Reader) -> None:
        self._store = store
        self._views = ViewStore(store)
        self._reader = reader

    async def read(
        self, entity: Entity, key: Key, families: Sequence[str], loader: Loader, ttl: TTLPolicy
    ) -> bytes:
        """A view, keyed by its families' generations (see `Cache.get_or_load_view`)."""
        m = for_entity(entity.name)
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

    async def bypass_listing(
        self, listing: Listing, loader: Loader, members: MembersLoader, first_sight: bool
    ) -> tuple[Any, list[bytes]]:
        """A listing read without Redis: a first sight (`admission`), or the cache off."""
        m, mm = for_entity(listing.view.name), for_entity(listing.members.name)
        view = orjson.loads(await bypass(m, loader, m.first_sight if first_sight else m.bypass))
        many = by_index(view["ids"], members)
        return view, await bypass_many(mm, many, len(view["ids"]), first_sight=first_sight)

    async def read_listing(
        self,
        listing: Listing,
        key: Key,
        families: Sequence[str],
        loader: Loader,
        members: MembersLoader,
    ) -> tuple[Any, list[bytes]]:
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
            view = orjson.loads(await bypass(m, loader))
            return view, await bypass_many(mm, by_index(view["ids"], members), len(view["ids"]))
        if isinstance(found, ViewHit):
            m.hit.inc()
            view = orjson.loads(entry.body(found.raw))
            if found.members is None:  # a cluster: the members are looked up on their shards
                return view, await self._read_members(mm, listing, view["ids"], members)
            stored = [raw for raw in found.members if isinstance(raw, bytes)]
            if len(stored) == len(found.members):  # the hot path: every member was there
                mm.hit.inc(len(stored))
                return view, [entry.body(raw) for raw in stored]
            return view, await self._read_members(
                mm, listing, view["ids"], members, members_token, found.members, found.epoch
            )
        if isinstance(found, ViewMiss) and found.lease is Miss.LEASED:
            read = Read(m, found.key, token, loader, listing.ttl)
            return await self._cold(read, mm, listing, members)
        if found is Miss.MOVED:
            payload = await bypass(m, loader, m.miss)
        else:
            payload = await self._reader.read_missed(
                Read(m, found.key, token, loader, listing.ttl), found.lease
            )
        view = orjson.loads(payload)
        return view, await self._read_members(mm, listing, view["ids"], members)

    async def _cold(
        self, read: Read, mm: EntityMetrics, listing: Listing, members: MembersLoader
    ) -> tuple[Any, list[bytes]]:
        """A listing whose view we hold the lease on: load it, then fill it and look up its
        members in one pipelined round trip, then fill the members in one more."""
        version, payload = await self._reader.load_leased(read)
        view = orjson.loads(payload)
        ids = view["ids"]
        if version is None:  # not to be cached: give the lease back, read the members
            await quietly(self._store.release(read.m, read.pin, read.token))
            return view, await self._read_members(mm, listing, ids, members)
        fill = (read.pin, version, payload, read.ttl.ttl_ms())
        if not ids:
            await quietly(self._store.fill_many(read.m, read.token, [fill]))
            return view, []
        pins = await self._store.pins(mm, listing.members, ids)
        try:
            found = await self._views.fill_then_lookup_many(read.m, read.token, fill, pins)
        except CacheError:
            return view, await bypass_many(mm, by_index(ids, members), len(ids))
        return view, await self._reader.complete_many(
            mm, read.token, pins, found, by_index(ids, members), listing.members_ttl
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
