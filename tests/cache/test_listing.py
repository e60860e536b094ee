"""Listings: a view of ids and the member entries it lists, read in one round trip on a hit."""

import asyncio
import uuid
from typing import Any

import orjson
import pytest
from redis.asyncio import Redis

from orderflow.cache import Cache, Entity, Listing
from orderflow.cache.metrics import OPS
from tests.cache.conftest import TTL, Loader, sample


class Members:
    """A members loader over a dict of rows `id -> (version, body)`, counting what it loads."""

    def __init__(self, rows: dict[int, tuple[int, bytes]]) -> None:
        self.rows = rows
        self.loaded: list[list[int]] = []

    async def __call__(self, ids: list[int]) -> dict[int, tuple[int | None, bytes]]:
        self.loaded.append(ids)
        return {id_: self.rows[id_] for id_ in ids}


@pytest.fixture
def listing() -> Listing:
    tag = uuid.uuid4().hex[:8]
    return Listing(Entity(f"page_{tag}", prefix="page"), TTL, Entity(f"o_{tag}", prefix="o"), TTL)


def page(*ids: int) -> Loader:
    return Loader(0, orjson.dumps({"ids": list(ids), "total": len(ids)}))


def round_trips(listing: Listing) -> float:
    """Redis round trips the cache made for the listing's view and members, by its metrics."""
    return sum(
        sample("orderflow_cache_latency_seconds_count", entity=entity.name, op=op)
        for entity in (listing.view, listing.members)
        for op in OPS
    )


async def test_a_hit_is_one_round_trip(cache: Cache, listing: Listing) -> None:
    rows = {1: (1, b'{"id":1}'), 2: (3, b'{"id":2}')}
    members, view = Members(rows), page(1, 2)
    first = await cache.get_or_load_listing(listing, "p", ["f"], view, members)
    assert first == ({"ids": [1, 2], "total": 2}, [b'{"id":1}', b'{"id":2}'])
    assert (view.calls, members.loaded) == (1, [[1, 2]])

    before = round_trips(listing)
    assert await cache.get_or_load_listing(listing, "p", ["f"], view, members) == first
    assert round_trips(listing) == before + 1
    assert (
        sample("orderflow_cache_latency_seconds_count", entity=listing.view.name, op="lookup_view")
        == 2
    )
    assert (view.calls, members.loaded) == (1, [[1, 2]])
    name = listing.members.name
    assert sample("orderflow_cache_requests_total", entity=name, result="hit") == 2
    assert sample("orderflow_cache_requests_total", entity=name, result="miss") == 2


async def test_a_page_is_the_view_with_its_members_bodies_in_one_round_trip_on_a_hit(
    cache: Cache, listing: Listing
) -> None:
    """`get_or_load_page`: the view's JSON with its ids replaced by the members' bodies, the
    same bytes cold and hot, one round trip on a hit; a member written or missing shows at
    once."""
    rows = {1: (1, b'{"id":1}'), 2: (3, b'{"id":2,"s":"x"}')}
    members, view = Members(rows), page(1, 2)
    cold = await cache.get_or_load_page(listing, "p", ["f"], view, members)
    assert cold == b'{"items":[{"id":1},{"id":2,"s":"x"}],"total":2}'
    before = round_trips(listing)
    assert await cache.get_or_load_page(listing, "p", ["f"], view, members) == cold
    assert round_trips(listing) == before + 1
    name = listing.members.name
    assert sample("orderflow_cache_requests_total", entity=name, result="hit") == 2

    assert await cache.put(listing.members, 2, 4, b'{"id":2,"s":"y"}', TTL)
    got = await cache.get_or_load_page(listing, "p", ["f"], view, members)
    assert got == b'{"items":[{"id":1},{"id":2,"s":"y"}],"total":2}'
    rows[1] = (2, b'{"id":1,"v":2}')
    assert await cache.invalidate(listing.members, 1, 2)  # missing: loaded again
    got = await cache.get_or_load_page(listing, "p", ["f"], view, members)
    assert got == b'{"items":[{"id":1,"v":2},{"id":2,"s":"y"}],"total":2}'
    assert view.calls == 1 and members.loaded == [[1, 2], [1]]
    assert await cache.get_or_load_page(listing, "p", ["f"], view, members) == got


async def test_an_empty_page_s_page(cache: Cache, listing: Listing) -> None:
    for _ in range(2):
        got = await cache.get_or_load_page(listing, "p", ["f"], page(), Members({}))
        assert got == b'{"items":[],"total":0}'


