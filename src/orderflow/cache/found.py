"""What a lookup found: the replies of `Store`, and the keys they are about."""

from __future__ import annotations

import enum
from collections.abc import Sequence
from typing import Any, Literal, NamedTuple


class Pinned(NamedTuple):
    """An entry's key, built in the epoch its slot had when it was built (`Store.pin`)."""

    key: str
    slot: int
    epoch: int


class Miss(enum.Enum):
    """Why a lookup found no value, and what the caller should do about it."""

    LEASED = "leased"  # this caller holds the lease: load, fill (which releases it)
    BUSY = "busy"  # another caller holds it: load without filling, or wait for its fill
    MOVED = "moved"  # the epoch moved (now adopted): load, but do not fill the old key


class Busy(NamedTuple):
    """Another caller holds the lease: `holder` is its token ('' if it just went away)."""

    holder: str


Found = bytes | Literal[Miss.LEASED, Miss.BUSY]  # one entry of a batch lookup


class ViewHit(NamedTuple):
    """A view's stored entry, and its members' (bytes, or how they missed) if looked up."""

    raw: bytes
    members: list[Found] | None
    epoch: int = 0  # the epoch the members were looked up in (one node: the only slot's)


class ViewMiss(NamedTuple):
    """A view not stored: the key to load into (its generations may move before the fill),
    and whether this caller got its lease."""

    key: Pinned
    lease: Literal[Miss.LEASED] | Busy


Fill = tuple[Pinned, int, bytes, int]  # key, version, payload, ttl_ms


def entry_found(reply: Any) -> Found:
    """One entry's reply to a lookup: its bytes, or how it missed."""
    if isinstance(reply, bytes):
        return reply
    return Miss.LEASED if reply == 1 else Miss.BUSY


def by_slot(pins: Sequence[Pinned]) -> list[tuple[int, list[tuple[int, Pinned]]]]:
    """`pins` with their indexes, grouped by slot (and epoch: one script checks one)."""
    groups: dict[tuple[int, int], list[tuple[int, Pinned]]] = {}
    for i, pin in enumerate(pins):
        groups.setdefault((pin.slot, pin.epoch), []).append((i, pin))
    return [(slot, group) for (slot, _), group in groups.items()]


def text(reply: Any) -> str:
    return str(reply, "utf-8") if isinstance(reply, bytes) else ""
