"""products: item names in the MES, from the events that queue orders

Names of orders queued before this revision cannot come from here (the MES db has no
catalogue): the relay fills them from ShopDB when it starts (`relay/backfill.py`), and until it
has, a board names such an item "item N".

Revision ID: mesdb_0005
Revises: mesdb_0004
Create Date: 2026-12-06 22:50:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "mesdb_0005"
down_revision: str | None = "mesdb_0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "products",
        sa.Column("item_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("item_id", name=op.f("pk_products")),
    )


def downgrade() -> None:
    op.drop_table("products")
