"""ShopDB: the catalogue, clients and orders of the Shop and the CRM."""

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from orderflow.data.base import OutboxTable, ProcessedEventTable, ShopBase, UpkeepTable, Versioned


class Item(Versioned, ShopBase):
    __tablename__ = "items"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(200))
    category: Mapped[str] = mapped_column(String(100), index=True)
    price: Mapped[int] = mapped_column(BigInteger)  # minor units (cents)
    description: Mapped[str] = mapped_column(Text, default="", server_default="")


class Client(Versioned, ShopBase):
    __tablename__ = "clients"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str] = mapped_column(String(320), unique=True)
    phone: Mapped[str | None] = mapped_column(String(40))


class Order(Versioned, ShopBase):
    __tablename__ = "orders"
    __table_args__ = (
        Index("ix_orders_status_created_at", "status", "created_at"),
        Index("ix_orders_client_id_created_at", "client_id", "created_at"),
        Index("ix_orders_created_at", "created_at"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id"))
    status: Mapped[str] = mapped_column(String(20), default="created", server_default="created")
    total: Mapped[int] = mapped_column(BigInteger)  # minor units
    idempotency_key: Mapped[str | None] = mapped_column(String(200), unique=True)
    request_hash: Mapped[str | None] = mapped_column(String(64))

    lines: Mapped[list["OrderLine"]] = relationship(
        lazy="raise", order_by="OrderLine.line_no", cascade="all, delete-orphan"
    )


class OrderStatusCount(ShopBase):
    """How many orders are in each status, kept exact by triggers (migration shopdb_0002,
    `migrations/status_counts.py`): counts and the totals of lists by status read one row
    instead of counting up to a million. They change with every order write, so their cached
    views are often cold, and a miss must be cheap."""

    __tablename__ = "order_status_counts"

    status: Mapped[str] = mapped_column(String(20), primary_key=True)
    n: Mapped[int] = mapped_column(BigInteger)


class OrderLine(ShopBase):
    __tablename__ = "order_lines"

    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), primary_key=True)
    line_no: Mapped[int] = mapped_column(Integer, primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id"))
    quantity: Mapped[int] = mapped_column(Integer)
    unit_price: Mapped[int] = mapped_column(BigInteger)


class ShopOutbox(OutboxTable, ShopBase):
    pass


class ShopProcessedEvent(ProcessedEventTable, ShopBase):
    pass


class ShopUpkeep(UpkeepTable, ShopBase):
    pass
