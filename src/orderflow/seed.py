"""Demo data: a catalogue, clients and orders in every status, loaded with COPY.

ShopDB and the MES db are seeded consistently: every order the Shop shows as confirmed or
later has its production order, in the matching MES status.
"""

import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import orjson
from rich.progress import Progress

from orderflow.cache import SLOTS
from orderflow.kit.db import asyncpg_dsn
from orderflow.sales.caching import order_id

CATEGORY_WORDS = [
    "Tables", "Chairs", "Cabinets", "Shelves", "Desks", "Beds", "Sofas", "Doors", "Windows",
    "Stairs", "Kitchens", "Wardrobes", "Benches", "Counters", "Panels", "Frames", "Gates",
    "Fences", "Pergolas", "Decks", "Lamps", "Mirrors", "Racks", "Boxes",
]  # fmt: skip
ADJECTIVES = ["Oak", "Ash", "Pine", "Walnut", "Steel", "Glass", "Birch", "Maple", "Cherry"]
# Shares of orders per status: most history is delivered, a live tail is still moving.
STATUS_WEIGHTS = {
    "created": 8, "confirmed": 8, "in_production": 6, "ready": 6,
    "shipped": 12, "delivered": 50, "cancelled": 10,
}  # fmt: skip
MES_STATUS = {"confirmed": "queued", "in_production": "in_progress", "ready": "done"}
MES_STATUS |= {"shipped": "done", "delivered": "done"}
CHUNK = 20_000


@dataclass(frozen=True)
class Volumes:
    items: int = 5_000
    categories: int = 20
    clients: int = 50_000
    orders: int = 200_000
    operators: int = 20


