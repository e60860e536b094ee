"""cache_upkeep.traceparent: the W3C trace context of the write that owes the cache each row

A row repaired later (its writer died, or Redis failed its upkeep) is then a span of that
write's trace (`service_cache/journal.py`).

Revision ID: shopdb_0006
Revises: shopdb_0005
Create Date: 2026-12-07 01:40:00
"""

from collections.abc import Sequence

from orderflow.data.migrations.cache_upkeep import add_traceparent, drop_traceparent

revision: str = "shopdb_0006"
down_revision: str | None = "shopdb_0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    add_traceparent()


def downgrade() -> None:
    drop_traceparent()
