"""What the MES caches: production orders written through, and the board's lists.

A production order's entry is rewritten after every commit that changes it (write-through:
no delay is acceptable for operators). A list (the queue, an operator's orders) caches the ids
of one page under the generations of its families; the same post-commit step that writes the
entry bumps those families, so a board read after a claim's response lists the order as taken.
"""

from orderflow.cache import Entity, FixedTTL, Listing

NAMESPACE = "mes"
PRODUCTION_ORDER = Entity("production_order")
PRODUCTION_VIEW = Entity("production_view")
JOURNALLED = (
    PRODUCTION_ORDER,
)  # the entries whose upkeep writes journal (service_cache/upkeep.py)
ENTRY_TTL = FixedTTL(24 * 3600)
VIEW_TTL = FixedTTL(600)
PRODUCTION_LIST = Listing(PRODUCTION_VIEW, VIEW_TTL, PRODUCTION_ORDER, ENTRY_TTL)
ALL = "production_orders"  # lists no status or operator narrows: change when one is queued


def status_family(status: str) -> str:
    return f"status:{status}"


def operator_family(operator_id: int) -> str:
    return f"operator:{operator_id}"


def view_families(status: str | None, operator_id: int | None) -> list[str]:
    families = []
    if status:
        families.append(status_family(status))
    if operator_id:
        families.append(operator_family(operator_id))
    return families or [ALL]


def moved_families(from_status: str | None, to_status: str, operator_id: int | None) -> list[str]:
    """Families a change from `from_status` (None: a new order) to `to_status` moves."""
    families = [status_family(to_status)]
    if from_status is None:
        families.append(ALL)
    else:
        families.append(status_family(from_status))
    if operator_id is not None:
        families.append(operator_family(operator_id))
    return families
