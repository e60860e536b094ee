"""The sellers' order views."""

from datetime import datetime

from orderflow.crm.orders.repository import OrderViewRepository
from orderflow.kit.db import transaction
from orderflow.kit.deps import Sessions
from orderflow.kit.errors import InvalidInput
from orderflow.kit.http import dumps
from orderflow.kit.pagination import Page, list_body
from orderflow.shop.orders.lifecycle import OrderStatus
from orderflow.shop.orders.repository import OrderRepository
from orderflow.shop.orders.schemas import order_dict


async def search_orders(
    sessions: Sessions,
    *,
    status: OrderStatus | None,
    client_id: int | None,
    created_from: datetime | None,
    created_to: datetime | None,
    page: Page,
) -> bytes:
    if created_from and created_to and created_from > created_to:
        raise InvalidInput("created_from is after created_to", field="created_from")
    async with transaction(sessions) as session:
        orders, total = await OrderViewRepository(session).search(
            status=status.value if status else None,
            client_id=client_id,
            created_from=created_from,
            created_to=created_to,
            limit=page.limit,
            offset=page.offset,
        )
        lines = await OrderRepository(session).lines_of([o.id for o in orders])
    return dumps(list_body([order_dict(o, lines[o.id]) for o in orders], total))


async def counts_by_status(sessions: Sessions) -> bytes:
    async with transaction(sessions) as session:
        counts = await OrderViewRepository(session).count_by_status()
    every = {status.value: counts.get(status.value, 0) for status in OrderStatus}
    return dumps({"counts": every, "total": sum(every.values())})
