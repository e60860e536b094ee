"""Clients, sellers and operators that behave as real ones do while faults are injected.

A request that got no answer, or a 503, is retried (with the same Idempotency-Key for orders)
until it is answered or its deadline passes; every attempt is recorded in the history. What an
answer reports (a body, or a 409 naming the current state) is recorded as acknowledged; one
that came after a retry (an earlier attempt may have committed in a process that died before
its cache write) is read again once the repair bound has passed: the order, its status page,
the client's list.
"""

import asyncio
import random
import time
import uuid
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

import httpx

from orderflow.sales.orders.lifecycle import OrderStatus
from tests.faults.checks import REPAIR_BOUND_S
from tests.faults.history import Ack, Call, History
from tests.faults.platform import VOLUMES, FaultPlatform

RETRY_FOR_S = 20.0  # longer than any fault we inject: an order is never given up on
TIMEOUT_S = 10.0  # per phase of a request (httpx): connect, send, wait for the answer
PAGE = 100  # status pages and client lists read by the watcher


class Workload:
    def __init__(self, platform: FaultPlatform, history: History, seed: int = 1) -> None:
        self.platform = platform
        self.history = history
        self.rng = random.Random(seed)
        self.http = httpx.AsyncClient(timeout=TIMEOUT_S, limits=httpx.Limits(max_connections=200))
        self.created: list[int] = []  # acknowledged, still to be confirmed or cancelled
        self.known: list[int] = []  # every acknowledged order id
        self.client_of: dict[int, int] = {}  # order id -> client id
        self.to_ship: list[tuple[float, int]] = []  # completed in the MES: (ship from, order)
        self.followups: set[asyncio.Task[None]] = set()
        self.until = asyncio.Event()

    async def call(self, service: str, method: str, path: str, **kw: Any) -> Call:
        first_started = kw.pop("first_started", None)
        started = time.monotonic()
        try:
            response = await self.http.request(method, f"{self.platform.url(service)}{path}", **kw)
        except httpx.HTTPError:
            call = Call(service, method, path, started, time.monotonic(), None)
        else:
            problem = response.headers.get("content-type") == "application/problem+json"
            try:
                body = response.json() if response.content else None
            except ValueError:  # not JSON (a proxy's or a dying server's page): kept as text
                body = {"text": response.text}
            status = response.status_code
            call = Call(service, method, path, started, time.monotonic(), status, body, problem)
            call.deferred = response.headers.get("orderflow-upkeep") == "deferred"
        call.first_started = first_started
        self.history.calls.append(call)
        return call

    async def retried(self, service: str, method: str, path: str, **kw: Any) -> Call:
        """Until answered with something other than 503, or RETRY_FOR_S passed."""
        deadline = time.monotonic() + RETRY_FOR_S
        first: float | None = None
        while True:
            call = await self.call(service, method, path, first_started=first, **kw)
            if (call.status not in (None, 503)) or time.monotonic() > deadline:
                return call
            first = first or call.started
            await asyncio.sleep(0.1)

    def later(self, check: Callable[[], Awaitable[None]]) -> None:
        """Run `check` once the repair bound has passed (unless the load has stopped)."""

        async def after() -> None:
            await asyncio.sleep(REPAIR_BOUND_S + 0.5)
            if not self.until.is_set():
                await check()

        task = asyncio.create_task(after())
        self.followups.add(task)
        task.add_done_callback(self.followups.discard)

    def acknowledge_order(self, order_id: int, call: Call) -> Ack | None:
        ack = self.history.acknowledge("order", order_id, call)
        if ack is not None and ack.retried:  # an earlier attempt may have died after commit
            status = ack.status

            async def recheck() -> None:
                await self.read_order(order_id)
                if status is not None:
                    await self.read_status_page(status)

            self.later(recheck)
        return ack

    def acknowledge_production(self, order_id: int, call: Call) -> Ack | None:
        ack = self.history.acknowledge("production", order_id, call)
        if ack is not None and ack.retried:
            self.later(partial(self.read_production, order_id))
        return ack

    async def client(self) -> None:
        while not self.until.is_set():
            key = uuid.uuid4().hex
            client_id = self.rng.randint(1, VOLUMES.clients)
            body = {
                "client_id": client_id,
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
                order_id = call.body["id"]
                self.history.placed[key] = call.body
                self.acknowledge_order(order_id, call)
                self.created.append(order_id)
                self.known.append(order_id)
                self.client_of[order_id] = client_id
                await self.read_order(order_id)
                await self.read_client_list(client_id)
                if call.retried:
                    self.later(partial(self.read_client_list, client_id))

    async def read_order(self, order_id: int) -> None:
        for service in ("shop", "crm"):
            await self.read_kind(service, "order", f"/orders/{order_id}")

    async def read_production(self, order_id: int) -> None:
        await self.read_kind("mes", "production", f"/orders/{order_id}")

    async def read_client_list(self, client_id: int) -> None:
        path = f"/clients/{client_id}/orders"
        call = await self.call("shop", "GET", path, params={"limit": PAGE})
        if call.status == 200:
            self.history.listed("client", client_id, call)

    async def read_status_page(self, status: str) -> None:
        call = await self.call("crm", "GET", "/orders", params={"status": status, "limit": PAGE})
        if call.status == 200:
            self.history.listed("status", status, call)

    async def seller(self) -> None:
        """Confirms the orders clients placed (one in ten is cancelled instead)."""
        while not self.until.is_set():
            if not self.created:
                await asyncio.sleep(0.05)
                continue
            oid = self.created.pop(self.rng.randrange(len(self.created)))
            action = "cancel" if self.rng.random() < 0.1 else "confirm"
            call = await self.retried("crm", "POST", f"/orders/{oid}/{action}")
            ack = self.acknowledge_order(oid, call)
            if action == "confirm" and ack and ack.status not in ("created", "cancelled"):
                self.history.confirmed.add(oid)  # or a 409: an unanswered attempt went through
            await self.read_order(oid)

    async def shipper(self) -> None:
        """Ships what production finished, and delivers it: early attempts get 409 naming the
        status the relay has not moved on yet."""
        while not self.until.is_set():
            if not self.to_ship or self.to_ship[0][0] > time.monotonic():
                await asyncio.sleep(0.05)
                continue
            _, oid = self.to_ship.pop(0)
            ship = await self.retried("crm", "POST", f"/orders/{oid}/ship")
            ack = self.acknowledge_order(oid, ship)
            if ack is None or ack.status in ("confirmed", "in_production"):
                self.to_ship.append((time.monotonic() + 0.5, oid))  # the relay is behind
                continue
            if ack.status == OrderStatus.SHIPPED:
                deliver = await self.retried("crm", "POST", f"/orders/{oid}/deliver")
                self.acknowledge_order(oid, deliver)
            await self.read_order(oid)

    async def profile_editor(self) -> None:
        """Clients are cache-aside, invalidated on every change: the next read must show it."""
        while not self.until.is_set():
            cid = self.rng.randint(1, VOLUMES.clients)
            name = f"Client {uuid.uuid4().hex[:8]}"
            call = await self.retried("shop", "PATCH", f"/clients/{cid}", json={"name": name})
            self.history.acknowledge("client", cid, call)
            await self.read_kind("shop", "client", f"/clients/{cid}")

    async def catalogue_editor(self) -> None:
        """Items are cache-aside (and near-cached): a seller's edit, then Shop reads of it."""
        while not self.until.is_set():
            iid = self.rng.randint(1, VOLUMES.items)
            body = {
                "name": f"Item {iid}",
                "category": "Faults",
                "price": self.rng.randint(100, 999),
            }
            call = await self.retried("crm", "PUT", f"/items/{iid}", json=body)
            self.history.acknowledge("item", iid, call)
            for _ in range(3):
                await self.read_kind("shop", "item", f"/items/{iid}")
            await asyncio.sleep(0.05)

    async def read_kind(self, service: str, kind: str, path: str) -> None:
        started = time.monotonic()
        call = await self.call(service, "GET", path)
        if call.status == 200:
            self.history.read(kind, started, call.body, call)

    async def reader(self) -> None:
        while not self.until.is_set():
            if self.known:
                await self.read_order(self.rng.choice(self.known))
            else:
                await asyncio.sleep(0.05)

    async def watcher(self) -> None:
        """A seller's screens and a client's list: status pages, counts, board totals."""
        statuses = [s.value for s in OrderStatus]
        while not self.until.is_set():
            await self.read_status_page(self.rng.choice(statuses))
            stats = await self.call("crm", "GET", "/orders/stats")
            if stats.status == 200:
                self.history.counted(
                    "crm", stats, {**stats.body["counts"], "total": stats.body["total"]}
                )
            done = await self.call("mes", "GET", "/orders", params={"status": "done", "limit": 1})
            if done.status == 200:
                self.history.counted("mes", done, {"done": done.body["total"]})
            if self.known:
                await self.read_client_list(self.client_of[self.rng.choice(self.known)])
            await asyncio.sleep(0.05)

    async def operator(self, operator_id: int) -> None:
        while not self.until.is_set():
            board = await self.call(
                "mes", "GET", "/orders", params={"status": "queued", "limit": 20}
            )
            if board.status != 200 or not board.body["items"]:
                await asyncio.sleep(0.1)
                continue
            self.history.listed("queue", "queued", board)
            oid = self.rng.choice(board.body["items"])["id"]
            action = {"operator_id": operator_id}
            claim = await self.retried("mes", "POST", f"/orders/{oid}/claim", json=action)
            self.acknowledge_production(oid, claim)
            if not self._mine(claim, operator_id):
                continue
            verb = "release" if self.rng.random() < 0.1 else "complete"
            done = await self.retried("mes", "POST", f"/orders/{oid}/{verb}", json=action)
            ack = self.acknowledge_production(oid, done)
            if verb == "complete" and ack and ack.status == "done":
                self.history.completed.add(oid)  # or a 409: an unanswered attempt went through
                self.to_ship.append((time.monotonic() + 1.0, oid))
            await self.read_production(oid)

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
        self.until = until
        async with self.http:
            await asyncio.gather(
                *(self.client() for _ in range(clients)),
                *(self.seller() for _ in range(sellers)),
                self.shipper(),
                *(self.reader() for _ in range(2)),
                self.watcher(),
                self.profile_editor(),
                self.catalogue_editor(),
                *(self.operator(op) for op in range(1, operators + 1)),
            )
            for task in list(self.followups):
                task.cancel()
            await asyncio.gather(*self.followups, return_exceptions=True)
