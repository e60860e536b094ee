"""Circuit breaker transitions not covered by tests/cache/test_breaker.py, with a fake clock."""

from orderflow.cache.breaker import CircuitBreaker, State, Ticket


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def make(threshold: int = 3) -> tuple[CircuitBreaker, Clock, list[State]]:
    clock, changes = Clock(), list[State]()
    breaker = CircuitBreaker(threshold, 1.0, clock=clock, on_change=changes.append)
    return breaker, clock, changes


def fail(breaker: CircuitBreaker, times: int) -> None:
    for _ in range(times):
        ticket = breaker.admit()
        assert ticket is Ticket.CALL
        breaker.failed(ticket)


def recover(breaker: CircuitBreaker, clock: Clock) -> None:
    clock.now += breaker.reset_after_s
    ticket = breaker.admit()
    assert ticket is Ticket.PROBE
    breaker.succeeded(ticket)


def test_a_new_breaker_is_closed_and_admits_calls() -> None:
    breaker, _, changes = make()
    assert breaker.state == "closed"
    assert all(breaker.admit() is Ticket.CALL for _ in range(100))
    assert changes == []


def test_a_threshold_of_one_opens_on_the_first_failure() -> None:
    breaker, _, _ = make(threshold=1)
    fail(breaker, 1)
    assert breaker.state == "open"


def test_recovery_starts_the_failure_count_afresh() -> None:
    breaker, clock, _ = make()
    fail(breaker, 3)
    recover(breaker, clock)
    fail(breaker, 2)
    assert breaker.state == "closed"
    fail(breaker, 1)
    assert breaker.state == "open"


def test_tripping_resets_the_count_of_a_closed_breaker() -> None:
    breaker, clock, _ = make()
    fail(breaker, 2)
    breaker.trip()
    recover(breaker, clock)
    fail(breaker, 1)  # the two failures before the trip no longer count
    assert breaker.state == "closed"


def test_listeners_hear_each_change_once() -> None:
    breaker, clock, changes = make()
    fail(breaker, 3)
    breaker.trip()
    breaker.trip()
    assert breaker.admit() is None
    recover(breaker, clock)
    breaker.succeeded(Ticket.CALL)
    assert changes == ["open", "half_open", "closed"]


def test_reports_while_open_change_nothing() -> None:
    breaker, clock, changes = make()
    fail(breaker, 3)
    clock.now += 0.5
    breaker.succeeded(Ticket.CALL)
    breaker.failed(Ticket.CALL)
    breaker.succeeded(Ticket.PROBE)  # no probe is out: a stale report
    assert breaker.state == "open"
    clock.now += 0.49
    assert breaker.admit() is None  # the failure did not restart the timer either ...
    clock.now += 0.01
    assert breaker.admit() is Ticket.PROBE  # ... the period still ends on time
    assert changes == ["open", "half_open"]


def test_probe_now_from_closed_opens_and_probes_at_once() -> None:
    breaker, _, changes = make()
    breaker.trip(probe_now=True)
    assert breaker.state == "open"
    assert breaker.admit() is Ticket.PROBE
    assert breaker.admit() is None
    assert changes == ["open", "half_open"]


def test_a_slow_failed_probe_reopens_for_a_full_period_from_its_failure() -> None:
    """The probe's failure is news about Redis now: the next probe waits `reset_after_s` from
    it, not from the moment the probe started (a 0.9 s timeout must not leave 0.1 s of rest)."""
    breaker, clock, _ = make()
    breaker.trip()
    clock.now += 1.0
    probe = breaker.admit()
    assert probe is Ticket.PROBE
    clock.now += 0.9  # the probe times out
    breaker.failed(probe)
    assert breaker.state == "open"
    clock.now += 0.5
    assert breaker.admit() is None  # 0.5 s after the failure: still resting
    clock.now += 0.5
    assert breaker.admit() is Ticket.PROBE