def categories(n: int) -> list[str]:
    words = CATEGORY_WORDS * (n // len(CATEGORY_WORDS) + 1)
    return [f"{w}" if i < len(CATEGORY_WORDS) else f"{w} {i}" for i, w in enumerate(words[:n])]


def item_rows(v: Volumes, rng: random.Random) -> list[tuple[Any, ...]]:
    cats = categories(v.categories)
    rows = []
    for i in range(1, v.items + 1):
        cat = cats[i % len(cats)]
        name = f"{rng.choice(ADJECTIVES)} {cat.rstrip('s').lower()} #{i}"
        price = rng.randrange(1_000, 500_000)
        rows.append((i, name, cat, price, f"Made to order: {name}."))
    return rows


def client_rows(v: Volumes) -> Iterator[tuple[Any, ...]]:
    for i in range(1, v.clients + 1):
        yield (i, f"Client {i}", f"client{i}@example.com", None)


def order_rows(
    v: Volumes, prices: list[int], rng: random.Random, start: int, stop: int
) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """Orders numbered [start, stop), their lines, and production orders for those past
    `created`. An order's id is its number and its client's slot (`order_id`)."""
    statuses, weights = list(STATUS_WEIGHTS), list(STATUS_WEIGHTS.values())
    now = datetime.now(UTC)
    orders, lines, production = [], [], []
    for number in range(start, stop):
        status = rng.choices(statuses, weights)[0]
        created = now - timedelta(seconds=rng.randrange(365 * 86_400))
        total = 0
        order_lines = []
        for _ in range(rng.randint(1, 4)):
            item = rng.randrange(1, v.items + 1)
            qty = rng.randint(1, 5)
            total += qty * prices[item]
            order_lines.append({"item_id": item, "quantity": qty})
        client = rng.randrange(1, v.clients + 1)
        oid = order_id(number, client)
        for line_no, line in enumerate(order_lines, start=1):
            item = line["item_id"]
            lines.append((oid, line_no, item, line["quantity"], prices[item]))
        orders.append((oid, client, status, total, created, created))
        if status in MES_STATUS:
            mes_status = MES_STATUS[status]
            operator = rng.randrange(1, v.operators + 1) if mes_status == "in_progress" else None
            production.append((oid, mes_status, operator, order_lines, created, created))
    return orders, lines, production


async def is_empty(shop_dsn: str) -> bool:
    conn = await asyncpg.connect(asyncpg_dsn(shop_dsn))
    try:
        return not await conn.fetchval("SELECT EXISTS (SELECT 1 FROM items)")
    finally:
        await conn.close()


async def seed(
    shop_dsn: str, mes_dsn: str, v: Volumes, *, progress: Progress, rng_seed: int = 7
) -> None:
    """Load `v` into empty databases. Refuses to run on a database that has items."""
    rng = random.Random(rng_seed)
    shop = await asyncpg.connect(asyncpg_dsn(shop_dsn))
    mes = await asyncpg.connect(asyncpg_dsn(mes_dsn))
    try:
        if await shop.fetchval("SELECT EXISTS (SELECT 1 FROM items)"):
            raise RuntimeError("ShopDB already has data: seed only loads into empty databases")
        items = item_rows(v, rng)
        await _seed_reference(shop, mes, v, items, progress)
        prices = [0] + [row[3] for row in items]  # indexed by item id
        await _seed_orders(shop, mes, v, prices, rng, progress)
        await _finish(shop, mes, progress)
    finally:
        await shop.close()
        await mes.close()


async def _seed_reference(
    shop: asyncpg.Connection,
    mes: asyncpg.Connection,
    v: Volumes,
    items: list[tuple[Any, ...]],
    progress: Progress,
) -> None:
    task = progress.add_task("catalogue, clients, operators", total=v.items + v.clients)
    await shop.copy_records_to_table(
        "items", records=items, columns=["id", "name", "category", "price", "description"]
    )
    progress.advance(task, v.items)
    clients = list(client_rows(v))
    await shop.copy_records_to_table(
        "clients", records=clients, columns=["id", "name", "email", "phone"]
    )
    progress.advance(task, v.clients)
    operators = [(i, f"Operator {i}") for i in range(1, v.operators + 1)]
    await mes.copy_records_to_table("operators", records=operators, columns=["id", "name"])
    products = [(row[0], row[1]) for row in items]  # the names production knows (mesdb_0005)
    await mes.copy_records_to_table("products", records=products, columns=["item_id", "name"])


async def _seed_orders(
    shop: asyncpg.Connection,
    mes: asyncpg.Connection,
    v: Volumes,
    prices: list[int],
    rng: random.Random,
    progress: Progress,
) -> None:
    task = progress.add_task("orders", total=v.orders)
    await mes.set_type_codec(
        "jsonb", encoder=_jsonb, decoder=_unjsonb, schema="pg_catalog", format="binary"
    )
    # No "order changed" announcement per loaded row (shopdb_0005): nobody follows them yet.
    await shop.execute("ALTER TABLE orders DISABLE TRIGGER orders_notify")
    try:
        for start in range(1, v.orders + 1, CHUNK):
            stop = min(start + CHUNK, v.orders + 1)
            orders, lines, production = order_rows(v, prices, rng, start, stop)
            cols = ["id", "client_id", "status", "total", "created_at", "updated_at"]
            await shop.copy_records_to_table("orders", records=orders, columns=cols)
            cols = ["order_id", "line_no", "item_id", "quantity", "unit_price"]
            await shop.copy_records_to_table("order_lines", records=lines, columns=cols)
            cols = ["id", "status", "operator_id", "lines", "created_at", "updated_at"]
            await mes.copy_records_to_table("production_orders", records=production, columns=cols)
            progress.advance(task, stop - start)
    finally:
        await shop.execute("ALTER TABLE orders ENABLE TRIGGER orders_notify")


async def _finish(shop: asyncpg.Connection, mes: asyncpg.Connection, progress: Progress) -> None:
    task = progress.add_task("sequences and statistics", total=2)
    for table in ("items", "clients"):
        await shop.execute(
            f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), max(id)) FROM {table}"
        )
    # The orders' sequence numbers them; an id is the number and the client's slot.
    await shop.execute(
        "SELECT setval(pg_get_serial_sequence('orders', 'id'), max(id) / $1) FROM orders", SLOTS
    )
    await mes.execute(
        "SELECT setval(pg_get_serial_sequence('operators', 'id'), max(id)) FROM operators"
    )
    await mes.execute(
        "INSERT INTO assignments (order_id, operator_id, claimed_at) "
        "SELECT id, operator_id, updated_at FROM production_orders WHERE status = 'in_progress'"
    )
    await shop.execute("ANALYZE")
    progress.advance(task)
    await mes.execute("ANALYZE")
    progress.advance(task)


def _jsonb(value: Any) -> bytes:
    return b"\x01" + orjson.dumps(value)  # jsonb's binary format: a version byte, then text


def _unjsonb(data: bytes) -> Any:
    return orjson.loads(data[1:])
