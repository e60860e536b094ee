"""The MES db: production orders, operators, assignments and status history."""

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, DateTime, ForeignKey, Index, String, func, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from orderflow.data.base import MesBase, OutboxTable, ProcessedEventTable, UpkeepTable, Versioned


class Operator(Versioned, MesBase):
    __tablename__ = "operators"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(200))


class ProductionOrder(Versioned, MesBase):
    """One per confirmed shop order; its id is the shop order's id."""

    __tablename__ = "production_orders"
    __table_args__ = (
        Index("ix_production_orders_status_id", "status", "id"),
        # an operator's lists, newest change first (mesdb_0008)
        Index(
            "ix_production_orders_operator_recent",
            "operator_id",
            text("updated_at DESC"),
            text("id DESC"),
        ),
        Index(
            "ix_production_orders_operator_status_recent",
            "operator_id",
            "status",
            text("updated_at DESC"),
            text("id DESC"),
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    status: Mapped[str] = mapped_column(String(20), default="queued", server_default="queued")
    operator_id: Mapped[int | None] = mapped_column(ForeignKey("operators.id"))
    lines: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, default=list, server_default="[]")


class Product(MesBase):
    """What production knows of an item: its name, from the events that queue orders (the MES
    keeps the product data it makes things from; it has no catalogue of its own)."""

    __tablename__ = "products"

    item_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    name: Mapped[str] = mapped_column(String(200))
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )


class ProductionStatusCount(MesBase):
    """How many production orders are in each status, kept exact by triggers (migration
    mesdb_0002, `migrations/status_counts.py`): the boards' totals read one row."""

    __tablename__ = "production_status_counts"

    status: Mapped[str] = mapped_column(String(20), primary_key=True)
    n: Mapped[int] = mapped_column(BigInteger)


class Assignment(MesBase):
    """Who held an order, from when to when."""

    __tablename__ = "assignments"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("production_orders.id"), index=True)
    operator_id: Mapped[int] = mapped_column(ForeignKey("operators.id"), index=True)
    claimed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    outcome: Mapped[str | None] = mapped_column(String(20))  # released | completed


class StatusHistory(MesBase):
    __tablename__ = "status_history"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    order_id: Mapped[int] = mapped_column(BigInteger, index=True)
    from_status: Mapped[str | None] = mapped_column(String(20))
    to_status: Mapped[str] = mapped_column(String(20))
    operator_id: Mapped[int | None] = mapped_column(BigInteger)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class MesOutbox(OutboxTable, MesBase):
    pass


class MesProcessedEvent(ProcessedEventTable, MesBase):
    pass


class MesUpkeep(UpkeepTable, MesBase):
    pass
