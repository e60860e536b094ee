"""order_status_counts: orders per status, kept by triggers (see migrations/status_counts.py)

Revision ID: shopdb_0002
Revises: shopdb_0001
Create Date: 2026-11-25 10:40:00
"""

from collections.abc import Sequence

from orderflow.data.migrations.status_counts import create_status_counts, drop_status_counts

revision: str = "shopdb_0002"
down_revision: str | None = "shopdb_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    create_status_counts("orders", "order_status_counts")


def downgrade() -> None:
    drop_status_counts("orders", "order_status_counts")
