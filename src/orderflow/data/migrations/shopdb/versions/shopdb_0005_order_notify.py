"""order_notify: a NOTIFY on the `order_changes` channel when an order is placed or its status
changes, so that an open "my orders" page follows it live (apps/shop/live.py)

The payload is `client_id:order_id:version`. PostgreSQL sends it when the transaction commits
and never for one that rolls back; a listener that was disconnected re-reads everything.

Revision ID: shopdb_0005
Revises: shopdb_0004
Create Date: 2026-12-06 22:50:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "shopdb_0005"
down_revision: str | None = "shopdb_0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(
        """
        CREATE FUNCTION notify_order_change() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          PERFORM pg_notify('order_changes', NEW.client_id || ':' || NEW.id || ':' || NEW.version);
          RETURN NULL;
        END $$
        """
    )
    op.execute(
        "CREATE TRIGGER orders_notify AFTER INSERT OR UPDATE OF status ON orders"
        " FOR EACH ROW EXECUTE FUNCTION notify_order_change()"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER orders_notify ON orders")
    op.execute("DROP FUNCTION notify_order_change()")
