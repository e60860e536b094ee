"""Declarative bases, one per database, with a naming convention for constraints."""

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, DateTime, Index, MetaData, String, Text, func, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, declared_attr, mapped_column

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class ShopBase(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class MesBase(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Versioned:
    """A mutable row: every update increments `version`, which the cache compares on fill."""

    version: Mapped[int] = mapped_column(BigInteger, default=1, server_default="1")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class OutboxTable:
    """A transactional outbox: events written in the same transaction as the change they
    announce; the relay delivers them to the other database and then marks them published."""

    __tablename__ = "outbox"

    @declared_attr.directive
    def __table_args__(cls) -> tuple[Any, ...]:
        unpublished = text("published_at IS NULL")
        return (Index("ix_outbox_unpublished", "id", postgresql_where=unpublished),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    event_type: Mapped[str] = mapped_column(String(40))
    order_id: Mapped[int] = mapped_column(BigInteger)
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB)
    # The W3C trace context of the write that announced the event: the relay's delivery
    # continues that trace (kit/tracing.py). NULL when the writer traced nothing.
    traceparent: Mapped[str | None] = mapped_column(String(55))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    published_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class UpkeepTable:
    """The cache upkeep journal, an outbox for the cache: what a write owes the cache (a put or
    tombstone of one entry, generation bumps, an MES stream event), written in the write's own
    transaction and deleted once applied. A row that stays (its writer died after the commit,
    or Redis failed the upkeep) is repaired by the API processes (`service_cache/journal.py`)."""

    __tablename__ = "cache_upkeep"

    @declared_attr.directive
    def __table_args__(cls) -> tuple[Any, ...]:
        return (Index("ix_cache_upkeep_entity_key", "entity", "key"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    entity: Mapped[str] = mapped_column(Text)  # the cache Entity's name
    key: Mapped[str] = mapped_column(Text)  # the entry key, JSON (tuples survive as arrays)
    version: Mapped[int] = mapped_column(BigInteger)
    families: Mapped[list[str]] = mapped_column(JSONB, server_default="[]")
    event: Mapped[str | None] = mapped_column(Text)  # an MES stream event type
    body: Mapped[dict[str, Any] | None] = mapped_column(JSONB)  # to republish the event
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    traceparent: Mapped[str | None] = mapped_column(String(55))  # the writer's trace, if sampled


class ProcessedEventTable:
    """Ids of the other database's events already applied here: a redelivery is a no-op."""

    __tablename__ = "processed_events"

    event_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    processed_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
