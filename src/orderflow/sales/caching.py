"""What ShopDB data the cache holds, under which keys, for how long (ARCHITECTURE.md,
"Caching policy"). The Shop and the CRM share this namespace: a CRM view lists order ids
and takes the order bodies from the very entries the Shop reads and writes through."""

from collections.abc import Iterable
from datetime import datetime
from zoneinfo import ZoneInfo

from orderflow.cache import Entity, FixedTTL, Listing, QuietWindowTTL
from orderflow.kit.settings import Settings
from orderflow.service_cache.facade import NearPolicy

NAMESPACE = "shop"

ITEM = Entity("item")  # cache-aside, expires in the quiet window, invalidated on a seller's edit
CATALOGUE_PAGE = Entity("catalogue_page")  # a view of the catalogue family
CLIENT = Entity("client", client_tagged=True)  # cache-aside, invalidated on every change
ORDER = Entity("order")  # write-through (or cache-aside); keyed by id, which is all a reader has
ORDER_VIEW = Entity("order_view")  # CRM views and a client's list: ids + total
CLIENT_ORDER_VIEW = Entity("client_order_view", client_tagged=True)
ORDER_COUNTS = Entity("order_counts")

JOURNALLED = (
    ITEM,
    CLIENT,
    ORDER,
)  # the entries whose upkeep writes journal (service_cache/upkeep.py)

CLIENT_TTL = FixedTTL(3600)
ORDER_TTL = FixedTTL(24 * 3600)
VIEW_TTL = FixedTTL(600)
ORDER_LIST = Listing(ORDER_VIEW, VIEW_TTL, ORDER, ORDER_TTL)  # a page of ids, bodies from ORDER
CLIENT_ORDER_LIST = Listing(CLIENT_ORDER_VIEW, VIEW_TTL, ORDER, ORDER_TTL)

CATALOGUE = "catalogue"
ALL_ORDERS = "orders"  # views that no status or client narrows: change only when one is created
COUNTS = "counts"


# Items and catalogue pages tolerate bounded staleness (their policy is time-based), so they are
# also kept in each process; orders never are: write-through promises the latest state.
NEAR = NearPolicy(frozenset({ITEM.name, CATALOGUE_PAGE.name}), frozenset({CATALOGUE}))


def item_ttl(settings: Settings) -> QuietWindowTTL:
    tz = ZoneInfo(settings.quiet_window_tz) if settings.quiet_window_tz else None
    clock = (lambda: datetime.now(tz)) if tz else None
    return QuietWindowTTL(settings.quiet_window_start, settings.quiet_window_end, tz, clock)


def status_family(status: str) -> str:
    return f"status:{status}"


def client_family(client_id: int) -> str:
    """`c:<id>`: the counter's hash tag is then the client's, `{c:<id>}`, so a client's list,
    its counter and the client's entry share a slot on a Redis Cluster (cache/keys.py)."""
    return f"c:{client_id}"


def view_families(status: str | None, client_id: int | None) -> list[str]:
    """The families whose change can change which orders a view lists."""
    families = []
    if client_id:  # first: a view is tagged by its first family, a client's by the client
        families.append(client_family(client_id))
    if status:
        families.append(status_family(status))
    return families or [ALL_ORDERS]


def created_families(client_id: int) -> list[str]:
    return [status_family("created"), client_family(client_id), ALL_ORDERS, COUNTS]


def moved_families(from_any: Iterable[str], to: str) -> list[str]:
    """A status change moves an order between status views; client and date views list the
    same ids as before, and their bodies are the order entries, already rewritten."""
    return [*(status_family(s) for s in from_any), status_family(to), COUNTS]
