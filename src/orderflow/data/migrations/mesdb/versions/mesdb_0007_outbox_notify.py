"""outbox_notify: a NOTIFY on `outbox` when events are written, so the relay waits for them
instead of polling (relay/bell.py, data/migrations/outbox_notify.py)

Revision ID: mesdb_0007
Revises: mesdb_0006
Create Date: 2026-12-07 07:30:00
"""

from collections.abc import Sequence

from orderflow.data.migrations.outbox_notify import create_outbox_notify, drop_outbox_notify

revision: str = "mesdb_0007"
down_revision: str | None = "mesdb_0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    create_outbox_notify()


def downgrade() -> None:
    drop_outbox_notify()
