"""The MES event stream in Redis: what every board hears about claims and the queue.

A Redis stream, not pub/sub: a board that was disconnected asks for what it missed by the
last stream id it saw (`Last-Event-ID`), and the stream still has it unless it is older than
the retained tail, in which case the board is told to resync.
"""

import asyncio
import logging
from dataclasses import dataclass
from functools import cached_property
from typing import Any, cast

import orjson
from redis.asyncio import Redis, RedisCluster
from redis.typing import EncodableT

from orderflow.cache import CircuitBreaker
from orderflow.cache.breaker import Ticket
from orderflow.kit import tracing
from orderflow.kit.redis import REDIS_FAILURES

log = logging.getLogger(__name__)
# Every key of the stream (the stream, the appended-once markers) under one hash tag: one slot,
# so that APPEND_ONCE works on a Redis Cluster as on a single node.
STREAM_KEY = "{mes:events}:v1"
SENT_TTL_MS = 300_000  # how long an event is remembered as appended (see APPEND_ONCE)

# KEYS: the stream, the event's marker. ARGV: maxlen, the marker's TTL in ms, the event's JSON,
# the W3C traceparent of the write that made it ('' if none: a board's push starts no trace).
# An event is one version of one order: announced again (a repair of cache upkeep that may or
# may not have reached the stream), it is not appended twice; the answer is its stream id.
APPEND_ONCE = """
local sent = redis.call('GET', KEYS[2])
if sent then return sent end
local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', 'd', ARGV[3], 't', ARGV[4])
redis.call('SET', KEYS[2], id, 'PX', ARGV[2])
return id
"""
EVENT_TYPES = ("queued", "claimed", "released", "completed", "cancelled")
Rows = list[tuple[bytes, dict[bytes, bytes]]]  # XRANGE's answer: (stream id, fields)


@dataclass(frozen=True)
class StreamEvent:
    id: str  # "" for a resync, which is no event of the stream
    data: bytes  # the event's JSON, ready to send
    traceparent: str = ""  # the trace of the write it announces (kit/tracing.py)

    @property
    def type(self) -> str:
        return str(orjson.loads(self.data)["type"])

    @cached_property
    def frame(self) -> bytes:
        """The event on the wire, built once however many boards it goes to."""
        head = f"id: {self.id}\nevent: {self.type}\n" if self.id else "event: resync\n"
        return head.encode() + b"data: " + self.data + b"\n\n"


def event_body(event_type: str, order: dict[str, Any]) -> bytes:
    body = {
        "type": event_type,
        "order_id": order["id"],
        "operator_id": order["operator_id"],
        "version": order["version"],
        "status": order["status"],
    }
    return orjson.dumps(body)


def sent_key(order: dict[str, Any]) -> str:
    """The marker of one order version's event (a stream id once appended)."""
    return f"{STREAM_KEY}:sent:{order['id']}:{order['version']}"


class EventStream:
    """Appends to and reads from the stream; every call bounded by `timeout_s`.

    Appends share the MES cache's `breaker`: while it is not closed, Redis is known to be
    failing, and an append would only make the committed write wait out the timeout. Boards
    that miss an event catch up from the database: they resync when the stream cannot tell.
    The append never takes the half-open probe, which must bump the cache's epoch first.

    With `probes=True` the breaker is the stream's own (on a Redis Cluster the cache's breakers
    are per shard, and the breaker it was built with is driven by nobody else: shared, it
    would stay open for ever after a failover), and the append takes its half-open probe.
    """

    def __init__(
        self,
        redis: Redis | RedisCluster,
        *,
        maxlen: int = 100_000,
        timeout_s: float = 0.25,
        breaker: CircuitBreaker | None = None,
        probes: bool = False,
    ) -> None:
        self.redis = redis
        self.maxlen = maxlen
        self.timeout_s = timeout_s
        self.breaker = breaker
        self.probes = probes
        self._append_once = redis.register_script(APPEND_ONCE)

    async def publish(self, event_type: str, order: dict[str, Any]) -> str | None:
        """Append one event; None if Redis could not take it (the write still stands).

        Once per order version for `SENT_TTL_MS` (5 min): a repeat gets the first one's id."""
        ticket: Ticket | None = Ticket.CALL
        if self.breaker is not None:
            if self.probes:
                ticket = self.breaker.admit()
            elif self.breaker.state != "closed":
                ticket = None
        if ticket is None:
            log.warning(
                "event %s of order %s not published: Redis is failing", event_type, order["id"]
            )
            return None
        try:
            async with asyncio.timeout(self.timeout_s):
                keys = [STREAM_KEY, sent_key(order)]
                body = event_body(event_type, order)
                args: list[EncodableT] = [
                    self.maxlen,
                    SENT_TTL_MS,
                    body,
                    tracing.traceparent() or "",
                ]
                stream_id = await self._append_once(keys=keys, args=args)
        except REDIS_FAILURES as exc:
            log.warning("event %s of order %s not published: %s", event_type, order["id"], exc)
            if self.breaker is not None:
                self.breaker.failed(ticket)
            return None
        if self.breaker is not None:
            self.breaker.succeeded(ticket)
        return stream_id.decode() if isinstance(stream_id, bytes) else str(stream_id)

    async def after(self, last_id: str, limit: int = 1000) -> list[StreamEvent] | None:
        """Events after `last_id`, oldest first, or None when the stream cannot tell or there
        are more than `limit` of them.

        None means a gap is possible: `last_id` is older than the oldest event retained (the
        tail was trimmed), or newer than the newest (Redis lost the stream, e.g. a restart);
        or it is too far behind to be worth replaying: a board that re-reads its lists costs
        one snapshot, where a replay from the oldest id would read and send up to `maxlen`
        events (100,000) to one request.
        """
        async with asyncio.timeout(self.timeout_s * 4):
            first = cast(Rows, await self.redis.xrange(STREAM_KEY, "-", "+", count=1))
            last = cast(Rows, await self.redis.xrevrange(STREAM_KEY, "+", "-", count=1))
            rows = cast(
                Rows, await self.redis.xrange(STREAM_KEY, f"({last_id}", "+", count=limit + 1)
            )
        if not first or not last or len(rows) > limit:
            return None
        oldest, newest = parse_id(_decode(first[0][0])), parse_id(_decode(last[0][0]))
        if not oldest <= parse_id(last_id) <= newest:
            return None
        return _events(rows)

    async def last_id(self) -> str:
        async with asyncio.timeout(self.timeout_s):
            rows = cast(Rows, await self.redis.xrevrange(STREAM_KEY, "+", "-", count=1))
        return _decode(rows[0][0]) if rows else "0-0"

    async def read(self, last_id: str, block_ms: int) -> list[StreamEvent]:
        """Block up to `block_ms` for events after `last_id`."""
        reply = await self.redis.xread({STREAM_KEY: last_id}, block=block_ms, count=1000)
        result = cast(list[tuple[bytes, Rows]], reply)
        return [event for _, rows in result for event in _events(rows)]


def _events(rows: Rows) -> list[StreamEvent]:
    return [
        StreamEvent(_decode(stream_id), fields[b"d"], _decode(fields.get(b"t", b"")))
        for stream_id, fields in rows
    ]


def _decode(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def parse_id(stream_id: str) -> tuple[int, int]:
    ms, _, seq = stream_id.partition("-")
    return int(ms), int(seq or 0)
