"""`page_of`: a listing's page from its view and its members' bodies."""

import orjson
import pytest

from orderflow.cache import page_of


@pytest.mark.parametrize(
    ("ids", "rest"),
    [([], {"total": 0}), ([7], {"total": 1}), ([3, 1, 2], {"total": 40, "next": "x]y"})],
)
def test_the_ids_become_the_members_bodies_and_the_rest_stays(
    ids: list[int], rest: dict[str, object]
) -> None:
    view = orjson.dumps({"ids": ids, **rest})
    bodies = [orjson.dumps({"id": i, "note": "[]"}) for i in ids]
    page = page_of(view, bodies)
    assert orjson.loads(page) == {"items": [orjson.loads(b) for b in bodies], **rest}
    assert page.startswith(b'{"items":[')


def test_a_view_whose_ids_do_not_come_first_is_refused() -> None:
    with pytest.raises(ValueError, match="must start with"):
        page_of(orjson.dumps({"total": 1, "ids": [1]}), [b"{}"])
