"""TTL policies at their edges, with an injected clock and random source (the spread over the
window is in tests/cache/test_pieces.py)."""

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from orderflow.cache import FixedTTL, QuietWindowTTL

BERLIN = ZoneInfo("Europe/Berlin")
HOUR_MS = 3_600_000


@pytest.mark.parametrize(
    ("seconds", "jitter"), [(0, 0.1), (-1, 0.1), (10, -0.1), (10, 1.0), (10, 1.5)]
)
def test_fixed_ttl_refuses_impossible_settings(seconds: float, jitter: float) -> None:
    with pytest.raises(ValueError, match="need seconds > 0"):
        FixedTTL(seconds, jitter)


def test_fixed_ttl_without_jitter_is_exact() -> None:
    assert {FixedTTL(600, 0).ttl_ms() for _ in range(100)} == {600_000}


def test_fixed_ttl_jitter_bounds() -> None:
    assert FixedTTL(100, 0.2, rng=lambda: 0.0).ttl_ms() == 100_000
    assert FixedTTL(100, 0.2, rng=lambda: 0.5).ttl_ms() == 90_000
    assert FixedTTL(100, 0.2, rng=lambda: 0.999_999).ttl_ms() >= 80_000


def test_fixed_ttl_never_reaches_zero() -> None:
    """A TTL of 0 ms would make Redis refuse the write (or drop the entry at once)."""
    assert FixedTTL(0.0001, 0.5, rng=lambda: 0.99).ttl_ms() == 1


def window(now: datetime, rng: float, start: str = "03:00", end: str = "05:00") -> QuietWindowTTL:
    return QuietWindowTTL(start, end, tz=now.tzinfo, clock=lambda: now, rng=lambda: rng)


def test_a_quiet_window_needs_a_length() -> None:
    with pytest.raises(ValueError, match="end != start"):
        QuietWindowTTL("03:00", "03:00")


def test_a_window_across_midnight_has_its_real_length() -> None:
    assert QuietWindowTTL("23:30", "00:30").length == timedelta(hours=1)
    assert QuietWindowTTL("03:00", "02:00").length == timedelta(hours=23)


@pytest.mark.parametrize(
    ("now", "start"),
    [
        (datetime(2024, 6, 10, 2, 59, 59), datetime(2024, 6, 10, 3, 0)),  # just before: today
        (datetime(2024, 6, 10, 3, 0), datetime(2024, 6, 11, 3, 0)),  # at the start: tomorrow
        (datetime(2024, 6, 10, 4, 0), datetime(2024, 6, 11, 3, 0)),  # inside: tomorrow
        (datetime(2024, 6, 10, 23, 59), datetime(2024, 6, 11, 3, 0)),
        (datetime(2024, 12, 31, 12, 0), datetime(2025, 1, 1, 3, 0)),  # over the year's end
    ],
)
def test_next_window_start_is_strictly_after_now(now: datetime, start: datetime) -> None:
    policy = QuietWindowTTL(clock=lambda: now)
    assert policy.next_window_start(now) == start
    assert policy.next_window_start() == start  # from the clock when no time is given


def test_the_earliest_expiry_is_the_window_start_and_the_latest_its_end() -> None:
    now = datetime(2024, 6, 10, 14, 0, tzinfo=BERLIN)
    assert window(now, 0.0).ttl_ms() == 13 * HOUR_MS  # 14:00 -> 03:00
    assert window(now, 0.5).ttl_ms() == 14 * HOUR_MS
    assert window(now, 0.999_999).ttl_ms() <= 15 * HOUR_MS


def test_an_entry_written_inside_the_window_lives_until_the_next_days_window() -> None:
    now = datetime(2024, 6, 10, 4, 59, tzinfo=BERLIN)
    expires = now.timestamp() + window(now, 0.0).ttl_ms() / 1000
    assert expires == datetime(2024, 6, 11, 3, 0, tzinfo=BERLIN).timestamp()


def test_the_ttl_counts_real_time_when_clocks_go_back() -> None:
    """On 27 Oct 2024 Berlin's clocks go back at 03:00: the night has 25 hours."""
    now = datetime(2024, 10, 26, 12, 0, tzinfo=BERLIN)
    assert window(now, 0.0).ttl_ms() == 16 * HOUR_MS  # 12:00 -> 03:00 CET, one hour more
    naive_gap = datetime(2024, 10, 27, 3, 0) - datetime(2024, 10, 26, 12, 0)
    assert naive_gap == timedelta(hours=15)


def test_the_ttl_never_reaches_zero() -> None:
    now = datetime(2024, 6, 10, 2, 59, 59, 999_999, tzinfo=BERLIN)
    assert window(now, 0.0).ttl_ms() == 1
