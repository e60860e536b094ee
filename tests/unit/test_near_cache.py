"""The near cache's own rules, with a fake clock."""

from orderflow.cache import NearCache


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_value_lives_ttl_seconds() -> None:
    clock = Clock()
    near = NearCache(ttl_s=5, clock=clock)
    assert near.put(("item", 1), b"{}", near.stamp())
    clock.now += 4.9
    assert near.get(("item", 1)) == b"{}"
    clock.now += 0.2
    assert near.get(("item", 1)) is None


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
