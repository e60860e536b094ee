"""operator_recent: indexes that serve an operator's lists as they are read, newest change first

`GET /orders?operator_id=` (and `&status=`) lists an operator's orders by `updated_at DESC, id
DESC`. With only (operator_id, status) to go on, PostgreSQL fetched every order the operator
ever had and sorted them: 8.5-8.9 ms for ~3,000 orders at 1,000,000 (an operator's list is read
right after each of their claims, which invalidates it, so nearly every read was this query).
With these indexes the page is an index's first rows. The one with the status replaces
(operator_id, status), its prefix.

Revision ID: mesdb_0008
Revises: mesdb_0007
Create Date: 2026-12-07 16:45:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "mesdb_0008"
down_revision: str | None = "mesdb_0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None
TABLE = "production_orders"


RECENT = [sa.text("updated_at DESC"), sa.text("id DESC")]


def upgrade() -> None:
    op.create_index("ix_production_orders_operator_recent", TABLE, ["operator_id", *RECENT])
    op.create_index(
        "ix_production_orders_operator_status_recent", TABLE, ["operator_id", "status", *RECENT]
    )
    op.drop_index("ix_production_orders_operator_id_status", table_name=TABLE)


def downgrade() -> None:
    op.create_index("ix_production_orders_operator_id_status", TABLE, ["operator_id", "status"])
    op.drop_index("ix_production_orders_operator_status_recent", table_name=TABLE)
    op.drop_index("ix_production_orders_operator_recent", table_name=TABLE)
