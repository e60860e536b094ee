"""Views keyed by generation counters (the CRM's lists and counts)."""

import asyncio

from redis.asyncio import Redis

from orderflow.cache import Cache, Entity
from tests.cache.conftest import TTL, Loader

BY_STATUS = Entity("orders_by_status_t", prefix="crm:orders_by_status")


async def test_a_bump_makes_the_view_reload(cache: Cache) -> None:
    before = Loader(0, b'{"items":[1]}')
    after = Loader(0, b'{"items":[1,2]}')
    view = ("queued", 20, 0)
    assert (
        await cache.get_or_load_view(BY_STATUS, view, ["orders"], before, TTL) == b'{"items":[1]}'
    )
    assert (
        await cache.get_or_load_view(BY_STATUS, view, ["orders"], before, TTL) == b'{"items":[1]}'
    )
    assert await cache.bump(["orders", "orders:c42"])
    assert (
        await cache.get_or_load_view(BY_STATUS, view, ["orders"], after, TTL) == b'{"items":[1,2]}'
    )
    assert (before.calls, after.calls) == (1, 1)


async def test_a_view_filled_from_before_a_bump_is_never_read(
    cache: Cache, client: Redis, ns: str
) -> None:
    counter = f"{ns}:gen:e0:{{orders}}"
    old = Loader(0, b'{"count":1}', gated=True)
    reader = asyncio.create_task(cache.get_or_load_view(BY_STATUS, "stats", ["orders"], old, TTL))
    await old.entered.wait()  # it read the generation (creating the counter), then the database
    read_at = int(await client.get(counter))
    assert await cache.bump(["orders"])  # a writer commits, then bumps
    old.gate.set()
    assert await reader == b'{"count":1}'
    view = f"{ns}:crm:orders_by_status:v1:e0:{{orders}}"
    assert await client.get(f"{view}:g{read_at}:stats") == b'0|{"count":1}'

    new = Loader(0, b'{"count":2}')
    assert await cache.get_or_load_view(BY_STATUS, "stats", ["orders"], new, TTL) == b'{"count":2}'
    generation = int(await client.get(counter))
    assert generation > read_at  # the bump gave the counter a number it never had
    assert await client.get(f"{view}:g{generation}:stats") == b'0|{"count":2}'


async def test_generations_of_several_families_are_all_in_the_key(
    cache: Cache, client: Redis, ns: str
) -> None:
    await cache.bump(["orders"])
    first = int(await client.get(f"{ns}:gen:e0:{{orders}}"))
    await cache.bump(["orders", "clients"])
    orders = int(await client.get(f"{ns}:gen:e0:{{orders}}"))
    clients = int(await client.get(f"{ns}:gen:e0:{{clients}}"))
    assert first < orders < clients  # one sequence per slot: every number given once
    loader = Loader(0, b"{}")
    await cache.get_or_load_view(BY_STATUS, "x", ["orders", "clients", "never"], loader, TTL)
    never = int(await client.get(f"{ns}:gen:e0:{{never}}"))  # created by the read, not 0
    assert never > clients
    view = f"{ns}:crm:orders_by_status:v1:e0:{{orders}}"
    assert await client.exists(f"{view}:g{orders}.{clients}.{never}:x")


async def test_a_missing_counter_is_never_read_as_an_old_number(
    cache: Cache, client: Redis, ns: str
) -> None:
    """Finding (issue 18): a counter evicted after a bump was read as 0, and the view cached
    under 0 before the bump, the pre-write view, was served again until its TTL."""
    counter = f"{ns}:gen:e0:{{orders}}"
    old = Loader(0, b'{"count":1}')
    assert await cache.get_or_load_view(BY_STATUS, "s", ["orders"], old, TTL) == b'{"count":1}'
    assert await cache.bump(["orders"])  # a writer's change
    await client.delete(counter)  # evicted: counters have a TTL, so volatile-* may take them
    new = Loader(0, b'{"count":2}')
    assert await cache.get_or_load_view(BY_STATUS, "s", ["orders"], new, TTL) == b'{"count":2}'
    assert (old.calls, new.calls) == (1, 1)


async def test_an_expired_generation_never_comes_back_to_an_old_number(
    cache: Cache, client: Redis, ns: str
) -> None:
    """Counters expire (one per client and operator would pile up for ever); one that comes
    back must not reuse a number under which a view is still cached."""
    counter = f"{ns}:gen:e0:{{orders}}"
    await cache.bump(["orders"])
    assert await client.pttl(counter) > 0  # counters expire
    old = Loader(0, b'{"count":1}')
    assert await cache.get_or_load_view(BY_STATUS, "s", ["orders"], old, TTL) == b'{"count":1}'
    await client.delete(counter)  # expired (or evicted) while the view is still cached
    assert await cache.bump(["orders"])  # a writer's change
    new = Loader(0, b'{"count":2}')
    assert await cache.get_or_load_view(BY_STATUS, "s", ["orders"], new, TTL) == b'{"count":2}'
