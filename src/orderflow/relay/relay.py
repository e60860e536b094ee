"""The relay: delivers outbox events between ShopDB and the MES db, at least once.

A batch is locked in the source database, each event is applied in its own transaction in
the target (idempotent: the event id is recorded there with the change), and only then is
the batch marked published. A relay that dies anywhere in between leaves the batch
unpublished; the next run re-applies it and the target skips what it already has.
"""

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from redis.exceptions import RedisError
from sqlalchemy.ext.asyncio import AsyncSession

from orderflow.data.mesdb import MesOutbox
from orderflow.data.shopdb import ShopOutbox
from orderflow.kit import metrics
from orderflow.kit.cache_modes import CacheModes
from orderflow.kit.caching import ServiceCache
from orderflow.kit.db import transaction
from orderflow.kit.deps import Sessions
from orderflow.kit.resources import Resources
from orderflow.kit.settings import Settings
from orderflow.production.caching import status_family
from orderflow.production.context import Production
from orderflow.production.events.stream import EventStream
from orderflow.production.orders.service import announce, ingest
from orderflow.relay.outbox import OutboxRepository, OutboxRow
from orderflow.sales.caching import item_ttl
from orderflow.sales.context import Sales
from orderflow.sales.orders.lifecycle import OrderStatus
from orderflow.sales.orders.service import apply_production_event, production_event_written

log = logging.getLogger(__name__)
AfterCommit = Callable[[], Awaitable[None]]
Apply = Callable[[AsyncSession, OutboxRow], Awaitable[AfterCommit | None]]
ShopOrderChanged = Callable[[dict[str, Any]], Awaitable[None]]
PRODUCTION_STATUS = {"in_production": OrderStatus.IN_PRODUCTION, "ready": OrderStatus.READY}


@dataclass
class Direction:
    """One way between the databases. `apply` runs in the target's transaction and may return
    work for after that commit (announcing an event, writing a cache entry through)."""

    name: str
    source: Sessions
    target: Sessions
    model: type[ShopOutbox] | type[MesOutbox]
    apply: Apply

    async def deliver_batch(self, limit: int) -> int:
        """Deliver up to `limit` events; returns how many were delivered."""
        async with transaction(self.source) as session:
            outbox = OutboxRepository(session, self.model)
            events = await outbox.lock_batch(limit)
            for event in events:
                async with transaction(self.target) as target:
                    after_commit = await self.apply(target, event)
                if after_commit is not None:
                    await after_commit()
            if events:
                await outbox.mark_published([e.id for e in events])
        metrics.RELAY_EVENTS.labels(self.name).inc(len(events))
        return len(events)


def directions(
    sales: Sessions,
    mes: Sessions,
    *,
    production: Production | None = None,
    storefront: Sales | None = None,
) -> list[Direction]:
    """Both directions. After each commit in the MES, `production` writes the change through
    and announces it to the boards; after each in ShopDB, `storefront` writes it through."""

    async def apply_to_mes(session: AsyncSession, event: OutboxRow) -> AfterCommit | None:
        result = await ingest(session, f"shopdb:{event.id}", event.event_type, event.payload)
        if result is None or production is None:
            return None
        event_type, order = result
        return lambda: _announce(production, event_type, order)

    async def apply_to_shop(session: AsyncSession, event: OutboxRow) -> AfterCommit | None:
        status = PRODUCTION_STATUS.get(event.event_type)
        if status is None:
            log.warning("unknown MES event type %s (id %s): skipped", event.event_type, event.id)
            return None
        order = await apply_production_event(session, f"mesdb:{event.id}", event.order_id, status)
        if order is None or storefront is None:
            return None
        return lambda: production_event_written(storefront, order)

    return [
        Direction("shop_to_mes", sales, mes, ShopOutbox, apply_to_mes),
        Direction("mes_to_shop", mes, sales, MesOutbox, apply_to_shop),
    ]


async def _announce(production: Production, event_type: str, order: dict[str, Any]) -> None:
    if event_type == "cancelled":
        await announce(production, event_type, order, "queued", None)
    elif event_type == "queued":
        await announce(production, event_type, order, None, None)
    else:  # a redelivery: rewrite what an earlier delivery may have left unwritten
        await announce(production, "", order, None, None, also=[status_family("queued")])


@asynccontextmanager
async def opened(settings: Settings) -> AsyncIterator[list[Direction]]:
    """The relay's directions with everything they write to after a commit, then closed."""
    resources = Resources.open(
        settings, ("shopdb", "mesdb"), name="relay", namespaces=("shop", "mes")
    )
    modes = CacheModes(settings, settings.redis_url or None)
    with contextlib.suppress(RedisError, OSError, TimeoutError):
        await modes.reload()
    modes.start()
    sales, mes = resources.sessions["shopdb"], resources.sessions["mesdb"]
    events = EventStream(resources.redis) if resources.redis is not None else None
    shop_cache = ServiceCache(resources.caches.get("shop"), modes, "shop")
    storefront = Sales(sales, shop_cache, item_ttl(settings))
    production = Production(mes, ServiceCache(resources.caches.get("mes"), modes, "mes"), events)
    try:
        yield directions(sales, mes, production=production, storefront=storefront)
    finally:
        await modes.stop()
        await resources.close()


async def drain(ways: list[Direction], *, batch: int = 100) -> int:
    """Deliver until both outboxes are empty (tests and one-shot runs)."""
    total = 0
    while delivered := sum([await way.deliver_batch(batch) for way in ways]):
        total += delivered
    return total


async def run(ways: list[Direction], stop: asyncio.Event, *, batch: int, idle_s: float) -> None:
    """Relay until `stop` is set. Database outages are waited out, never fatal."""
    while not stop.is_set():
        try:
            delivered = sum([await way.deliver_batch(batch) for way in ways])
        except Exception as exc:  # noqa: BLE001  a database restart must not end the relay
            log.warning("relay batch failed, will retry: %s", exc)
            delivered = 0
            idle_s_now = 1.0
        else:
            idle_s_now = idle_s
        if not delivered:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), idle_s_now)
