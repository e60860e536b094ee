"""The claiming phase: boards subscribed, operators warmed up, then N operators claiming
random orders from their view until all Q are taken or the time is up."""

from __future__ import annotations

import asyncio
import contextlib
import math
import random
import time
from collections import Counter
from dataclasses import dataclass, field

import httpx

from perf.bench.claims.board import Board
from perf.bench.claims.data import Dataset
from perf.bench.claims.params import Params
from perf.bench.claims.view import QueueView
from perf.common import CpuMeter, CpuUse, log

# Once the operators are done, boards still catching up get this long without a new event
# (and at most CATCH_UP_MAX_S in all) before what they lack counts as missed.
STALL_S = 5.0
CATCH_UP_MAX_S = 60.0


@dataclass
class Attempt:
    order_id: int
    operator_id: int
    process: int
    sent: float
    received: float
    status: int  # 0: no HTTP answer (connection error or timeout)
    holder: int | None = None
    error: str | None = None


@dataclass
class Load:
    """Everything the claiming phase shares: the view, the boards, the attempts."""

    params: Params
    urls: list[str]
    view: QueueView
    deadline: float = math.inf
    attempts: list[Attempt] = field(default_factory=list)
    boards: list[Board] = field(default_factory=list)
    started: float = 0.0
    finished: float = 0.0
    # time.time() - time.perf_counter(): turns a stream id's ms (Redis's wall clock, the same
    # as ours when Redis runs on this machine) into perf_counter time.
    wall_offset: float = 0.0
    loop_lag: list[float] = field(default_factory=list)
    cpu: CpuUse | None = None  # during the claims

    def successes(self) -> list[Attempt]:
        return [a for a in self.attempts if a.status == 200]


async def operator(
    load: Load, http: httpx.AsyncClient, operator_id: int, process: int, rng: random.Random
) -> None:
    """Claim random orders from the view until every order is taken or time is up."""
    url = load.urls[process]
    while time.perf_counter() < load.deadline:
        order_id = load.view.pick(rng)
        if order_id is None:
            if load.view.done:
                return
            # The rest are in flight; one that fails comes back to the view.
            await load.view.wait_for_change(load.deadline - time.perf_counter())
            continue
        body = {"operator_id": operator_id}
        sent = time.perf_counter()
        try:
            response = await http.post(f"{url}/orders/{order_id}/claim", json=body)
        except httpx.HTTPError as exc:
            attempt = Attempt(order_id, operator_id, process, sent, time.perf_counter(), 0)
            attempt.error = repr(exc)
        else:
            attempt = Attempt(order_id, operator_id, process, sent, time.perf_counter(), 0)
            attempt.status = response.status_code
            if response.status_code == 409:
                attempt.holder = response.json().get("holder")
            elif response.status_code != 200:
                attempt.error = response.text[:200]
        load.attempts.append(attempt)
        if attempt.status in (200, 409):
            load.view.take(order_id)
        else:
            load.view.retry(order_id)


async def warm_up(http: httpx.AsyncClient, url: str, order_id: int) -> None:
    """Open the operator's keep-alive connection and grow the server's database pool."""
    response = await http.get(f"{url}/orders/{order_id}")
    response.raise_for_status()


async def report_progress(load: Load) -> None:
    """One line a second while the operators work."""
    total = load.params.orders
    while True:
        await asyncio.sleep(1.0)
        statuses = Counter(a.status for a in load.attempts)
        elapsed = time.perf_counter() - load.started
        seen = sum(len(b.claimed) for b in load.boards)
        log(
            f"  {elapsed:5.1f}s  claimed {statuses[200]:>6}/{total}"
            f"  attempts {len(load.attempts):>6}  409 {statuses[409]:>5}"
            f"  other {len(load.attempts) - statuses[200] - statuses[409]}"
            f"  board events {seen}/{statuses[200] * len(load.boards)}"
            f"  {statuses[200] / elapsed:7.0f} claims/s"
        )


async def watch_loop_lag(load: Load, tick_s: float = 0.01) -> None:
    """How late this process's event loop wakes up: a delay every board timestamp includes."""
    while True:
        before = time.perf_counter()
        await asyncio.sleep(tick_s)
        load.loop_lag.append(time.perf_counter() - before - tick_s)


async def wait_for_boards(load: Load) -> None:
    """Let the boards receive the events still on their way before counting what they missed:
    as long as they make progress (a busy MES process delivers late, not never)."""
    winners = {a.order_id for a in load.successes()}
    deadline = time.perf_counter() + CATCH_UP_MAX_S
    seen, last_progress = -1, time.perf_counter()
    while time.perf_counter() < min(deadline, last_progress + STALL_S):
        if all(winners <= b.claimed.keys() for b in load.boards):
            return
        now_seen = sum(len(b.claimed) for b in load.boards)
        if now_seen != seen:
            seen, last_progress = now_seen, time.perf_counter()
        await asyncio.sleep(0.05)


async def run_load(params: Params, urls: list[str], dataset: Dataset, meter: CpuMeter) -> Load:
    """Boards subscribed, operators warmed up, then claims until all Q are taken; `meter`
    measures the claims."""
    load = Load(params, urls, QueueView(dataset.order_ids))
    k = len(urls)
    load.boards = [Board(j, j % k, urls[j % k], load.view.take) for j in range(params.boards)]
    # One client and one keep-alive connection per operator, like one terminal each. A
    # shared pool would cost O(connections) of client CPU per request (encode/httpx#3215),
    # CPU taken from the servers on this machine.
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    async with contextlib.AsyncExitStack() as stack:
        clients = [
            await stack.enter_async_context(httpx.AsyncClient(timeout=30.0, limits=limits))
            for _ in range(params.operators)
        ]
        try:
            await asyncio.gather(*(board.connect() for board in load.boards))
            log(f"{len(load.boards)} boards subscribed; warming up {params.operators} operators")
            await asyncio.gather(
                *(
                    warm_up(http, urls[i % k], dataset.order_ids[i % params.orders])
                    for i, http in enumerate(clients)
                )
            )
            await claim_all(load, clients, dataset, meter)
            await wait_for_boards(load)
        finally:
            for board in load.boards:
                await board.close()
    return load


async def claim_all(
    load: Load, clients: list[httpx.AsyncClient], dataset: Dataset, meter: CpuMeter
) -> None:
    params = load.params
    log(f"claiming {params.orders} orders with {params.operators} operators")
    meter.start()
    load.started = time.perf_counter()
    load.wall_offset = time.time() - load.started
    load.deadline = load.started + params.seconds
    progress = asyncio.create_task(report_progress(load))
    lag = asyncio.create_task(watch_loop_lag(load))
    try:
        await asyncio.gather(
            *(
                operator(
                    load,
                    clients[i],
                    op_id,
                    i % len(load.urls),
                    random.Random(params.seed * 7919 + i),
                )
                for i, op_id in enumerate(dataset.operator_ids)
            )
        )
    finally:
        load.finished = time.perf_counter()
        load.cpu = meter.stop()
        progress.cancel()
        lag.cancel()
    if not load.view.done:
        log(f"time cap of {params.seconds:g}s reached with orders still queued")
