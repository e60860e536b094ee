"""Pure pieces: TTL policies, the entry format, key layout."""

import random
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from orderflow.cache import Entity, FixedTTL, KeySpace, QuietWindowTTL, entry

BERLIN = ZoneInfo("Europe/Berlin")


def test_fixed_ttl_jitter_only_shortens_within_the_fraction() -> None:
    policy = FixedTTL(3600, 0.1, rng=random.Random(1).random)
    ttls = [policy.ttl_ms() for _ in range(1000)]
    assert all(3_240_000 <= t <= 3_600_000 for t in ttls)
    assert max(ttls) - min(ttls) > 300_000  # actually spread, not constant


def quiet(now: datetime, start: str = "03:00", end: str = "05:00") -> QuietWindowTTL:
    return QuietWindowTTL(start, end, tz=now.tzinfo, clock=lambda: now, rng=random.Random(7).random)


def expiries(policy: QuietWindowTTL, now: datetime, n: int = 1000) -> list[float]:
    return [now.timestamp() + policy.ttl_ms() / 1000 for _ in range(n)]


def spread_over(times: list[float], start: datetime, end: datetime) -> list[int]:
    """How many of `times` fall in each quarter of [start, end]; asserts none falls outside."""
    lo, hi = start.timestamp(), end.timestamp()
    assert all(lo <= t <= hi for t in times)
    return [
        sum(lo + q * (hi - lo) / 4 <= t < lo + (q + 1) * (hi - lo) / 4 for t in times)
        for q in range(4)
    ]


def test_quiet_window_ttls_expire_spread_across_the_next_window() -> None:
    now = datetime(2024, 6, 10, 14, 0, tzinfo=BERLIN)
    window = datetime(2024, 6, 11, 3, 0, tzinfo=BERLIN), datetime(2024, 6, 11, 5, 0, tzinfo=BERLIN)
    quarters = spread_over(expiries(quiet(now), now), *window)
    assert all(q > 150 for q in quarters), quarters


def test_inside_the_window_entries_live_until_the_next_days_window() -> None:
    now = datetime(2024, 6, 10, 3, 30, tzinfo=BERLIN)
    policy = quiet(now)
    assert policy.next_window_start(now) == datetime(2024, 6, 11, 3, 0, tzinfo=BERLIN)
    spread_over(
        expiries(policy, now),
        policy.next_window_start(now),
        datetime(2024, 6, 11, 5, 0, tzinfo=BERLIN),
    )


def test_a_window_across_midnight() -> None:
    now = datetime(2024, 6, 10, 0, 30, tzinfo=BERLIN)
    policy = quiet(now, "23:00", "01:00")
    start = datetime(2024, 6, 10, 23, 0, tzinfo=BERLIN)
    assert policy.next_window_start(now) == start
    spread_over(expiries(policy, now), start, start + timedelta(hours=2))


def test_quiet_window_counts_a_dst_change_in_real_time() -> None:
    now = datetime(2024, 3, 30, 12, 0, tzinfo=BERLIN)  # clocks go forward on the 31st at 02:00
    window = datetime(2024, 3, 31, 3, 0, tzinfo=BERLIN), datetime(2024, 3, 31, 5, 0, tzinfo=BERLIN)
    spread_over(expiries(quiet(now), now), *window)


def test_entry_format_round_trip_and_tombstones() -> None:
    stored = entry.encode(42, b'{"a":"x|y"}')
    assert stored == b'42|{"a":"x|y"}'
    assert entry.decode(stored) == (42, b'{"a":"x|y"}')
    assert entry.body(stored) == b'{"a":"x|y"}'
    assert entry.decode(entry.tombstone(7)).is_tombstone
    assert not entry.decode(stored).is_tombstone
    with pytest.raises(ValueError, match="empty"):
        entry.encode(1, b"")
    with pytest.raises(ValueError, match="not a cache entry"):
        entry.decode(b"garbage")


def test_key_layout() -> None:
    keys = KeySpace("shop")
    assert keys.epoch == "shop:epoch"
    assert keys.entry(Entity("item"), 3, 17) == "shop:item:v1:e3:{17}"  # every key has a tag
    order = Entity("order", version=2, client_tagged=True)
    assert keys.entry(order, 0, (42, 1001)) == "shop:order:v2:e0:{c:42}:1001"
    view = Entity("orders_by_status", prefix="crm:obs")
    families = ["status:queued", "c:42"]  # a view is tagged by its first family
    assert keys.entry(view, 1, ("queued", 20), gens=(4, 2), families=families) == (
        "shop:crm:obs:v1:e1:{status:queued}:g4.2:queued:20"
    )
    assert keys.entry(Entity("x"), 0, ("a:b",)) != keys.entry(Entity("x"), 0, ("a", "b"))
    assert keys.entry(Entity("x"), 0, "{c:1}") == "shop:x:v1:e0:{%7Bc%3A1%7D}"
    assert keys.generation(5, "orders") == "shop:gen:e5:{orders}"
    assert keys.generation(5, "c:42") == "shop:gen:e5:{c:42}"  # a client's counter: its slot
    assert keys.lease("shop:order:v2:e0:{c:42}:1001") == "lease:shop:order:v2:e0:{c:42}:1001"
