"""`GET /events`: Server-Sent Events for the production boards."""

import asyncio
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Request
from fastapi.sse import EventSourceResponse, ServerSentEvent
from redis.exceptions import RedisError

from orderflow.kit.errors import Unavailable
from orderflow.mes.events.fanout import RESYNC, EventFanout
from orderflow.mes.events.stream import StreamEvent, parse_id

router = APIRouter(tags=["production"])
LastEventId = Annotated[
    str | None,
    Header(
        alias="Last-Event-ID",
        pattern=r"^[0-9]{1,20}-[0-9]{1,20}$",
        description="the id of the last event seen; the events after it are replayed",
    ),
]


def sse(event: StreamEvent) -> ServerSentEvent:
    kind = "resync" if not event.id else event.type
    return ServerSentEvent(raw_data=event.data.decode(), event=kind, id=event.id or None)


def require_fanout(request: Request) -> None:
    if getattr(request.app.state, "fanout", None) is None:
        raise Unavailable("live events need Redis, and none is configured")


@router.get(
    "/events",
    response_class=EventSourceResponse,
    dependencies=[Depends(require_fanout)],
    responses={503: {"description": "No Redis configured"}},
)
async def events(
    request: Request, last_event_id: LastEventId = None
) -> AsyncIterator[ServerSentEvent]:
    """Claims, releases, completions, queued and cancelled orders, as they happen.

    Each event's id is its Redis stream id. Reconnect with `Last-Event-ID` to get what was
    missed; a `resync` event means that is no longer possible: re-read the lists.
    """
    fanout: EventFanout = request.app.state.fanout
    heartbeat_s: float = request.app.state.resources.settings.sse_heartbeat_s
    subscription = fanout.subscribe()
    try:
        yield ServerSentEvent(comment="subscribed")  # from here on, nothing is missed
        seen = (0, 0)
        if last_event_id is not None:
            try:
                missed = await fanout.stream.after(last_event_id)
            except (RedisError, OSError, TimeoutError):
                missed = None  # cannot replay now: the board re-reads instead
            if missed is None:
                yield sse(RESYNC)
            else:
                seen = parse_id(last_event_id)
                for event in missed:
                    seen = parse_id(event.id)
                    yield sse(event)
        while True:
            try:
                event = await asyncio.wait_for(subscription.queue.get(), heartbeat_s)
            except TimeoutError:
                yield ServerSentEvent(comment="heartbeat")
                continue
            if event.id and parse_id(event.id) <= seen:
                continue  # already sent during the replay
            yield sse(event)
    finally:
        subscription.close()