async def test_members_are_the_shared_entries(cache: Cache, listing: Listing) -> None:
    """A write to one member shows in every page listing it, without touching the pages."""
    rows = {1: (1, b'{"v":1}'), 2: (1, b'{"id":2}')}
    members, view = Members(rows), page(1, 2)
    await cache.get_or_load_listing(listing, "p", ["f"], view, members)
    assert await cache.put(listing.members, 1, 2, b'{"v":2}', TTL)
    _, bodies = await cache.get_or_load_listing(listing, "p", ["f"], view, members)
    assert bodies == [b'{"v":2}', b'{"id":2}']
    assert view.calls == 1


async def test_an_invalidated_member_alone_is_loaded_again(
    cache: Cache, client: Redis, ns: str, listing: Listing
) -> None:
    rows = {1: (1, b'{"v":1}'), 2: (1, b'{"id":2}'), 3: (1, b'{"id":3}')}
    members, view = Members(rows), page(1, 2, 3)
    await cache.get_or_load_listing(listing, "p", ["f"], view, members)
    rows[2] = (2, b'{"v":2}')
    assert await cache.invalidate(listing.members, 2, 2)  # a tombstone: not a hit
    _, bodies = await cache.get_or_load_listing(listing, "p", ["f"], view, members)
    assert bodies == [b'{"v":1}', b'{"v":2}', b'{"id":3}']
    assert members.loaded == [[1, 2, 3], [2]]
    assert await client.get(f"{ns}:o:v1:e0:{{2}}") == b'2|{"v":2}'  # filled back


async def test_a_bump_reloads_the_page_not_the_members(cache: Cache, listing: Listing) -> None:
    rows = {1: (1, b'{"id":1}'), 2: (1, b'{"id":2}')}
    members = Members(rows)
    await cache.get_or_load_listing(listing, "p", ["f", "g"], page(1), members)
    assert await cache.bump(["g"])
    newer = page(2, 1)
    got = await cache.get_or_load_listing(listing, "p", ["f", "g"], newer, members)
    assert got == ({"ids": [2, 1], "total": 2}, [b'{"id":2}', b'{"id":1}'])
    assert newer.calls == 1
    assert members.loaded == [[1], [2]]  # 1 was a hit on the shared entry


async def test_an_empty_page(cache: Cache, listing: Listing) -> None:
    members = Members({})
    for _ in range(2):
        got = await cache.get_or_load_listing(listing, "p", ["f"], page(), members)
        assert got == ({"ids": [], "total": 0}, [])
    assert members.loaded == []


async def test_a_moved_epoch_is_adopted_and_nothing_old_is_served(
    cache: Cache, client: Redis, ns: str, listing: Listing
) -> None:
    rows = {1: (1, b'{"v":1}')}
    members = Members(rows)
    await cache.get_or_load_listing(listing, "p", ["f"], page(1), members)
    await client.incr(f"{ns}:epoch")  # another process healed from an outage
    rows[1] = (2, b'{"v":2}')
    got = await cache.get_or_load_listing(listing, "p", ["f"], page(1), members)
    assert got[1] == [b'{"v":2}']
    assert cache.epoch == 1
    got = await cache.get_or_load_listing(listing, "p", ["f"], page(1), members)
    assert got[1] == [b'{"v":2}']
    assert await client.get(f"{ns}:o:v1:e1:{{1}}") == b'2|{"v":2}'


async def test_a_single_read_never_waits_on_a_page_s_member_lease(
    cache: Cache, listing: Listing, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Finding (issue 18): a page hit leased its missing members under the page read's own
    token, whose load future was registered until the page's reply was handled, then dropped
    unresolved. A single read of such a member whose reply was handled in between (a reply over
    64 KB arrives over several loop turns) joined that future and never returned."""
    rows = {1: (1, b'{"id":1}'), 2: (1, b'{"id":2}')}
    await cache.get_or_load_listing(listing, "p", ["f"], page(1, 2), Members(rows))
    await cache.invalidate(listing.members, 1, 2)  # member 1 is missing now
    replied, handled = asyncio.Event(), asyncio.Event()
    views = cache._views._views
    lookup_view = views.lookup_view

    async def slow_to_handle(*args: Any, **kwargs: Any) -> Any:
        found = await lookup_view(*args, **kwargs)  # member 1 is leased now
        replied.set()
        await handled.wait()
        return found

    monkeypatch.setattr(views, "lookup_view", slow_to_handle)
    rows[1] = (2, b'{"id":1,"v":2}')
    reading = asyncio.create_task(
        cache.get_or_load_listing(listing, "p", ["f"], page(1, 2), Members(rows))
    )
    await replied.wait()
    single = Loader(2, b'{"id":1,"v":2}')
    async with asyncio.timeout(2):  # before the fix: for ever
        assert await cache.get_or_load(listing.members, 1, single, TTL) == b'{"id":1,"v":2}'
    handled.set()
    _, bodies = await reading
    assert bodies == [b'{"id":1,"v":2}', b'{"id":2}']
