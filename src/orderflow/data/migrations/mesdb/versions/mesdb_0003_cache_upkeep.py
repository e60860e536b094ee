"""cache_upkeep: the journal of what writes owe the cache (see migrations/cache_upkeep.py)

Revision ID: mesdb_0003
Revises: mesdb_0002
Create Date: 2026-11-29 16:00:00
"""

from collections.abc import Sequence

from orderflow.data.migrations.cache_upkeep import create_cache_upkeep, drop_cache_upkeep

revision: str = "mesdb_0003"
down_revision: str | None = "mesdb_0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    create_cache_upkeep()


def downgrade() -> None:
    drop_cache_upkeep()
