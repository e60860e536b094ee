"""The relay: delivers outbox events between ShopDB and the MES db, at least once.

A batch is read in a source transaction that holds that outbox's turn (an advisory lock: one
relay at a time delivers from an outbox, so one order's events are applied in the order they
were written, however many relays run) and applied in one transaction in the target
(idempotent: each event id is recorded there with its change); only then is the batch marked
published, and only once the source has committed does the target's cache upkeep run (it is
journalled: a relay that dies first leaves it to the journal's repair). A relay that dies
anywhere before the source's commit leaves the batch unpublished; the next run re-applies it
and the target skips what it already has. No outbox row is locked: writers never wait on the
relay.

One target transaction per batch, not per event: under load the bell wakes the relay for
every commit, and a transaction of its own per event cost a BEGIN and a COMMIT round trip each.
"""

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from opentelemetry import trace
from opentelemetry.trace import Link

from orderflow.data.mesdb import MesOutbox
from orderflow.data.shopdb import ShopOutbox
from orderflow.kit import metrics, tracing
from orderflow.kit.resources import Resources
from orderflow.kit.settings import Settings
from orderflow.kit.trace_gather import TraceGather
from orderflow.kit.unit_of_work import Sessions, UnitOfWork
from orderflow.production.context import Production
from orderflow.production.orders.ingest import ingest
from orderflow.relay.backfill import backfill_item_names
from orderflow.relay.bell import Bell
from orderflow.relay.outbox import OutboxRepository, OutboxRow
from orderflow.sales.context import Sales
from orderflow.sales.orders.transitions import apply_production_event
from orderflow.service_cache.modes import cache_modes

log = logging.getLogger(__name__)
Apply = Callable[[UnitOfWork, OutboxRow], Awaitable[None]]
FAILED_RETRY_S = 1.0  # after a failed pass (a database down): not sooner, rung or not
TURN_RETRY_S = 1.0  # while another relay holds an outbox's turn: look again (it may die)


@dataclass
class Direction:
    """One way between the databases. `apply` is the target domain's own function: it applies
    one event as a step of the target's unit of work (from `target`), idempotently, with the
    cache upkeep registered for after its commit."""

    name: str
    source: Sessions
    model: type[ShopOutbox] | type[MesOutbox]
    target: Callable[[], UnitOfWork]
    apply: Apply
    standing_by: bool = field(default=False, init=False)  # the last pass: another relay's turn

    async def deliver_batch(self, limit: int) -> int:
        """Deliver up to `limit` events; returns how many were delivered.

        Traced: a span for the batch, and one per event that continues the trace of the write
        that announced it (its stored `traceparent`), linked to the batch."""
        target = self.target()
        with tracing.as_service("relay"):
            try:
                async with UnitOfWork(self.source) as uow:
                    outbox = OutboxRepository(uow.session, self.model)
                    self.standing_by = not await outbox.take_turn()
                    events = [] if self.standing_by else await outbox.next_batch(limit)
                    if events:
                        with tracing.continued(None, f"relay {self.name} batch") as batch:
                            batch.set_attribute("orderflow.relay.events", len(events))
                            async with target:
                                for event in events:
                                    await self._deliver(target, event, batch)
                            await outbox.mark_published([e.id for e in events])
            finally:  # the target committed, whatever the source did: its upkeep is owed
                await target.run_after_commit()
        metrics.RELAY_EVENTS.labels(self.name).inc(len(events))
        return len(events)

    async def _deliver(self, target: UnitOfWork, event: OutboxRow, batch: trace.Span) -> None:
        links = [Link(batch.get_span_context())] if batch.get_span_context().is_valid else []
        attributes: dict[str, str | int] = {
            "orderflow.order_id": event.order_id,
            "orderflow.event": event.event_type,
            "orderflow.event_id": f"{self.name}:{event.id}",
            "messaging.operation.type": "process",
        }
        name = f"relay {event.event_type}"
        with tracing.continued(event.traceparent, name, links=links, attributes=attributes):
            await self.apply(target, event)


