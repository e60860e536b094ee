"""Where keys live (cache/layout.py): the precomputed slot tags, and every key's slot known
before its epoch is. Pure logic: no Redis."""

from redis.crc import REDIS_CLUSTER_HASH_SLOTS, key_slot

from orderflow.cache import Entity, KeySpace
from orderflow.cache.layout import Layout, slot_tags

KEYS = KeySpace("shop")


def test_every_slot_has_a_tag_that_hashes_to_it() -> None:
    tags = slot_tags()
    assert len(tags) == REDIS_CLUSTER_HASH_SLOTS
    assert all(key_slot(tag.encode()) == slot for slot, tag in enumerate(tags))
    assert all("{" not in tag and "}" not in tag for tag in tags)


def test_an_epoch_key_is_in_the_slot_it_counts_for() -> None:
    tags = slot_tags()
    for slot in (0, 1, 5460, 5461, 16383):
        epoch_key = f"shop:epoch:{{{tags[slot]}}}"
        assert key_slot(epoch_key.encode()) == slot


def test_a_key_keeps_its_slot_in_every_epoch() -> None:
    """The slot, and so the epoch to check, is known before the epoch is: it is the tag's."""
    order, client = Entity("order"), Entity("client", client_tagged=True)
    for entity, key in ((order, 1001), (client, 42), (client, (42, 7))):
        slots = {key_slot(KEYS.entry(entity, epoch, key).encode()) for epoch in (0, 3, 10**12)}
        assert len(slots) == 1
    view = KEYS.entry(Entity("v"), 5, ("p", 1), gens=(4,), families=["c:42"])
    assert key_slot(view.encode()) == key_slot(KEYS.entry(client, 5, 42).encode())
    assert key_slot(KEYS.lease(view).encode()) == key_slot(view.encode())


def test_one_node_is_one_slot_and_one_shard() -> None:
    layout = Layout()
    assert not layout.cluster and layout.builds_members
    assert layout.slot("anything") == 0 and list(layout.slots()) == [0]
    assert layout.epoch_key("shop", 0) == "shop:epoch"
    assert layout.shards() == ["redis"] and not layout.failed_over("redis", 0)
