"""The reads behind the MES's cache: one statement each, outside a transaction (`kit/lean.py`).

What a board's miss pays to PostgreSQL. Through a unit of work a list cost two transactions
(the page of ids, then the orders), each a session, BEGIN, the ORM's statement and COMMIT:
about 3 ms of a 3.2 ms uncached list at 1,000,000 orders, once the page itself was an index
scan (mesdb_0008). The Shop's reads went this way first (`sales/orders/repository.OrderReads`).
"""

from collections.abc import Sequence

from asyncpg import Record

from orderflow.kit.lean import Params, fetch, fetch_page, fetchrow
from orderflow.kit.unit_of_work import Sessions

COLUMNS = "id, status, operator_id, lines, version, created_at, updated_at"
BY_ID = f"SELECT {COLUMNS} FROM production_orders WHERE id = $1"
BY_IDS = f"SELECT {COLUMNS} FROM production_orders WHERE id = ANY($1::bigint[])"


class ProductionReads:
    def __init__(self, sessions: Sessions) -> None:
        self.sessions = sessions

    async def one(self, order_id: int) -> Record | None:
        return await fetchrow(self.sessions, BY_ID, order_id)

    async def many(self, order_ids: Sequence[int]) -> list[Record]:
        return await fetch(self.sessions, BY_IDS, list(order_ids))

    async def page_of_ids(
        self, *, status: str | None, operator_id: int | None, limit: int, offset: int
    ) -> tuple[list[int], int]:
        """One page of ids and how many orders match in all: one statement."""
        return await fetch_page(self.sessions, *page_sql(status, operator_id, limit, offset))


def page_sql(
    status: str | None, operator_id: int | None, limit: int, offset: int
) -> tuple[str, Params]:
    """An operator's orders: the latest change (their newest claim) first, counted. The queue
    and the other lists: oldest first, the order of priority (first confirmed, first made),
    their total from the counter table the triggers keep, not a count over every order."""
    param = Params()
    where = [f"status = {param(status)}"] if status else []
    if operator_id:
        where.append(f"operator_id = {param(operator_id)}")
    cond = " AND ".join(where) or "true"
    if operator_id:
        order = "updated_at DESC, id DESC"
        total = f"SELECT count(*) FROM production_orders WHERE {cond}"
    else:
        order = "id"
        total = "SELECT coalesce(sum(n), 0) FROM production_status_counts" + (
            " WHERE status = $1" if status else ""
        )
    ids = (
        f"SELECT id FROM production_orders WHERE {cond} ORDER BY {order} "
        f"LIMIT {param(limit)} OFFSET {param(offset)}"
    )
    return f"SELECT ARRAY({ids}) AS ids, ({total}) AS total", param
