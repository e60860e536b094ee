"""Spans gathered from every process of the platform, on demand, for `/admin/traces`.

Each process keeps its own spans in memory (`kit/trace_buffer.py`); nothing is sent anywhere
while nobody looks. A trace page asks every process at once over Redis, with the broadcast the
cache switch already uses (`service_cache/broadcast.py`): each process that listens (every API
worker, the relay) pushes its answer onto a reply list, then acknowledges; the broadcast returns
once every registered process has answered, and the page reads the list.

Why this way: the spans of one order are spread over the Shop, the CRM, the MES, the relay and,
with `--workers N`, over N processes behind one port each, on one machine or several. Peers'
URLs could not reach a given worker behind a shared port; a collector process would be one more
thing to run. Every process already holds a Redis connection and listens to broadcasts.
Without Redis, a page shows the spans of the process that serves it.
"""

import asyncio
import logging
import os
import socket
import uuid
from typing import Any

import orjson

from orderflow.kit import tracing
from orderflow.kit.redis import REDIS_FAILURES
from orderflow.kit.settings import Settings
from orderflow.service_cache.broadcast import Broadcast

log = logging.getLogger(__name__)
CHANNEL = "traces"
REPLY_TTL_MS = 30_000
PROCESS = f"{socket.gethostname()}:{os.getpid()}"


class TraceGather:
    def __init__(self, settings: Settings) -> None:
        self.bus: Broadcast | None = None
        if settings.redis_url and tracing.enabled():
            self.bus = Broadcast(
                settings.redis_url, CHANNEL, self._answer, cluster=settings.redis_cluster
            )

    def start(self) -> None:
        if self.bus is not None:
            self.bus.start()

    async def stop(self) -> None:
        if self.bus is not None:
            await self.bus.stop()

    async def ask(self, question: dict[str, Any]) -> list[Any]:
        """Every process's answer to `question` (one per process, this one's at least)."""
        answers = {PROCESS: local_answer(question)}
        if self.bus is None:
            return list(answers.values())
        reply = f"{{{CHANNEL}}}:reply:{uuid.uuid4().hex}"
        try:
            await self.bus.send(orjson.dumps({**question, "reply": reply}).decode())
            async with asyncio.timeout(2):
                raw = await self.bus.redis.lrange(reply, 0, -1)
                await self.bus.redis.delete(reply)
        except REDIS_FAILURES as exc:
            log.warning("traces of other processes not gathered: %r", exc)
            return list(answers.values())
        for item in raw:
            process, answer = orjson.loads(item)
            answers.setdefault(process, answer)  # several services of one process: one answer
        return list(answers.values())

    async def _answer(self, message: str) -> None:
        question = orjson.loads(message)
        reply = question.pop("reply")
        assert self.bus is not None
        async with asyncio.timeout(2):
            await self.bus.redis.rpush(reply, orjson.dumps([PROCESS, local_answer(question)]))
            await self.bus.redis.pexpire(reply, REPLY_TTL_MS)


def local_answer(question: dict[str, Any]) -> Any:
    """`{"find": order id or None, "limit": n, "first": trace id or None}`: summaries of the
    latest traces (about that order; that trace first); `{"spans": [trace ids]}`: every span
    of those traces. From this process's buffer."""
    spans = tracing.buffer()
    if spans is None:
        return []
    if "spans" in question:
        return spans.spans_of(question["spans"])
    limit = int(question.get("limit", 50))
    return spans.summaries(question.get("find"), limit, question.get("first"))
