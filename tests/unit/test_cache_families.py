"""Which view families each order write bumps, and which families each view depends on.

The property that matters: whenever a write can change which orders a cached view lists (or
its total), the write bumps at least one family the view depends on. Each test models the
order before and after a write, and the filter of every view, independently of the families.
"""

from datetime import datetime, timedelta
from itertools import product
from zoneinfo import ZoneInfo

import pytest

from orderflow.kit.settings import Settings
from orderflow.production import caching as mes
from orderflow.production.orders.schemas import ProductionStatus
from orderflow.sales import caching as shop
from orderflow.sales.orders.lifecycle import ACTIONS, OrderStatus, statuses_before

S = OrderStatus
CLIENTS = [None, 1, 2]
SHOP_VIEWS = list(product([None, *(s.value for s in OrderStatus)], CLIENTS))

Order = tuple[str, int]  # (status, client_id) of a Shop order, or (status, operator_id)
UTC = ZoneInfo("UTC")
NOW = datetime(2026, 12, 7, 16, 30, tzinfo=UTC)


def listed(view: tuple[str | None, int | None], order: Order | None) -> bool:
    """Whether a view filtered by (status, client or operator) lists `order` (None: no order)."""
    if order is None:
        return False
    status, owner = view
    return (status is None or status == order[0]) and (owner is None or owner == order[1])


def bumps(view_families: list[str], bumped: list[str]) -> bool:
    return bool(set(view_families) & set(bumped))


# ---- the Shop's and the CRM's order views -----------------------------------------------------


def test_a_view_no_filter_narrows_depends_on_all_orders_only() -> None:
    assert shop.view_families(None, None) == [shop.ALL_ORDERS]


def test_a_view_narrowed_by_status_and_client_depends_on_both() -> None:
    families = shop.view_families("confirmed", 7)
    assert shop.status_family("confirmed") in families
    assert shop.client_family(7) in families
    assert shop.ALL_ORDERS not in families


def test_status_and_client_families_never_collide() -> None:
    assert shop.status_family("7") != shop.client_family(7)
    assert len({shop.status_family(s) for s in OrderStatus}) == len(OrderStatus)


def test_a_created_order_bumps_its_client_created_all_orders_and_counts() -> None:
    assert set(shop.created_families(7, NOW)) >= {
        shop.status_family("created"),
        shop.client_family(7),
        shop.ALL_ORDERS,
        shop.COUNTS,
    }
    assert shop.client_family(8) not in shop.created_families(7, NOW)


@pytest.mark.parametrize("view", SHOP_VIEWS, ids=str)
def test_a_created_order_invalidates_every_view_that_lists_it(
    view: tuple[str | None, int | None],
) -> None:
    new = ("created", 1)
    if listed(view, new):
        assert bumps(shop.view_families(*view), shop.created_families(1, NOW))


@pytest.mark.parametrize("view", [("confirmed", None), (None, 2), ("ready", 2)], ids=str)
def test_a_created_order_leaves_views_it_is_not_in(view: tuple[str | None, int | None]) -> None:
    assert not bumps(shop.view_families(*view), shop.created_families(1, NOW))


# A view only dates narrow (the CRM's by-date list): [from, to), as the repository reads it.
MIDNIGHT = datetime(2026, 12, 1, tzinfo=UTC)
DATE_VIEWS = [
    (MIDNIGHT + timedelta(days=d, hours=h), MIDNIGHT + timedelta(days=d + span, hours=h))
    for d, span, h in product(range(0, 7), (1, 7), (0, 13))
] + [(MIDNIGHT, MIDNIGHT + timedelta(hours=1)), (MIDNIGHT - timedelta(minutes=1), MIDNIGHT)]
CREATED_AT = [
    MIDNIGHT + timedelta(days=d, hours=h, microseconds=us)
    for d, h, us in product(range(-1, 15), (0, 12, 23), (0, 1))
] + [MIDNIGHT - timedelta(microseconds=1), datetime(2026, 12, 3, 2, tzinfo=ZoneInfo("Asia/Tokyo"))]


@pytest.mark.parametrize("view", DATE_VIEWS, ids=str)
def test_a_created_order_invalidates_every_date_view_that_lists_it(
    view: tuple[datetime, datetime],
) -> None:
    start, end = view
    families = shop.view_families(None, None, start, end)
    assert shop.ALL_ORDERS not in families
    for created_at in CREATED_AT:
        if start <= created_at < end:
            assert bumps(families, shop.created_families(1, created_at)), (view, created_at)


def test_a_date_view_of_past_days_survives_todays_orders() -> None:
    past = shop.view_families(None, None, NOW - timedelta(days=8), NOW - timedelta(days=1))
    assert not bumps(past, shop.created_families(1, NOW))
    assert len(past) == 8  # the bound's own day included: one family too many is only a miss


@pytest.mark.parametrize(
    ("start", "end"),
    [(NOW, None), (None, NOW), (NOW.replace(tzinfo=None), NOW), (NOW, NOW - timedelta(days=1)),
     (NOW - timedelta(days=40), NOW)],
    ids=["no end", "no start", "naive", "reversed", "too many days"],
)  # fmt: skip
def test_a_date_view_it_cannot_bound_depends_on_all_orders(
    start: datetime | None, end: datetime | None
) -> None:
    assert shop.view_families(None, None, start, end) == [shop.ALL_ORDERS]


def test_a_status_change_bumps_the_old_and_new_status_families_and_counts() -> None:
    families = shop.moved_families([S.CREATED], S.CONFIRMED)
    assert set(families) >= {"status:created", "status:confirmed", shop.COUNTS}


