"""`Listing`: a list view that names its members, so that one round trip can serve a page."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

from orderflow.cache.aside import ManyLoader
from orderflow.cache.keys import Entity
from orderflow.cache.ttl import TTLPolicy


@dataclass(frozen=True)
class Listing:
    """A view whose JSON is an object with an `"ids"` array: the integer keys of `members`.

    The view caches which entries a page lists (under its families' generations), the member
    entries cache what they hold; a change to one member rewrites one entry, not every page.
    For `Cache.get_or_load_page` the `"ids"` array must come first (`page_of`).
    """

    view: Entity
    ttl: TTLPolicy
    members: Entity
    members_ttl: TTLPolicy


MembersLoader = Callable[[list[int]], Awaitable[dict[int, tuple[int | None, bytes]]]]
"""Loads a listing's members in one query, given their ids: a dict id -> `(version, JSON
bytes)`, as for `Loader`; it must return every id it is given (raise if a row is gone)."""


def by_index(ids: list[int], load: MembersLoader) -> ManyLoader:
    """`load` as a `ManyLoader` over `ids`: indexes in, indexes out."""

    async def load_indexes(indexes: list[int]) -> dict[int, tuple[int | None, bytes]]:
        loaded = await load([ids[i] for i in indexes])
        return {i: loaded[ids[i]] for i in indexes}

    return load_indexes


class Listed(NamedTuple):
    """A listing read: its view's JSON and its members' bodies."""

    view: bytes
    bodies: list[bytes]


IDS = b'{"ids":['


def page_of(view: bytes, bodies: Sequence[bytes]) -> bytes:
    """A listing's page: its view's JSON with the `"ids"` array, which must come first,
    replaced by `"items"`, the members' bodies: `{"ids":[4,9],"total":20}` becomes
    `{"items":[<4>,<9>],"total":20}`: the bodies as stored, nothing decoded or encoded."""
    if not view.startswith(IDS):
        raise ValueError(f"a page's view must start with {IDS!r}: {view[:40]!r}")
    return b'{"items":[' + b",".join(bodies) + view[view.index(b"]") :]
