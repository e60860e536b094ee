"""Redis stream ids as the MES event stream compares them (Last-Event-ID, replay cut-offs)."""

import pytest

from orderflow.production.events.stream import StreamEvent, event_body, parse_id


@pytest.mark.parametrize(
    ("raw", "parsed"),
    [
        ("1700000000000-0", (1700000000000, 0)),
        ("1700000000000-15", (1700000000000, 15)),
        ("0-0", (0, 0)),
        ("0-1", (0, 1)),
        ("5", (5, 0)),  # Redis accepts a bare millisecond time: sequence 0
        ("18446744073709551615-18446744073709551615", (2**64 - 1, 2**64 - 1)),
    ],
)
def test_parse_id(raw: str, parsed: tuple[int, int]) -> None:
    assert parse_id(raw) == parsed


def test_ids_compare_as_numbers_not_strings() -> None:
    assert "9-0" > "10-0"  # as strings ...
    assert parse_id("9-0") < parse_id("10-0")  # ... but 9 ms comes first
    assert parse_id("5-9") < parse_id("5-10")
    assert parse_id("5-10") < parse_id("6-0")
    assert parse_id("5") == parse_id("5-0")


@pytest.mark.parametrize("raw", ["", "-", "abc", "1-x", "x-1", "-1", "1.5-0"])
def test_a_malformed_id_is_a_value_error(raw: str) -> None:
    with pytest.raises(ValueError, match="invalid literal for int"):
        parse_id(raw)


def test_an_event_frame_carries_its_stream_id_and_type() -> None:
    order = {"id": 7, "operator_id": 3, "version": 2, "status": "in_progress"}
    event = StreamEvent("1700000000000-1", event_body("claimed", order))
    assert event.type == "claimed"
    head, data = event.frame.split(b"data: ")
    assert head == b"id: 1700000000000-1\nevent: claimed\n"
    assert data.endswith(b"\n\n")
    assert b'"order_id":7' in data and b'"status":"in_progress"' in data


def test_a_resync_frame_has_no_id() -> None:
    """An id would make the board send it back as Last-Event-ID: it is no stream event."""
    frame = StreamEvent("", b'{"type":"resync"}').frame
    assert frame == b'event: resync\ndata: {"type":"resync"}\n\n'
