"""The cache upkeep journal (`data.base.UpkeepTable`), the same table in both databases."""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

TABLE = "cache_upkeep"


def create_cache_upkeep() -> None:
    op.create_table(
        TABLE,
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("entity", sa.Text(), nullable=False),
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column(
            "families",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default="[]",
            nullable=False,
        ),
        sa.Column("event", sa.Text(), nullable=True),
        sa.Column("body", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{TABLE}")),
    )
    op.create_index("ix_cache_upkeep_entity_key", TABLE, ["entity", "key"])


def drop_cache_upkeep() -> None:
    op.drop_index("ix_cache_upkeep_entity_key", table_name=TABLE)
    op.drop_table(TABLE)


def add_traceparent() -> None:
    # Nullable, no default: instant, and rows written before it (or untraced) have none.
    op.add_column(TABLE, sa.Column("traceparent", sa.String(length=55), nullable=True))


def drop_traceparent() -> None:
    op.drop_column(TABLE, "traceparent")
