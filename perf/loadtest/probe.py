"""An open-model probe: requests at a constant arrival rate, each sent at its scheduled time
whether or not the earlier ones have answered, latency measured from that scheduled time (so a
slow server cannot slow the sender down and hide its own queueing: no coordinated omission)."""

from __future__ import annotations

import math
import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import gevent
import orjson
from gevent.pool import Pool
from geventhttpclient import HTTPClient

from perf.loadtest import config as g
from perf.loadtest.users import SHARED, STATUSES

MAX_OUTSTANDING = 2_000  # beyond this many unanswered requests a send is counted as dropped
TIMEOUT_S = 10.0


@dataclass(frozen=True, slots=True)
class ProbeSample:
    mode: str
    endpoint: str
    scheduled_s: float  # since the probe of this endpoint began
    latency_ms: float  # answer received - scheduled send time; NaN: dropped, never sent
    send_lag_ms: float  # actual send - scheduled send (the sender's own lateness)
    status: int  # 0: connection error, timeout or dropped

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


@dataclass(frozen=True)
class Endpoint:
    group: str  # a config group name: its SLA class applies
    service: str
    method: str
    request: Callable[[random.Random, int], tuple[str, bytes | None]]  # (path, body)


def _page(rng: random.Random, _: int) -> tuple[str, None]:
    category, offset = rng.choice(SHARED.categories), 20 * (SHARED.pages.draw(rng) - 1)
    return f"/items?category={category}&limit=20&offset={offset}", None


def _order(rng: random.Random, client_id: int) -> tuple[str, bytes]:
    line = {"item_id": SHARED.items.draw(rng), "quantity": 1}
    return "/orders", orjson.dumps({"client_id": client_id, "lines": [line]})


ENDPOINTS = (
    Endpoint(g.ITEM, "shop", "GET", lambda rng, _: (f"/items/{SHARED.items.draw(rng)}", None)),
    Endpoint(g.CATALOGUE, "shop", "GET", _page),
    Endpoint(g.BY_STATUS, "crm", "GET",
             lambda rng, _: (f"/orders?status={rng.choice(STATUSES)}&limit=20", None)),
    Endpoint(g.COUNTS, "crm", "GET", lambda rng, _: ("/orders/stats", None)),
    Endpoint(g.QUEUE, "mes", "GET", lambda rng, _: ("/orders?status=queued&limit=20", None)),
    Endpoint(g.PLACE, "shop", "POST", _order),  # last: its writes keep the relay busy a while
)  # fmt: skip


def _send(http: HTTPClient, ep: Endpoint, path: str, body: bytes | None) -> int:
    headers: dict[str, Any] = {}
    if body is not None:
        headers = {"content-type": "application/json", "Idempotency-Key": uuid.uuid4().hex}
    try:
        with gevent.Timeout(TIMEOUT_S), http.request(ep.method, path, body, headers) as resp:
            resp.read()
            return int(resp.status_code)
    except (gevent.Timeout, Exception):  # noqa: BLE001 - any failure is a status 0
        return 0


def probe(
    mode: str,
    ep: Endpoint,
    base_url: str,
    rate: float,
    seconds: float,
    client_id: int,
    stopping: Callable[[], bool],
) -> list[ProbeSample]:
    """`rate` requests a second for `seconds`, then at most TIMEOUT_S for the stragglers."""
    rng = random.Random(7)
    samples: list[ProbeSample] = []
    pool = Pool(MAX_OUTSTANDING)
    http = HTTPClient.from_url(
        base_url, concurrency=256, connection_timeout=5.0, network_timeout=TIMEOUT_S
    )
    start = time.perf_counter()

    def one(due: float, path: str, body: bytes | None) -> None:
        lag, status = time.perf_counter() - due, 0
        try:
            status = _send(http, ep, path, body)
        finally:  # also when killed after the grace period: then it counts as a failure
            done = time.perf_counter()
            latency_ms = (done - due) * 1000
            samples.append(ProbeSample(mode, ep.group, due - start, latency_ms, lag * 1000, status))

    try:
        for i in range(int(rate * seconds)):
            due = start + i / rate
            if (wait := due - time.perf_counter()) > 0:
                gevent.sleep(wait)
            if stopping():
                break
            path, body = ep.request(rng, client_id)
            if pool.full():
                samples.append(
                    ProbeSample(mode, ep.group, due - start, math.nan, 0.0, 0)
                )  # dropped
                continue
            pool.spawn(one, due, path, body)
        pool.join(timeout=TIMEOUT_S + 1)
        pool.kill(block=True, timeout=2)
    finally:
        http.close()
    return samples
