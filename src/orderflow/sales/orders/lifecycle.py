"""The Shop order lifecycle: which transitions are allowed, and what "forward" means."""

from enum import StrEnum


class OrderStatus(StrEnum):
    CREATED = "created"
    CONFIRMED = "confirmed"
    IN_PRODUCTION = "in_production"
    READY = "ready"
    SHIPPED = "shipped"
    DELIVERED = "delivered"
    CANCELLED = "cancelled"


S = OrderStatus

# action -> (statuses it may start from, status it leads to)
ACTIONS: dict[str, tuple[frozenset[OrderStatus], OrderStatus]] = {
    "confirm": (frozenset({S.CREATED}), S.CONFIRMED),
    "ship": (frozenset({S.READY}), S.SHIPPED),
    "deliver": (frozenset({S.SHIPPED}), S.DELIVERED),
    "cancel": (frozenset({S.CREATED, S.CONFIRMED}), S.CANCELLED),
}

# Production events move an order only forward; cancelled is terminal and outranks everything.
RANK = {
    S.CREATED: 0,
    S.CONFIRMED: 1,
    S.IN_PRODUCTION: 2,
    S.READY: 3,
    S.SHIPPED: 4,
    S.DELIVERED: 5,
    S.CANCELLED: 99,
}


def statuses_before(target: OrderStatus) -> list[str]:
    """Statuses from which a production event may still move an order to `target`."""
    return [s.value for s, rank in RANK.items() if rank < RANK[target]]


# What the MES tells the Shop (its outbox events) -> the status the Shop order moves forward to.
PRODUCTION_EVENTS: dict[str, OrderStatus] = {
    "in_production": S.IN_PRODUCTION,
    "ready": S.READY,
}