def test_families_built_from_enums_match_those_built_from_query_strings() -> None:
    """A write passes OrderStatus members, a view the `status` query string: same keys."""
    for status in OrderStatus:
        assert shop.status_family(status) == shop.status_family(status.value)
    moved = shop.moved_families(frozenset({S.CREATED, S.CONFIRMED}), S.CANCELLED)
    for status in ("created", "confirmed", "cancelled"):
        assert bumps(shop.view_families(status, None), moved)


# every move an order can make: the seller's and client's actions, and production's events
MOVES = [(s, target, sorted(allowed)) for allowed, target in ACTIONS.values() for s in allowed] + [
    (S(s), target, statuses_before(target))
    for target in (S.IN_PRODUCTION, S.READY)
    for s in statuses_before(target)
]


@pytest.mark.parametrize(("actual", "target", "from_any"), MOVES, ids=str)
def test_a_status_change_invalidates_every_view_whose_list_changes(
    actual: OrderStatus, target: OrderStatus, from_any: list[str]
) -> None:
    """The writer names every status the order may have left (it does not know which), so
    whichever one it actually left, the views of that status are bumped."""
    moved = shop.moved_families(from_any, target)
    assert shop.COUNTS in moved
    for client, view in product([1, 2], SHOP_VIEWS):
        before, after = (actual.value, client), (target.value, client)
        if listed(view, before) != listed(view, after):
            assert bumps(shop.view_families(*view), moved), (view, before, after)


def test_a_status_change_leaves_client_only_and_unfiltered_views_alone() -> None:
    """They list the same ids as before; the bodies come from the rewritten order entries."""
    moved = shop.moved_families([S.CREATED], S.CONFIRMED)
    assert not bumps(shop.view_families(None, 1), moved)
    assert not bumps(shop.view_families(None, None), moved)


def test_a_status_change_leaves_views_of_unrelated_statuses_alone() -> None:
    moved = shop.moved_families([S.READY], S.SHIPPED)
    for status in ("created", "confirmed", "in_production", "delivered", "cancelled"):
        assert not bumps(shop.view_families(status, None), moved)


def test_item_ttl_follows_the_quiet_window_settings() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    settings = Settings(
        quiet_window_start="02:30", quiet_window_end="04:00", quiet_window_tz="Europe/Berlin"
    )
    policy = shop.item_ttl(settings)
    assert policy.tz == berlin
    assert policy.length == timedelta(hours=1, minutes=30)
    now = datetime(2024, 6, 10, 12, 0, tzinfo=berlin)
    assert policy.next_window_start(now) == datetime(2024, 6, 11, 2, 30, tzinfo=berlin)
    # the next window ends within a day and a half hour (and an hour more across a DST change)
    assert 0 < policy.ttl_ms() <= (25 * 3600 + 90 * 60) * 1000


def test_item_ttl_without_a_zone_uses_local_time() -> None:
    settings = Settings(quiet_window_start="03:00", quiet_window_end="05:00", quiet_window_tz="")
    policy = shop.item_ttl(settings)
    assert policy.tz is None
    start = policy.next_window_start(datetime(2024, 6, 10, 12, 0))
    assert start == datetime(2024, 6, 11, 3, 0)
    assert start.tzinfo is None
    assert 0 < policy.ttl_ms() <= 27 * 3600 * 1000  # a day, the window, a DST hour


# ---- the MES boards -------------------------------------------------------------------------

OPERATORS = [None, 3, 4]
MES_VIEWS = list(product([None, *(s.value for s in ProductionStatus)], OPERATORS))


def test_a_board_no_filter_narrows_depends_on_all_production_orders_only() -> None:
    assert mes.view_families(None, None) == [mes.ALL]


def test_a_board_narrowed_by_status_and_operator_depends_on_both() -> None:
    families = mes.view_families("in_progress", 3)
    assert mes.status_family("in_progress") in families
    assert mes.operator_family(3) in families


# (order before, order after, the arguments the writer passes to moved_families)
MES_WRITES = {
    "queued": (None, ("queued", None), (None, "queued", None)),
    "claim": (("queued", None), ("in_progress", 3), ("queued", "in_progress", 3)),
    "release": (("in_progress", 3), ("queued", None), ("in_progress", "queued", 3)),
    "complete": (("in_progress", 3), ("done", 3), ("in_progress", "done", 3)),
    "cancel": (("queued", None), ("cancelled", None), ("queued", "cancelled", None)),
}


@pytest.mark.parametrize("write", sorted(MES_WRITES))
@pytest.mark.parametrize("view", MES_VIEWS, ids=str)
def test_every_board_whose_list_changes_is_invalidated(
    write: str, view: tuple[str | None, int | None]
) -> None:
    before, after, args = MES_WRITES[write]
    if listed(view, before) != listed(view, after):
        assert bumps(mes.view_families(*view), mes.moved_families(*args))


def test_a_new_order_bumps_the_queue_and_the_unfiltered_board() -> None:
    families = mes.moved_families(None, "queued", None)
    assert set(families) >= {mes.status_family("queued"), mes.ALL}


def test_a_claim_bumps_both_statuses_and_the_operators_board() -> None:
    families = mes.moved_families("queued", "in_progress", 3)
    assert set(families) >= {"status:queued", "status:in_progress", mes.operator_family(3)}
    assert mes.ALL not in families  # the unfiltered board lists the same ids
    assert mes.operator_family(4) not in families


def test_a_cancel_from_the_queue_bumps_no_operators_board() -> None:
    families = mes.moved_families("queued", "cancelled", None)
    assert not any(f.startswith("operator:") for f in families)