def directions(sales: Sales, production: Production) -> list[Direction]:
    """Both directions: the Shop's hand-offs into production, production's progress back."""

    async def to_production(uow: UnitOfWork, event: OutboxRow) -> None:
        await ingest(uow, production, f"shopdb:{event.id}", event.event_type, event.payload)

    async def to_sales(uow: UnitOfWork, event: OutboxRow) -> None:
        event_id, kind = f"mesdb:{event.id}", event.event_type
        if not await apply_production_event(uow, sales, event_id, kind, event.order_id):
            log.warning("unknown MES event type %s (id %s): skipped", event.event_type, event.id)

    into_production, into_sales = (
        partial(production.unit, defer=True),
        partial(sales.unit, defer=True),
    )
    return [
        Direction("shop_to_mes", sales.sessions, ShopOutbox, into_production, to_production),
        Direction("mes_to_shop", production.sessions, MesOutbox, into_sales, to_sales),
    ]


@asynccontextmanager
async def opened(settings: Settings) -> AsyncIterator[list[Direction]]:
    """The relay's directions, with the two domains' contexts they write through, then closed."""
    tracing.setup("relay")
    resources = Resources.open(
        settings, ("shopdb", "mesdb"), name="relay", namespaces=("shop", "mes")
    )
    gather = TraceGather(settings)  # answers /admin/traces with the relay's spans
    try:
        await resources.start()
        gather.start()
        async with cache_modes(settings) as modes:
            sales, production = (
                Sales.open(resources, modes, "shop"),
                Production.open(resources, modes),
            )
            # The relay deletes the journal rows of its own applied upkeep; what it leaves is
            # repaired by the API processes' workers.
            async with (
                sales.journal.running(repair=False),
                production.journal.running(repair=False),
            ):
                try:
                    await backfill_item_names(sales, production)
                except Exception as exc:  # noqa: BLE001  names must not stop the hand-offs
                    log.warning("item names not filled in the MES: %s", exc)
                yield directions(sales, production)
    finally:
        await gather.stop()
        await resources.close()
        tracing.flush()


async def drain(ways: list[Direction], *, batch: int = 100) -> int:
    """Deliver until both outboxes are empty (tests and one-shot runs)."""
    total = 0
    while delivered := sum([await way.deliver_batch(batch) for way in ways]):
        total += delivered
    return total


async def run(
    ways: list[Direction],
    stop: asyncio.Event,
    *,
    batch: int,
    idle_s: float,
    bell: Bell | None = None,
) -> None:
    """Relay until `stop` is set. Database outages are waited out, never fatal.

    With a `bell` (`relay/bell.py`, listening to the ways' sources in their order) an idle
    relay sleeps until an outbox row is committed, then delivers only from the databases that
    rang; `idle_s` is then the poll only while a database is not listened to. Without one it
    polls every way every `idle_s`. While another relay holds an outbox's turn (`standing_by`)
    this one looks again every `TURN_RETRY_S`."""
    everyone = set(range(len(ways)))
    due = everyone
    while not stop.is_set():
        if bell is not None:
            due = due | bell.take()
        try:
            delivered = [await ways[i].deliver_batch(batch) for i in sorted(due)]
        except Exception as exc:  # noqa: BLE001  a database restart must not end the relay
            log.warning("relay batch failed, will retry: %s", exc)
            due = everyone
            await _until(stop, asyncio.sleep(FAILED_RETRY_S))
            continue
        due = {i for i, n in zip(sorted(due), delivered, strict=True) if n}  # may have more
        if due:
            continue
        if bell is None:
            due = everyone
            await _until(stop, asyncio.sleep(idle_s))
            continue
        # Another relay delivering from an outbox: look again within a second, not at the next
        # commit only (it may die, leaving the rest of its backlog to this one).
        due = {i for i, way in enumerate(ways) if way.standing_by}
        await _until(stop, bell.wait(idle_s, at_most=TURN_RETRY_S if due else None))


async def _until(stop: asyncio.Event, rest: Coroutine[Any, Any, None]) -> None:
    """`rest`, cut short by `stop`."""
    stopped = asyncio.ensure_future(stop.wait())
    resting = asyncio.ensure_future(rest)
    await asyncio.wait({stopped, resting}, return_when=asyncio.FIRST_COMPLETED)
    for task in (stopped, resting):
        task.cancel()
