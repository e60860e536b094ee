"""orderflow's caching layer: a small library over Redis, importing no service package.

    cache = Cache(redis, "shop")
    ITEM = Entity("item")
    body = await cache.get_or_load(ITEM, item_id, load_item, QuietWindowTTL())
    bodies = await cache.get_or_load_many(ORDER, order_keys, load_orders, FixedTTL(86_400))
    page, bodies = await cache.get_or_load_listing(BY_STATUS, key, families, load_ids, load_orders)
    page_json = await cache.get_or_load_page(BY_STATUS, key, families, load_ids, load_orders)
    await cache.put(ORDER, order_id, order.version, order_json, FixedTTL(86_400))
    await cache.invalidate(CLIENT, client_id, client.version)

Reads never fail because of Redis (they fall back to the loader); writes report failure as
False and trip the breaker, whose recovery bumps the epoch so that nothing written before an
outage is served after it. See ARCHITECTURE.md, "Caching policy".
"""

from orderflow.cache.aside import Loader, ManyLoader
from orderflow.cache.breaker import CircuitBreaker, State
from orderflow.cache.cache import Cache
from orderflow.cache.entry import Entry
from orderflow.cache.errors import (
    CacheConnectionError,
    CacheError,
    CacheProtocolError,
    CacheTimeout,
    CacheUnavailable,
)
from orderflow.cache.keys import SLOTS, Entity, Key, KeySpace, tag_slot
from orderflow.cache.listing import Listing, MembersLoader, page_of
from orderflow.cache.near import NearCache
from orderflow.cache.ttl import FixedTTL, QuietWindowTTL, TTLPolicy

__all__ = [
    "SLOTS",
    "Cache",
    "CacheConnectionError",
    "CacheError",
    "CacheProtocolError",
    "CacheTimeout",
    "CacheUnavailable",
    "CircuitBreaker",
    "Entity",
    "Entry",
    "FixedTTL",
    "Key",
    "KeySpace",
    "Listing",
    "Loader",
    "ManyLoader",
    "MembersLoader",
    "NearCache",
    "QuietWindowTTL",
    "State",
    "TTLPolicy",
    "page_of",
    "tag_slot",
]
