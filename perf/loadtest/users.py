"""The Locust users: clients in the Shop, sellers in the CRM, operators in the MES.

Importing this module imports Locust, which monkey-patches the standard library for gevent.
`configure()` must be called before a run: it sets the hosts, the catalogue and the think time.
"""

from __future__ import annotations

import bisect
import itertools
import random
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

import orjson
from locust import FastHttpUser, between, task

from perf.loadtest import config as g

STATUSES = ("created", "confirmed", "in_production", "ready", "shipped", "delivered", "cancelled")
STATUS_WEIGHTS = (4, 3, 2, 2, 1, 1, 1)  # sellers look at the live statuses most
EXPECTED = (409,)  # a race lost or a status that moved on: an outcome, not an error


class Zipf:
    """Draws ids 1..n with P(rank k) ~ 1/k**s; ranks map to ids by a fixed shuffle."""

    def __init__(self, n: int, s: float = 1.0, seed: int = 42) -> None:
        self.cdf = list(itertools.accumulate(1.0 / k**s for k in range(1, n + 1)))
        self.ids = list(range(1, n + 1))
        random.Random(seed).shuffle(self.ids)

    def draw(self, rng: random.Random) -> int:
        rank = bisect.bisect_left(self.cdf, rng.random() * self.cdf[-1])
        return self.ids[min(rank, len(self.ids) - 1)]


@dataclass
class Shared:
    """What every user draws from: set by `configure()`."""

    categories: list[str] = field(default_factory=lambda: ["Chairs"])
    items: Zipf = field(default_factory=lambda: Zipf(5_000))
    pages: Zipf = field(default_factory=lambda: Zipf(5, seed=0))
    clients: int = 50_000
    operators: int = 20


SHARED = Shared()


def configure(
    urls: dict[str, str], categories: list[str], items: int, think_ms: float, operators: int = 20
) -> None:
    SHARED.categories = categories or ["Chairs"]
    SHARED.items = Zipf(max(1, min(items, 5_000)))
    SHARED.operators = operators
    think = think_ms / 1000.0
    for user, service in ((ClientUser, "shop"), (SellerUser, "crm"), (OperatorUser, "mes")):
        user.host = urls[service]
        user.wait_time = between(0.5 * think, 1.5 * think)


class _Base(FastHttpUser):
    abstract = True
    network_timeout = 10.0
    connection_timeout = 5.0

    def call(
        self, method: str, path: str, group: str, body: Any = None, headers: Any = None
    ) -> Any:
        """One request under `group`; the decoded JSON body, or None (409, error, no body)."""
        with self.client.request(
            method, path, name=group, json=body, headers=headers, catch_response=True
        ) as resp:
            if resp.status_code in EXPECTED:
                resp.success()
                return None
            if not 200 <= resp.status_code < 300 or not resp.content:
                return None  # counted as a failure by Locust (status or connection error)
            try:
                return orjson.loads(resp.content)
            except orjson.JSONDecodeError:
                resp.failure("response is not JSON")
                return None


def _ids(listing: Any) -> list[int]:
    return [row["id"] for row in listing["items"]] if listing else []


