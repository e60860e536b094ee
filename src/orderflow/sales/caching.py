"""What ShopDB data the cache holds, under which keys, for how long (ARCHITECTURE.md,
"Caching policy"). The Shop and the CRM share this namespace: a CRM view lists order ids
and takes the order bodies from the very entries the Shop reads and writes through."""

from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from orderflow.cache import SLOTS, Entity, FixedTTL, Listing, QuietWindowTTL, tag_slot
from orderflow.kit.settings import Settings
from orderflow.service_cache.facade import NearPolicy

NAMESPACE = "shop"

ITEM = Entity("item")  # cache-aside, expires in the quiet window, invalidated on a seller's edit
CATALOGUE_PAGE = Entity("catalogue_page")  # a view of the catalogue family
CLIENT = Entity("client", client_tagged=True)  # cache-aside, invalidated on every change
# Write-through (or cache-aside); keyed by id, which is all a reader has. The id carries its
# client's slot (`order_id`), so on a Redis Cluster the order lives on its client's shard.
ORDER = Entity("order", slot_in_id=True)
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
DATE_VIEW_DAYS = 31  # a view narrowed to more days than this depends on ALL_ORDERS instead
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


def client_slot(client_id: int) -> int:
    """The Redis Cluster slot of the client's family, so of its entries, lists and counters."""
    return tag_slot(client_family(client_id))


def order_id(number: int, client_id: int) -> int:
    """The id of an order: its `number` (from a sequence) and its client's slot, as
    `number * SLOTS + slot`. A reader has only the id, and from it the cache finds the slot,
    so the order's entry sits in its client's slot on a Redis Cluster, beside the client's
    list pages: one script on one shard reads a page and every order on it (docs/caching.md,
    "A client on one shard"). Ids grow with `number` as before, only sparser."""
    return number * SLOTS + client_slot(client_id)


def day_family(day: date) -> str:
    """`day:<YYYY-MM-DD>` (UTC): the orders created that day."""
    return f"day:{day.isoformat()}"


def view_families(
    status: str | None,
    client_id: int | None,
    created_from: datetime | None = None,
    created_to: datetime | None = None,
) -> list[str]:
    """The families whose change can change which orders a view lists."""
    families = []
    if client_id:  # first: a view is tagged by its first family, a client's by the client
        families.append(client_family(client_id))
    if status:
        families.append(status_family(status))
    return families or date_families(created_from, created_to) or [ALL_ORDERS]


def date_families(created_from: datetime | None, created_to: datetime | None) -> list[str]:
    """A view that only creation dates narrow lists the same orders until one is created on
    one of its days: it depends on those days' families, not on every order created. Under
    a stream of new orders a view of past days then stays cached, where with ALL_ORDERS every
    placement made it a miss (the CRM's by-date list was the one read the cache did not
    help, and the first to break with PostgreSQL on a budget). Both bounds are needed, aware,
    and at most DATE_VIEW_DAYS apart; otherwise none (the caller falls back to ALL_ORDERS)."""
    if created_from is None or created_to is None:
        return []
    if created_from.tzinfo is None or created_to.tzinfo is None:
        return []
    first, last = created_from.astimezone(UTC).date(), created_to.astimezone(UTC).date()
    days = (last - first).days + 1  # `created_to` is exclusive: its own day may be one too many
    if not 0 < days <= DATE_VIEW_DAYS:
        return []
    return [day_family(first + timedelta(days=n)) for n in range(days)]


def created_families(client_id: int, created_at: datetime) -> list[str]:
    day = day_family(created_at.astimezone(UTC).date())
    return [status_family("created"), client_family(client_id), ALL_ORDERS, day, COUNTS]


def moved_families(from_any: Iterable[str], to: str) -> list[str]:
    """A status change moves an order between status views; client and date views list the
    same ids as before, and their bodies are the order entries, already rewritten."""
    return [*(status_family(s) for s in from_any), status_family(to), COUNTS]
