"""A circuit breaker: pure logic, driven by an injectable clock so tests need no sleeps.

closed ──N consecutive failures──▶ open ──reset_after_s──▶ half_open ──probe ok──▶ closed
                                    ▲                           │
                                    └────────probe failed───────┘

While open, calls are rejected without touching Redis. After `reset_after_s` exactly one call,
the probe, is let through; every other call is still rejected until the probe reports back.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable
from typing import Literal

State = Literal["closed", "open", "half_open"]


class Ticket(enum.Enum):
    """What `CircuitBreaker.admit` granted: an ordinary call, or the single half-open probe."""

    CALL = "call"
    PROBE = "probe"


class CircuitBreaker:
    """Counts consecutive failures and stops traffic to an unhealthy dependency.

    `on_change(state)` is called on every state change (metrics, logs). A probe that never
    reports back (its task was cancelled) is presumed lost after `reset_after_s`, and the next
    call becomes a new probe, so the breaker cannot stay half-open forever.
    """

    def __init__(
        self,
        failure_threshold: int = 3,
        reset_after_s: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        on_change: Callable[[State], None] | None = None,
    ) -> None:
        self.failure_threshold = failure_threshold
        self.reset_after_s = reset_after_s
        self.on_change = on_change
        self._clock = clock
        self._state: State = "closed"
        self._failures = 0
        self._since = 0.0  # when the breaker opened, or when the current probe started
        self.outage_began: float | None = None  # when it last left `closed`; None while closed

    @property
    def clock(self) -> Callable[[], float]:
        return self._clock

    @property
    def state(self) -> State:
        """`closed` (normal), `open` (rejecting) or `half_open` (one probe in flight)."""
        return self._state

    def admit(self) -> Ticket | None:
        """Ask to call Redis: a ticket to report back with, or None: do not make the call."""
        if self._state == "closed":
            return Ticket.CALL
        if self._clock() - self._since < self.reset_after_s:
            return None  # open and cooling down, or a probe is already in flight
        self._since = self._clock()
        self._set("half_open")
        return Ticket.PROBE

    def succeeded(self, ticket: Ticket) -> None:
        """Report a call that worked. Only the probe can close an open breaker."""
        if ticket is Ticket.PROBE and self._state == "half_open":
            self._failures = 0
            self.outage_began = None
            self._set("closed")
        elif self._state == "closed":
            self._failures = 0

    def failed(self, ticket: Ticket) -> None:
        """Report a failed call: the probe reopens; ordinary calls count toward the threshold."""
        if ticket is Ticket.PROBE and self._state == "half_open":
            self.trip()
        elif self._state == "closed":
            self._failures += 1
            if self._failures >= self.failure_threshold:
                self.trip()
        # A straggler admitted before the breaker opened says nothing about Redis now.

    def trip(self, *, probe_now: bool = False) -> None:
        """Open now, so that the next probe starts over (and the cache bumps its epoch again).

        A breaker that is already open keeps its timer: steady failures while open must not
        postpone recovery forever. A closed one, or a half-open one whose probe just failed,
        rests a full `reset_after_s` from now. With `probe_now` the very next call is the probe.
        """
        if self._state == "closed":
            self.outage_began = self._clock()
        if probe_now:
            self._since = self._clock() - self.reset_after_s
        elif self._state != "open":
            self._since = self._clock()
        self._failures = 0
        self._set("open")

    def _set(self, state: State) -> None:
        if state != self._state:
            self._state = state
            if self.on_change is not None:
                self.on_change(state)
