"""`GET /events`: Server-Sent Events for the production boards.

Frames are written as bytes, and all events waiting for a board go out in one chunk: under
a burst of claims a board costs one write per wake-up, not a chain of hand-offs per event.
"""

import asyncio
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Request
from fastapi.responses import StreamingResponse

from orderflow.kit.errors import Unavailable
from orderflow.kit.redis import REDIS_FAILURES
from orderflow.production.events.fanout import RESYNC, EventFanout
from orderflow.production.events.stream import parse_id

router = APIRouter(tags=["production"])
LastEventId = Annotated[
    str | None,
    Header(
        alias="Last-Event-ID",
        pattern=r"^[0-9]{1,20}-[0-9]{1,20}$",
        description="the id of the last event seen; the events after it are replayed",
    ),
]
SUBSCRIBED = b": subscribed\n\n"  # from here on, nothing is missed
HEARTBEAT = b": heartbeat\n\n"


async def require_fanout(request: Request) -> EventFanout:
    fanout: EventFanout | None = getattr(request.app.state, "fanout", None)
    if fanout is None:
        raise Unavailable("live events need Redis, and none is configured")
    return fanout


@router.get(
    "/events",
    response_class=StreamingResponse,
    responses={
        200: {"content": {"text/event-stream": {}}, "description": "an endless event stream"},
        503: {"description": "No Redis configured, or too many live feeds on this process"},
    },
)
async def events(
    request: Request,
    fanout: Annotated[EventFanout, Depends(require_fanout)],
    last_event_id: LastEventId = None,
) -> StreamingResponse:
    """Claims, releases, completions, queued and cancelled orders, as they happen.

    Each event's id is its Redis stream id. Reconnect with `Last-Event-ID` to get what was
    missed; a `resync` event means that is no longer possible (too old, or more than
    `ORDERFLOW_SSE_REPLAY_MAX` events behind): re-read the lists. A process serves at most
    `ORDERFLOW_SSE_MAX_SUBSCRIBERS` feeds; beyond, 503 with `Retry-After`.
    """
    fanout.admit()
    heartbeat_s: float = request.app.state.resources.settings.sse_heartbeat_s
    frames = _frames(fanout, last_event_id, heartbeat_s)
    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return StreamingResponse(frames, media_type="text/event-stream", headers=headers)


async def _frames(
    fanout: EventFanout, last_event_id: str | None, heartbeat_s: float
) -> AsyncIterator[bytes]:
    # Subscribed when the stream starts, not before: a response that never starts (the client
    # left) leaves no subscription behind to count against `max_subscribers`.
    subscription = fanout.subscribe()
    try:
        yield SUBSCRIBED
        seen = (0, 0)
        if last_event_id is not None:
            replay, seen = await _replay(fanout, last_event_id)
            yield replay
        while True:
            try:
                first = await asyncio.wait_for(subscription.queue.get(), heartbeat_s)
            except TimeoutError:
                yield HEARTBEAT
                continue
            waiting = [first]
            while not subscription.queue.empty():
                waiting.append(subscription.queue.get_nowait())
            if seen != (0, 0):  # skip what the replay already sent
                waiting = [e for e in waiting if not e.id or parse_id(e.id) > seen]
            if waiting:
                yield b"".join(event.frame for event in waiting)
    finally:
        subscription.close()


async def _replay(fanout: EventFanout, last_event_id: str) -> tuple[bytes, tuple[int, int]]:
    """What the board missed since `last_event_id`, or a resync when that cannot be told."""
    try:
        missed = await fanout.missed(last_event_id)
    except REDIS_FAILURES:
        missed = None  # cannot replay now: the board re-reads instead
    if missed is None:
        return RESYNC.frame, (0, 0)
    seen = parse_id(missed[-1].id) if missed else parse_id(last_event_id)
    return b"".join(event.frame for event in missed), seen
