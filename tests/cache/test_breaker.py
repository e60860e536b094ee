"""The circuit breaker's transitions, driven by a fake clock."""

from orderflow.cache.breaker import CircuitBreaker, State, Ticket


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def make() -> tuple[CircuitBreaker, Clock, list[State]]:
    clock, changes = Clock(), list[State]()
    breaker = CircuitBreaker(3, 1.0, clock=clock, on_change=changes.append)
    return breaker, clock, changes


def fail(breaker: CircuitBreaker, times: int) -> None:
    for _ in range(times):
        ticket = breaker.admit()
        assert ticket is not None
        breaker.failed(ticket)


def test_opens_after_consecutive_failures_only() -> None:
    breaker, _, _ = make()
    fail(breaker, 2)
    breaker.succeeded(Ticket.CALL)  # a success resets the count
    fail(breaker, 2)
    assert breaker.state == "closed"
    fail(breaker, 1)
    assert breaker.state == "open"
    assert breaker.admit() is None


def test_half_open_lets_exactly_one_probe_through_and_closes_on_success() -> None:
    breaker, clock, changes = make()
    fail(breaker, 3)
    clock.now += 0.99
    assert breaker.admit() is None
    clock.now += 0.01
    assert breaker.admit() is Ticket.PROBE
    assert breaker.state == "half_open"
    assert [breaker.admit() for _ in range(5)] == [None] * 5
    breaker.succeeded(Ticket.PROBE)
    assert breaker.state == "closed"
    assert breaker.admit() is Ticket.CALL
    assert changes == ["open", "half_open", "closed"]


def test_failed_probe_reopens_for_another_full_period() -> None:
    breaker, clock, _ = make()
    fail(breaker, 3)
    clock.now += 1.0
    assert breaker.admit() is Ticket.PROBE
    breaker.failed(Ticket.PROBE)
    assert breaker.state == "open"
    clock.now += 0.5
    assert breaker.admit() is None
    clock.now += 0.5
    assert breaker.admit() is Ticket.PROBE


def test_a_straggler_cannot_close_the_breaker() -> None:
    breaker, clock, _ = make()
    straggler = breaker.admit()
    assert straggler is Ticket.CALL
    fail(breaker, 3)
    clock.now += 1.0
    assert breaker.admit() is Ticket.PROBE
    breaker.succeeded(straggler)  # admitted before the outage: says nothing about now
    assert breaker.state == "half_open"
    breaker.failed(straggler)
    assert breaker.state == "half_open"


def test_a_lost_probe_is_replaced_after_the_reset_period() -> None:
    breaker, clock, _ = make()
    fail(breaker, 3)
    clock.now += 1.0
    assert breaker.admit() is Ticket.PROBE  # ...and its task is cancelled: no report
    clock.now += 0.5
    assert breaker.admit() is None
    clock.now += 0.5
    assert breaker.admit() is Ticket.PROBE


def test_trip_keeps_an_open_breakers_timer_and_probe_now_skips_it() -> None:
    breaker, clock, _ = make()
    breaker.trip()
    assert breaker.state == "open"
    clock.now += 0.8
    breaker.trip()  # steady failures while open must not postpone recovery
    clock.now += 0.2
    assert breaker.admit() is Ticket.PROBE
    breaker.trip()  # trip during the probe: its success no longer counts
    breaker.succeeded(Ticket.PROBE)
    assert breaker.state == "open"
    breaker.trip(probe_now=True)
    assert breaker.admit() is Ticket.PROBE
