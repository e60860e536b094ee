"""The near cache's own rules, with a fake clock."""

from orderflow.cache import NearCache
from orderflow.cache.near import JITTER


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_value_lives_at_most_ttl_seconds() -> None:
    clock = Clock()
    near = NearCache(ttl_s=5, clock=clock)
    assert near.put(("item", 1), b"{}", near.stamp())
    clock.now += (1 - JITTER) * 5 - 0.01
    assert near.get(("item", 1)) == b"{}"
    clock.now += JITTER * 5 + 0.02
    assert near.get(("item", 1)) is None


def test_entries_put_together_expire_spread_out() -> None:
    clock = Clock()
    near = NearCache(ttl_s=5, clock=clock)
    for n in range(1000):
        near.put(("item", n), b"{}", near.stamp())
    clock.now = 100.0 + 3.99
    assert all(near.get(("item", n)) == b"{}" for n in range(1000))  # none before 0.8 x ttl
    clock.now = 100.0 + 4.5
    remaining = sum(near.get(("item", n)) is not None for n in range(1000))
    assert 300 < remaining < 700  # about half: expiry spread uniformly over 4 .. 5 s
    clock.now = 100.0 + 5.0
    assert all(near.get(("item", n)) is None for n in range(1000))


def test_a_load_that_raced_a_drop_is_not_stored() -> None:
    near = NearCache()
    stamp = near.stamp()  # a reader starts loading version 1 ...
    near.drop(("item", 1))  # ... a writer commits version 2 and drops it everywhere ...
    assert not near.put(("item", 1), b'{"version":1}', stamp)  # ... the old value stays out
    assert near.get(("item", 1)) is None
    assert near.put(("item", 1), b'{"version":2}', near.stamp())


def test_clearing_a_group_keeps_the_others() -> None:
    near = NearCache()
    near.put(("catalogue_page", ("", "", 20, 0)), b"[]", near.stamp())
    near.put(("item", 7), b"{}", near.stamp())
    near.clear("catalogue_page")
    assert near.get(("catalogue_page", ("", "", 20, 0))) is None
    assert near.get(("item", 7)) == b"{}"


def test_the_oldest_entries_make_room() -> None:
    near = NearCache(maxsize=3)
    for i in range(5):
        near.put(("item", i), b"{}", near.stamp())
    assert len(near) == 3
    assert near.get(("item", 0)) is None
    assert near.get(("item", 4)) == b"{}"
