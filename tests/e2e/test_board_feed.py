"""The board's live feed (`/board/events`): a snapshot on connect, a change per claim rendered
for the watching operator, what was missed replayed after Last-Event-ID, a snapshot when the
stream cannot tell."""

from collections.abc import AsyncIterator

import httpx

from orderflow.kit.settings import Settings
from orderflow.relay.relay import Direction
from tests.e2e.test_boards import queue_orders
from tests.sse import Event, parse


async def events(
    url: str, last_event_id: str | None = None, search: str = ""
) -> AsyncIterator[Event]:
    headers = {"Last-Event-ID": last_event_id} if last_event_id else {}
    path = f"{url}/board/events?operator=31" + (f"&q={search}" if search else "")
    async with (
        httpx.AsyncClient(timeout=10) as http,
        http.stream("GET", path, headers=headers) as response,
    ):
        assert response.status_code == 200
        async for event in parse(response.aiter_lines()):
            if event.data:
                yield event


async def first(url: str, last_event_id: str | None = None, search: str = "") -> Event:
    async for event in events(url, last_event_id, search):
        return event
    raise AssertionError("the feed ended")


async def test_snapshot_change_replay_and_resync(
    mes_url: str, settings: Settings, relay: list[Direction]
) -> None:
    order_id = (await queue_orders(settings, relay, 1))[0]
    snapshot = await first(mes_url, search=str(order_id))  # the queue is paged: found by number
    assert snapshot.event == "snapshot" and 'id="queue"' in snapshot.data
    assert f'id="q-{order_id}"' in snapshot.data and snapshot.id

    feed = events(mes_url)
    assert (await anext(feed)).event == "snapshot"
    async with httpx.AsyncClient(base_url=mes_url) as http:
        claimed = await http.post(f"/orders/{order_id}/claim", json={"operator_id": 32})
        assert claimed.status_code == 200
    change = await anext(feed)
    await feed.aclose()
    assert change.event == "change" and change.id
    assert "taken by operator 32" in change.data and f'id="q-{order_id}"' in change.data

    replayed = await first(mes_url, snapshot.id)  # a board back after a short break
    assert replayed.event == "change" and "taken by operator 32" in replayed.data
    assert replayed.id == change.id
    resynced = await first(mes_url, "1-0")  # older than the stream keeps: cannot tell
    assert resynced.event == "snapshot" and f'id="q-{order_id}"' not in resynced.data
