"""A closed-loop HTTP/1.1 load generator in pure Python (asyncio streams on uvloop).

Each of C keep-alive connections sends one prebuilt GET, reads the status line, the headers
and exactly Content-Length body bytes, records the latency, and sends the next: a closed
loop, so the offered load adapts to the server and the latency is the server's answer time
(plus this client's own overhead, which `perf.bench.reads` measures first against a trivial
server). It runs in its own process pinned to one core (`LoadWorker`), so that it never
competes with the server under test for the same CPU.

No third-party HTTP client on purpose: httpx or aiohttp cost more per request than the
server under test, and would become the bottleneck.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing as mp
import os
import time
from collections import Counter
from dataclasses import dataclass, field, fields
from multiprocessing.connection import Connection
from typing import Any

from perf.common import percentile

CONTENT_LENGTH = b"\r\ncontent-length:"


@dataclass(frozen=True)
class Job:
    """One measurement: `requests` are walked in order, each connection from its own offset."""

    host: str
    port: int
    paths: list[str]
    connections: int = 32
    seconds: float = 10.0

    def request_bytes(self) -> list[bytes]:
        """Every request prebuilt once; repeated paths share one bytes object."""
        built: dict[str, bytes] = {}
        host = f"{self.host}:{self.port}"
        for path in self.paths:
            if path not in built:
                built[path] = f"GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()
        return [built[p] for p in self.paths]


@dataclass
class Result:
    """What one job measured. Latencies in milliseconds; `rps` counts 2xx answers only.

    `samples` keeps every latency (seconds, ascending) so that slices of one variant's
    measurement can be merged into one distribution (`merge`); `to_dict` leaves them out.
    """

    requests: int
    errors: int
    elapsed_s: float
    rps: float
    mean_ms: float
    p50_ms: float
    p99_ms: float
    p999_ms: float
    max_ms: float
    statuses: dict[int, int] = field(default_factory=dict)
    samples: list[float] = field(default_factory=list, repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "samples"}


class ProtocolError(Exception):
    """The server's answer is not something this minimal client understands."""


def _parse_head(head: bytes) -> tuple[int, int]:
    """Status code and Content-Length of a response head (ending in a blank line)."""
    status = int(head[9:12])
    at = head.lower().find(CONTENT_LENGTH)
    if at < 0:  # chunked or close-delimited bodies are not used by the endpoints we measure
        raise ProtocolError(f"no Content-Length in {head[:200]!r}")
    end = head.index(b"\r\n", at + 2)
    return status, int(head[at + len(CONTENT_LENGTH) : end])


async def _connection(
    job: Job,
    requests: list[bytes],
    offset: int,
    start: asyncio.Event,
    deadline: list[float],
    latencies: list[float],
    statuses: Counter[int],
) -> None:
    """One keep-alive connection: send, read the whole answer, repeat until the deadline."""
    reader, writer = await asyncio.open_connection(job.host, job.port)
    n, i = len(requests), offset
    clock = time.perf_counter
    try:
        await start.wait()  # every connection is open before the clock starts
        while clock() < deadline[0]:
            request = requests[i]
            i = i + 1 if i + 1 < n else 0
            began = clock()
            writer.write(request)  # no drain(): one small request in flight at a time
            status, length = _parse_head(await reader.readuntil(b"\r\n\r\n"))
            if length:
                await reader.readexactly(length)
            latencies.append(clock() - began)
            statuses[status] += 1
    finally:
        writer.close()


async def run(job: Job) -> Result:
    """Run `job` in the current event loop and summarise it."""
    requests = job.request_bytes()
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    start, deadline = asyncio.Event(), [0.0]
    step = max(1, len(requests) // job.connections)
    tasks = [
        asyncio.create_task(
            _connection(
                job, requests, (c * step) % len(requests), start, deadline, latencies, statuses
            )
        )
        for c in range(job.connections)
    ]
    await asyncio.sleep(0.2)  # let the connections open (a failed connect shows in gather)
    began = time.perf_counter()
    deadline[0] = began + job.seconds
    start.set()
    await asyncio.gather(*tasks)
    return summarise(latencies, statuses, time.perf_counter() - began)


def merge(results: list[Result]) -> Result:
    """One result from slices of the same measurement taken at different times."""
    statuses: Counter[int] = Counter()
    for r in results:
        statuses.update(r.statuses)
    samples = [s for r in results for s in r.samples]
    return summarise(samples, statuses, sum(r.elapsed_s for r in results))


def summarise(latencies: list[float], statuses: Counter[int], elapsed_s: float) -> Result:
    ordered = sorted(latencies)
    ok = sum(n for code, n in statuses.items() if 200 <= code < 300)
    ms = 1000.0
    return Result(
        requests=len(ordered),
        errors=len(ordered) - ok,
        elapsed_s=elapsed_s,
        rps=ok / elapsed_s if elapsed_s else 0.0,
        mean_ms=sum(ordered) / len(ordered) * ms if ordered else float("nan"),
        p50_ms=percentile(ordered, 50) * ms,
        p99_ms=percentile(ordered, 99) * ms,
        p999_ms=percentile(ordered, 99.9) * ms,
        max_ms=(ordered[-1] if ordered else float("nan")) * ms,
        statuses=dict(statuses),
        samples=ordered,
    )


def _worker(pipe: Connection, cpu: int | None) -> None:
    """The load process: pin, then run the jobs it receives until it receives None."""
    import uvloop  # imported here: only the worker process needs it

    if cpu is not None:
        os.sched_setaffinity(0, {cpu})
    while (job := pipe.recv()) is not None:
        try:
            pipe.send(uvloop.run(run(job)))
        except Exception as exc:  # noqa: BLE001  reported to the parent, which decides
            pipe.send(exc)


class LoadWorker:
    """A long-lived load-generating process pinned to `cpu`; `run(job)` blocks until done."""

    def __init__(self, cpu: int | None) -> None:
        ctx = mp.get_context("spawn")  # a fresh interpreter: no state inherited from the parent
        self._pipe, child = ctx.Pipe()
        self._proc = ctx.Process(target=_worker, args=(child, cpu), name="loadgen", daemon=True)
        self._proc.start()

    @property
    def pid(self) -> int:
        assert self._proc.pid is not None
        return self._proc.pid

    def run(self, job: Job) -> Result:
        self._pipe.send(job)
        answer = self._pipe.recv()
        if isinstance(answer, Exception):
            raise answer
        result: Result = answer
        return result

    def close(self) -> None:
        if self._proc.is_alive():
            with contextlib.suppress(OSError):  # it died (Ctrl-C reaches it too): see below
                self._pipe.send(None)
            self._proc.join(5)
        if self._proc.is_alive():
            self._proc.terminate()
            self._proc.join(5)
