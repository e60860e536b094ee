"""The stored entry format at its edges (the basic round trip is in tests/cache/test_pieces.py)."""

import pytest

from orderflow.cache import entry


@pytest.mark.parametrize(
    ("version", "payload"),
    [
        (0, b"{}"),
        (2**63 - 1, b'{"id":1}'),
        (5, b"|"),
        (5, b"||x||"),
        (5, "é ü 😀".encode()),
        (5, b"\x00\xff"),
    ],
)
def test_any_version_and_payload_round_trip(version: int, payload: bytes) -> None:
    stored = entry.encode(version, payload)
    assert entry.decode(stored) == (version, payload)
    assert entry.body(stored) == payload
    assert not entry.decode(stored).is_tombstone


def test_a_tombstone_keeps_its_version_and_has_no_body() -> None:
    stored = entry.tombstone(9)
    decoded = entry.decode(stored)
    assert decoded.version == 9
    assert decoded.is_tombstone
    assert entry.body(stored) == b""


def test_tombstones_and_values_of_one_version_differ() -> None:
    assert entry.tombstone(3) != entry.encode(3, b"x")


@pytest.mark.parametrize("raw", [b"", b"42", b"x|{}", b"|{}", b"4.2|{}"])
def test_a_malformed_entry_is_a_value_error(raw: bytes) -> None:
    with pytest.raises(ValueError, match=r"not a cache entry|invalid literal for int"):
        entry.decode(raw)
