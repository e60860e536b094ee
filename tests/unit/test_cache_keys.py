"""Key building beyond the layout examples of tests/cache/test_pieces.py: injectivity, the
Redis Cluster hash tag of client-tagged entities, and the pieces the Lua scripts finish."""

import pytest

from orderflow.cache import Entity, KeySpace

KEYS = KeySpace("shop")
ITEM = Entity("item")
CLIENT = Entity("client", client_tagged=True)
CLIENT_VIEW = Entity("client_order_view", client_tagged=True)


def hash_tag(key: str) -> str:
    """What Redis Cluster hashes: the first non-empty `{...}`, else the whole key."""
    start = key.find("{")
    if start != -1:
        end = key.find("}", start + 1)
        if end > start + 1:
            return key[start + 1 : end]
    return key


@pytest.mark.parametrize(
    "key", [42, (42,), (42, 1001), (42, "created", 20, 0)], ids=lambda k: repr(k)
)
def test_a_client_tagged_key_hashes_by_its_client_only(key: int | tuple[int | str, ...]) -> None:
    assert hash_tag(KEYS.entry(CLIENT, 3, key)) == "c:42"


def test_every_key_of_one_client_lands_on_one_shard() -> None:
    keys = [
        KEYS.entry(CLIENT, 0, 42),
        KEYS.entry(CLIENT_VIEW, 0, (42, "", 50, 0), gens=(3, 1), families=["c:42", "status:x"]),
        KEYS.lease(KEYS.entry(CLIENT, 0, 42)),
        "".join(KEYS.view_entry(CLIENT_VIEW, 0, (42, "x"), ["c:42"])),
        KEYS.generation(7, "c:42"),  # the client's family: its lists' counter
    ]
    assert {hash_tag(k) for k in keys} == {"c:42"}
    assert hash_tag(KEYS.entry(CLIENT, 0, 43)) != hash_tag(KEYS.entry(CLIENT, 0, 42))


def test_braces_in_a_part_never_make_a_hash_tag() -> None:
    key = KEYS.entry(ITEM, 0, ("{x}", "}{"))
    assert key.count("{") == key.count("}") == 1  # the key's own tag only: its first part
    assert hash_tag(key) == "%7Bx%7D"
    assert hash_tag(KEYS.generation(0, "{c:1}")) == "%7Bc:1%7D"
    tagged = KEYS.entry(CLIENT, 0, (42, "{c:7}"))
    assert hash_tag(tagged) == "c:42"


def test_a_client_tagged_key_needs_a_client_id() -> None:
    with pytest.raises(ValueError, match="client id"):
        KEYS.entry(CLIENT, 0, ())
    with pytest.raises(ValueError, match="client id"):
        KEYS.member_head(CLIENT, 0)


TRICKY_PARTS = [
    ("a:b",),
    ("a", "b"),
    ("a%3Ab",),
    ("a%",),
    ("a%25",),
    ("",),
    ("", ""),
    (":",),
    ("%",),
    ("{",),
    ("%7B",),
    (1,),
    ("1",),
    (1, 2),
    ("1:2",),
    ("1", 2),
]


def test_distinct_keys_never_share_a_redis_key() -> None:
    built = [KEYS.entry(ITEM, 0, parts) for parts in TRICKY_PARTS]
    clashes = {k for k in built if built.count(k) > 1}
    # int 1 and str "1" are the same id as far as a key is concerned, and so are (1, 2)/("1", 2);
    # every other pair of distinct keys must differ
    assert clashes == {KEYS.entry(ITEM, 0, (1,)), KEYS.entry(ITEM, 0, (1, 2))}


def test_entries_of_different_namespaces_versions_epochs_or_generations_differ() -> None:
    keys = {
        KeySpace("shop").entry(ITEM, 0, 1),
        KeySpace("mes").entry(ITEM, 0, 1),
        KEYS.entry(Entity("item", version=2), 0, 1),
        KEYS.entry(ITEM, 1, 1),
        KEYS.entry(ITEM, 0, 1, gens=(1,), families=["f"]),
        KEYS.entry(ITEM, 0, 1, gens=(2,), families=["f"]),
        KEYS.entry(ITEM, 0, 1, gens=(1, 2), families=["f", "g"]),
        KEYS.entry(ITEM, 0, 1, gens=(12,), families=["f"]),
    }
    assert len(keys) == 8


def test_a_prefix_replaces_the_name_but_the_name_labels_metrics() -> None:
    view = Entity("orders_by_status", prefix="crm:obs", version=3)
    assert view.key_prefix == "crm:obs:v3"
    assert KEYS.entry(view, 2, 9).startswith("shop:crm:obs:v3:e2:")
    assert Entity("item").key_prefix == "item:v1"


def test_a_script_finishes_a_view_key_like_entry_does() -> None:
    """A script reads the generations, then joins head + "g" + gens + tail in one round trip."""
    for entity, key in [(ITEM, ("created", 50, 0)), (CLIENT_VIEW, (42, 50, 0))]:
        head, tail = KEYS.view_entry(entity, 5, key, ["f", "g"])
        assert head + "g4.2" + tail == KEYS.entry(entity, 5, key, gens=(4, 2), families=["f", "g"])


def test_a_script_appends_an_id_to_the_member_head() -> None:
    assert KEYS.member_head(ITEM, 3) + "{17}" == KEYS.entry(ITEM, 3, 17)


def test_generation_counters_live_under_the_epoch() -> None:
    assert KEYS.generation(1, "status:created") != KEYS.generation(2, "status:created")
    assert KEYS.generation(1, "status:created").startswith("shop:")
