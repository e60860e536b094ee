"""Order ids carry their client's Redis Cluster slot (docs/caching.md, "A client on one shard")."""

import pytest
from redis.crc import key_slot

from orderflow.cache import SLOTS, KeySpace
from orderflow.cache.layout import slot_tags
from orderflow.sales.caching import CLIENT_ORDER_VIEW, ORDER, client_family, order_id


@pytest.mark.parametrize(("number", "client_id"), [(1, 1), (49, 42), (10**6, 50_000)])
def test_an_order_lives_in_its_client_s_slot_on_a_cluster(number: int, client_id: int) -> None:
    oid = order_id(number, client_id)
    assert oid // SLOTS == number  # the sequence's number, kept whole
    cluster = KeySpace("shop", slot_tags())
    families = [client_family(client_id)]
    list_page = "".join(cluster.view_entry(CLIENT_ORDER_VIEW, 3, (client_id,), families))
    assert key_slot(cluster.entry(ORDER, 3, oid).encode()) == key_slot(list_page.encode())


def test_on_one_node_an_order_s_key_is_tagged_by_its_id_as_before() -> None:
    assert KeySpace("shop").entry(ORDER, 3, 810794) == "shop:order:v1:e3:{810794}"
    assert KeySpace("shop", slot_tags()).entry(ORDER, 3, 810794) == "shop:order:v1:e3:{1451}:810794"
