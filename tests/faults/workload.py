"""Clients, sellers and operators that behave as real ones do while faults are injected.

A request that got no answer, or a 503, is retried (with the same Idempotency-Key for orders)
until it is answered or its deadline passes; every attempt is recorded in the history.
"""

import asyncio
import random
import time
import uuid
from typing import Any

import httpx

from tests.faults.history import Call, History
from tests.faults.platform import VOLUMES, FaultPlatform

RETRY_FOR_S = 20.0  # longer than any fault we inject: an order is never given up on


class Workload:
    def __init__(self, platform: FaultPlatform, history: History, seed: int = 1) -> None:
        self.platform = platform
        self.history = history
        self.rng = random.Random(seed)
        self.http = httpx.AsyncClient(timeout=10, limits=httpx.Limits(max_connections=200))
        self.created: list[int] = []  # acknowledged, still to be confirmed
        self.known: list[int] = []  # every acknowledged order id

    async def call(self, service: str, method: str, path: str, **kw: Any) -> Call:
        started = time.monotonic()
        try:
            response = await self.http.request(method, f"{self.platform.url(service)}{path}", **kw)
        except httpx.HTTPError:
            call = Call(service, method, path, started, time.monotonic(), None)
        else:
            problem = response.headers.get("content-type") == "application/problem+json"
            body = response.json() if response.content else None
            call = Call(
                service,
                method,
                path,
                started,
                time.monotonic(),
                response.status_code,
                body,
                problem,
            )
        self.history.calls.append(call)
        return call

    async def retried(self, service: str, method: str, path: str, **kw: Any) -> Call:
        """Until answered with something other than 503, or RETRY_FOR_S passed."""
        deadline = time.monotonic() + RETRY_FOR_S
        while True:
            call = await self.call(service, method, path, **kw)
            if (call.status not in (None, 503)) or time.monotonic() > deadline:
                return call
            await asyncio.sleep(0.1)

    async def client(self, until: asyncio.Event) -> None:
        while not until.is_set():
            key = uuid.uuid4().hex
            body = {
                "client_id": self.rng.randint(1, VOLUMES.clients),
                "lines": [
                    {
                        "item_id": self.rng.randint(1, VOLUMES.items),
                        "quantity": self.rng.randint(1, 5),
                    }
                    for _ in range(self.rng.randint(1, 3))
                ],
            }
            self.history.requested[key] = body
            call = await self.retried(
                "shop", "POST", "/orders", json=body, headers={"Idempotency-Key": key}
            )
            if call.status in (200, 201):
                self.history.placed[key] = call.body
                self.history.acked("order", call.body)
                self.created.append(call.body["id"])
                self.known.append(call.body["id"])
                await self.read_order(call.body["id"])

    async def read_order(self, order_id: int) -> None:
        for service in ("shop", "crm"):
            started = time.monotonic()
            call = await self.call(service, "GET", f"/orders/{order_id}")
            if call.status == 200:
                self.history.read("order", started, call.body)

    async def seller(self, until: asyncio.Event) -> None:
        while not until.is_set():
            if not self.created:
                await asyncio.sleep(0.05)
                continue
            oid = self.created.pop(self.rng.randrange(len(self.created)))
            call = await self.retried("crm", "POST", f"/orders/{oid}/confirm")
            if call.status == 200:
                self.history.acked("order", call.body)
                self.history.confirmed.add(oid)
            elif call.status == 409 and call.body.get("order_status") != "created":
                self.history.confirmed.add(oid)  # an unanswered attempt went through
            await self.read_order(oid)

    async def profile_editor(self, until: asyncio.Event) -> None:
        """Clients are cache-aside, invalidated on every change: the next read must show it."""
        while not until.is_set():
            cid = self.rng.randint(1, VOLUMES.clients)
            name = f"Client {uuid.uuid4().hex[:8]}"
            call = await self.retried("shop", "PATCH", f"/clients/{cid}", json={"name": name})
            if call.status == 200:
                self.history.acked("client", call.body)
            await self.read_kind("shop", "client", f"/clients/{cid}")

    async def catalogue_editor(self, until: asyncio.Event) -> None:
        """Items are cache-aside (and near-cached): a seller's edit, then Shop reads of it."""
        while not until.is_set():
            iid = self.rng.randint(1, VOLUMES.items)
            body = {
                "name": f"Item {iid}",
                "category": "Faults",
                "price": self.rng.randint(100, 999),
            }
            call = await self.retried("crm", "PUT", f"/items/{iid}", json=body)
            if call.status == 200:
                self.history.acked("item", call.body)
            for _ in range(3):
                await self.read_kind("shop", "item", f"/items/{iid}")
            await asyncio.sleep(0.05)

    async def read_kind(self, service: str, kind: str, path: str) -> None:
        started = time.monotonic()
        call = await self.call(service, "GET", path)
        if call.status == 200:
            self.history.read(kind, started, call.body)

    async def reader(self, until: asyncio.Event) -> None:
        while not until.is_set():
            if self.known:
                await self.read_order(self.rng.choice(self.known))
            else:
                await asyncio.sleep(0.05)

    async def operator(self, operator_id: int, until: asyncio.Event) -> None:
        while not until.is_set():
            board = await self.call(
                "mes", "GET", "/orders", params={"status": "queued", "limit": 20}
            )
            if board.status != 200 or not board.body["items"]:
                await asyncio.sleep(0.1)
                continue
            oid = self.rng.choice(board.body["items"])["id"]
            action = {"operator_id": operator_id}
            claim = await self.retried("mes", "POST", f"/orders/{oid}/claim", json=action)
            if not self._mine(claim, operator_id):
                continue
            if claim.status == 200:
                self.history.acked("production", claim.body)
            done = await self.retried("mes", "POST", f"/orders/{oid}/complete", json=action)
            if done.status == 200:
                self.history.acked("production", done.body)
                self.history.completed.add(oid)
            elif done.status == 409 and done.body.get("order_status") == "done":
                self.history.completed.add(oid)  # an unanswered attempt went through
            started = time.monotonic()
            read = await self.call("mes", "GET", f"/orders/{oid}")
            if read.status == 200:
                self.history.read("production", started, read.body)

    @staticmethod
    def _mine(claim: Call, operator_id: int) -> bool:
        if claim.status == 200:
            return True
        # A retried claim whose first attempt won answers 409 naming us as the holder.
        return claim.status == 409 and (claim.body or {}).get("holder") == operator_id

    async def run(
        self, until: asyncio.Event, *, clients: int = 8, sellers: int = 2, operators: int = 6
    ) -> None:
        """Load from every role until `until` is set."""
        async with self.http:
            await asyncio.gather(
                *(self.client(until) for _ in range(clients)),
                *(self.seller(until) for _ in range(sellers)),
                *(self.reader(until) for _ in range(2)),
                self.profile_editor(until),
                self.catalogue_editor(until),
                *(self.operator(op, until) for op in range(1, operators + 1)),
            )