class ClientUser(_Base):
    """A client: browses the catalogue, reads their profile and orders, orders, cancels."""

    weight = 7

    def on_start(self) -> None:
        self.rng = random.Random()
        self.orders: list[int] = []
        email = f"loadtest.{uuid.uuid4().hex}@example.com"
        client = self.call("POST", "/clients", g.REGISTER, {"name": "Load Test", "email": email})
        self.client_id: int = client["id"] if client else self.rng.randint(1, SHARED.clients)

    @task(8)
    def item(self) -> None:
        self.call("GET", f"/items/{SHARED.items.draw(self.rng)}", g.ITEM)

    @task(4)
    def catalogue_page(self) -> None:
        category = self.rng.choice(SHARED.categories)
        offset = 20 * (SHARED.pages.draw(self.rng) - 1)
        self.call("GET", f"/items?category={category}&limit=20&offset={offset}", g.CATALOGUE)

    @task(1)
    def own_client(self) -> None:
        self.call("GET", f"/clients/{self.client_id}", g.OWN_CLIENT)

    @task(2)
    def own_orders(self) -> None:
        self.call("GET", f"/clients/{self.client_id}/orders?limit=20", g.OWN_ORDERS)

    @task(1)
    def own_order(self) -> None:
        if self.orders:
            self.call("GET", f"/orders/{self.rng.choice(self.orders)}", g.OWN_ORDER)

    @task(2)
    def place_order(self) -> None:
        lines = [
            {"item_id": item, "quantity": self.rng.randint(1, 3)}
            for item in {SHARED.items.draw(self.rng) for _ in range(self.rng.randint(1, 3))}
        ]
        body = {"client_id": self.client_id, "lines": lines}
        headers = {"Idempotency-Key": f"loadtest-{uuid.uuid4().hex}"}
        if order := self.call("POST", "/orders", g.PLACE, body, headers):
            self.orders = [*self.orders[-19:], order["id"]]

    @task(1)
    def cancel(self) -> None:
        if self.orders and self.rng.random() < 0.25:
            order = self.orders.pop(self.rng.randrange(len(self.orders)))
            self.call("POST", f"/orders/{order}/cancel", g.CANCEL)


class SellerUser(_Base):
    """A seller: lists orders by status, client and date, counts, reads one, confirms."""

    weight = 2

    def on_start(self) -> None:
        self.rng = random.Random()
        self.seen: list[int] = []
        self.created: list[int] = []

    @task(4)
    def by_status(self) -> None:
        status = self.rng.choices(STATUSES, STATUS_WEIGHTS)[0]
        listing = self.call("GET", f"/orders?status={status}&limit=20", g.BY_STATUS)
        self.seen = _ids(listing) or self.seen
        if status == "created":
            self.created = _ids(listing)

    @task(2)
    def by_client(self) -> None:
        client = self.rng.randint(1, SHARED.clients)
        self.call("GET", f"/orders?client_id={client}&limit=20", g.BY_CLIENT)

    @task(1)
    def by_date(self) -> None:
        today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        start = today - timedelta(days=SHARED.pages.draw(self.rng) - 1)
        span = self.rng.choice((1, 7))
        frm, to = start.strftime("%Y-%m-%dT%H:%M:%SZ"), (start + timedelta(days=span))
        query = f"created_from={frm}&created_to={to.strftime('%Y-%m-%dT%H:%M:%SZ')}"
        self.call("GET", f"/orders?{query}&limit=20", g.BY_DATE)

    @task(2)
    def counts(self) -> None:
        self.call("GET", "/orders/stats", g.COUNTS)

    @task(2)
    def one(self) -> None:
        if self.seen:
            self.call("GET", f"/orders/{self.rng.choice(self.seen)}", g.CRM_ORDER)

    @task(2)
    def confirm(self) -> None:
        if not self.created:
            self.created = _ids(self.call("GET", "/orders?status=created&limit=20", g.BY_STATUS))
        if self.created:
            order = self.created.pop(self.rng.randrange(len(self.created)))
            self.call("POST", f"/orders/{order}/confirm", g.CONFIRM)


class OperatorUser(_Base):
    """An operator: watches the queue, claims one of the listed, completes their own."""

    weight = 1
    _numbers: ClassVar[itertools.count[int]] = itertools.count()

    def on_start(self) -> None:
        self.rng = random.Random()
        self.operator_id = next(self._numbers) % SHARED.operators + 1
        self.queue: list[int] = []

    @task(5)
    def watch_queue(self) -> None:
        self.queue = _ids(self.call("GET", "/orders?status=queued&limit=20", g.QUEUE))

    @task(2)
    def claim(self) -> None:
        if self.queue:
            order = self.queue.pop(self.rng.randrange(len(self.queue)))
            body = {"operator_id": self.operator_id}
            self.call("POST", f"/orders/{order}/claim", g.CLAIM, body)

    @task(2)
    def complete_own(self) -> None:
        path = f"/orders?status=in_progress&operator_id={self.operator_id}&limit=20"
        mine = _ids(self.call("GET", path, g.MINE))
        if mine:
            body = {"operator_id": self.operator_id}
            self.call("POST", f"/orders/{self.rng.choice(mine)}/complete", g.COMPLETE, body)
