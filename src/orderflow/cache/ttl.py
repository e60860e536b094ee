"""TTL policies: how long an entry may live, in milliseconds, with jitter so that entries
filled together never expire together (rule 3)."""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import datetime, time, timedelta, tzinfo
from typing import Protocol

DAY = timedelta(days=1)


class TTLPolicy(Protocol):
    """Anything that can name the TTL of an entry being written now."""

    def ttl_ms(self) -> int: ...


class FixedTTL:
    """A safety TTL of at most `seconds`, shortened by up to `jitter_fraction` at random.

    The jitter only shortens, so `seconds` stays a promise: no entry outlives it.
    """

    def __init__(
        self,
        seconds: float,
        jitter_fraction: float = 0.1,
        rng: Callable[[], float] = random.random,
    ) -> None:
        if seconds <= 0 or not 0 <= jitter_fraction < 1:
            raise ValueError("need seconds > 0 and 0 <= jitter_fraction < 1")
        self.seconds = seconds
        self.jitter_fraction = jitter_fraction
        self._rng = rng

    def ttl_ms(self) -> int:
        factor = 1.0 - self.jitter_fraction * self._rng()
        return max(1, int(self.seconds * factor * 1000))


class QuietWindowTTL:
    """Entries expire at a uniformly random instant inside the next quiet window.

    The window is wall-clock time in `tz` (default: the machine's local time), `start` to `end`
    ("03:00"-"05:00"; it may cross midnight); `clock` returns now in that zone.

    "Next" means the first window starting after now: an entry written during a window (say, by
    the refresh job that re-warms popular items at its start) lives until the next day's
    window, instead of expiring again minutes later.
    """

    def __init__(
        self,
        start: str = "03:00",
        end: str = "05:00",
        tz: tzinfo | None = None,
        clock: Callable[[], datetime] | None = None,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self.start = time.fromisoformat(start)
        self.length = _duration(self.start, time.fromisoformat(end))
        self.tz = tz
        # tz=None gives naive local times, and `timestamp()` then applies local DST rules itself.
        self._clock = clock or (lambda: datetime.now(self.tz))
        self._rng = rng

    def next_window_start(self, now: datetime | None = None) -> datetime:
        """The start of the first quiet window strictly after `now` (default: the clock)."""
        now = now or self._clock()
        today = datetime.combine(now.date(), self.start, tzinfo=now.tzinfo)
        return today if today > now else today + DAY

    def ttl_ms(self) -> int:
        now = self._clock()
        expires = self.next_window_start(now) + self.length * self._rng()
        # Through timestamps, not datetime subtraction, so a DST change in between counts.
        return max(1, int((expires.timestamp() - now.timestamp()) * 1000))


def _duration(start: time, end: time) -> timedelta:
    anchor = datetime(2000, 1, 1)
    length = (datetime.combine(anchor, end) - datetime.combine(anchor, start)) % DAY
    if not length:
        raise ValueError("a quiet window needs end != start")
    return length
