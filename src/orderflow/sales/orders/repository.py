"""All SQL over orders, their lines and the ShopDB outbox.

`OrderRepository` works inside a unit of work (the writes, and the reads that go with them);
`OrderReads` are what a cache miss costs: one statement each, no transaction, plain rows
(`kit/lean.py`), the lines aggregated beside their order.
"""

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from asyncpg import Record
from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from orderflow.cache import SLOTS
from orderflow.data.shopdb import (
    Order,
    OrderLine,
    ShopOutbox,
    ShopProcessedEvent,
)
from orderflow.kit import tracing
from orderflow.kit.lean import Params, fetch, fetch_page, fetchrow
from orderflow.kit.unit_of_work import Sessions


class OrderRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, order_id: int) -> Order | None:
        return await self.session.get(Order, order_id)

    async def by_idempotency_key(self, key: str) -> Order | None:
        return await self.session.scalar(select(Order).where(Order.idempotency_key == key))

    async def insert(self, slot: int, **values: Any) -> Order | None:
        """None when the idempotency key is already used (the unique index decides). The id
        is the sequence's next number and the client's `slot` (`sales.caching.order_id`)."""
        stmt = insert(Order).values(id=func.nextval("orders_id_seq") * SLOTS + slot, **values)
        if values.get("idempotency_key"):
            stmt = stmt.on_conflict_do_nothing(index_elements=["idempotency_key"])
        result = await self.session.scalars(stmt.returning(Order))
        return result.one_or_none()

    async def add_lines(self, lines: list[OrderLine]) -> None:
        self.session.add_all(lines)
        await self.session.flush()

    async def lines_of(self, order_ids: Sequence[int]) -> dict[int, list[OrderLine]]:
        rows = await self.session.scalars(
            select(OrderLine)
            .where(OrderLine.order_id.in_(order_ids))
            .order_by(OrderLine.order_id, OrderLine.line_no)
        )
        by_order: dict[int, list[OrderLine]] = defaultdict(list)
        for line in rows:
            by_order[line.order_id].append(line)
        return by_order

    async def set_status(self, order_id: int, status: str, *, from_any: list[str]) -> Order | None:
        """Conditional update: only from one of `from_any`; None when the row is elsewhere."""
        result = await self.session.scalars(
            update(Order)
            .where(Order.id == order_id, Order.status.in_(from_any))
            .values(status=status, version=Order.version + 1, updated_at=func.now())
            .returning(Order)
        )
        return result.one_or_none()

    async def add_outbox(self, event_type: str, order_id: int, payload: dict[str, Any]) -> None:
        event = ShopOutbox(event_type=event_type, order_id=order_id, payload=payload)
        event.traceparent = tracing.traceparent()  # the relay continues this trace
        self.session.add(event)
        await self.session.flush()

    async def mark_processed(self, event_id: str) -> bool:
        """Record `event_id` as applied; False when it was applied before (a redelivery)."""
        result = await self.session.execute(
            insert(ShopProcessedEvent)
            .values(event_id=event_id)
            .on_conflict_do_nothing()
            .returning(ShopProcessedEvent.event_id)
        )
        return result.first() is not None


# An order's columns and its lines as one array of [item_id, quantity, unit_price] (NULL when
# it has none), in line order: what `schemas.order_row_dict` renders.
ORDER_ROW = """
SELECT o.id, o.client_id, o.status, o.total, o.created_at, o.updated_at, o.version, l.lines
FROM orders o
LEFT JOIN LATERAL (
    SELECT array_agg(ARRAY[item_id::bigint, quantity::bigint, unit_price] ORDER BY line_no)
    AS lines FROM order_lines WHERE order_id = o.id
) l ON true
"""
ORDER_BY_ID = ORDER_ROW + "WHERE o.id = $1"
ORDERS_BY_IDS = ORDER_ROW + "WHERE o.id = ANY($1::bigint[])"


class OrderReads:
    """The reads behind the cache: an order, a batch of orders, a page of ids with its total."""

    def __init__(self, sessions: Sessions) -> None:
        self.sessions = sessions

    async def one(self, order_id: int) -> Record | None:
        return await fetchrow(self.sessions, ORDER_BY_ID, order_id)

    async def many(self, order_ids: Sequence[int]) -> list[Record]:
        return await fetch(self.sessions, ORDERS_BY_IDS, list(order_ids))

    async def page_of_ids(
        self,
        *,
        status: str | None,
        client_id: int | None,
        created_from: datetime | None,
        created_to: datetime | None,
        limit: int,
        offset: int,
    ) -> tuple[list[int], int]:
        """One page of ids, newest first, and how many orders match in all: one statement."""
        sql, args = page_sql(status, client_id, created_from, created_to, limit, offset)
        return await fetch_page(self.sessions, sql, args)

    async def count_by_status(
        self,
        *,
        client_id: int | None = None,
        created_from: datetime | None = None,
        created_to: datetime | None = None,
    ) -> dict[str, int]:
        """Unfiltered: from the counter table the triggers keep (see `OrderStatusCount`);
        narrowed by a client or days: counted over those orders (an index on each)."""
        if not (client_id or created_from or created_to):
            rows = await fetch(self.sessions, "SELECT status, n FROM order_status_counts")
            return {row["status"]: int(row["n"]) for row in rows}
        where, args = _narrowed(client_id, created_from, created_to)
        sql = f"SELECT status, count(*) AS n FROM orders WHERE {where} GROUP BY status"
        return {row["status"]: int(row["n"]) for row in await fetch(self.sessions, sql, *args)}


def _narrowed(
    client_id: int | None, created_from: datetime | None, created_to: datetime | None
) -> tuple[str, list[Any]]:
    conditions: list[str] = []
    args: list[Any] = []
    for sql, value in (
        ("client_id = ${}", client_id),
        ("created_at >= ${}", created_from),
        ("created_at < ${}", created_to),
    ):
        if value:
            args.append(value)
            conditions.append(sql.format(len(args)))
    return " AND ".join(conditions), args


def page_sql(
    status: str | None,
    client_id: int | None,
    created_from: datetime | None,
    created_to: datetime | None,
    limit: int,
    offset: int,
) -> tuple[str, Params]:
    """The page's ids and the total, as two subqueries of one statement. The total counts the
    matching orders when a client or a date narrows them, else it reads the counter table
    (`OrderStatusCount`) instead of counting up to every order."""
    param = Params()
    where = [f"status = {param(status)}"] if status else []
    if client_id:
        where.append(f"client_id = {param(client_id)}")
    if created_from:
        where.append(f"created_at >= {param(created_from)}")
    if created_to:
        where.append(f"created_at < {param(created_to)}")
    cond = " AND ".join(where) or "true"
    if client_id or created_from or created_to:
        total = f"SELECT count(*) FROM orders WHERE {cond}"
    else:  # by status ($1) or all: the counter table, not a count over every order
        total = "SELECT coalesce(sum(n), 0) FROM order_status_counts" + (
            " WHERE status = $1" if status else ""
        )
    ids = (
        f"SELECT id FROM orders WHERE {cond} ORDER BY created_at DESC, id DESC "
        f"LIMIT {param(limit)} OFFSET {param(offset)}"
    )
    return f"SELECT ARRAY({ids}) AS ids, ({total}) AS total", param
