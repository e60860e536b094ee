"""The outbox's bell (`relay/bell.py`): a NOTIFY on `outbox` when rows are written to it, the
same in both databases. A statement trigger, not a row trigger: one call per INSERT, and
PostgreSQL sends one notification per transaction whatever it raised (same channel, same
empty payload), at commit, never for a transaction that rolls back."""

from alembic import op


def create_outbox_notify() -> None:
    op.execute(
        """
        CREATE FUNCTION notify_outbox() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          PERFORM pg_notify('outbox', '');
          RETURN NULL;
        END $$
        """
    )
    op.execute(
        "CREATE TRIGGER outbox_notify AFTER INSERT ON outbox"
        " FOR EACH STATEMENT EXECUTE FUNCTION notify_outbox()"
    )


def drop_outbox_notify() -> None:
    op.execute("DROP TRIGGER outbox_notify ON outbox")
    op.execute("DROP FUNCTION notify_outbox()")
