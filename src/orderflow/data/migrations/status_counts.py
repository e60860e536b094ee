"""A counter table per status, kept exact by statement-level triggers on the counted table.

Counting the rows of one status over a million takes a quarter of a second; the lists and
counts that need it change with every write, so their cached views are often cold and a miss
must be cheap. The triggers use transition tables, so a COPY of a whole seeding batch updates
each status once, and each statement adds its deltas in status order, so concurrent writers
lock the counter rows in one order (no deadlock between them).
"""

from alembic import op

# Adds each status's delta.
_APPLY = """
INSERT INTO {counts} AS c (status, n)
SELECT status, sum(delta) FROM ({deltas}) AS d GROUP BY status ORDER BY status
ON CONFLICT (status) DO UPDATE SET n = c.n + EXCLUDED.n
"""
_DELTAS = {
    "insert": ("INSERT", "NEW TABLE AS new_rows", "SELECT status, 1 AS delta FROM new_rows"),
    "delete": ("DELETE", "OLD TABLE AS old_rows", "SELECT status, -1 AS delta FROM old_rows"),
    "update": (
        "UPDATE",
        "OLD TABLE AS old_rows NEW TABLE AS new_rows",
        """SELECT o.status, -1 AS delta FROM old_rows o JOIN new_rows n USING (id)
           WHERE o.status <> n.status
           UNION ALL
           SELECT n.status, 1 FROM old_rows o JOIN new_rows n USING (id)
           WHERE o.status <> n.status""",
    ),
}


def create_status_counts(source: str, counts: str) -> None:
    """`counts(status, n)` for the rows of `source` (which has `id` and `status`), filled
    from the rows already there and kept by triggers from then on."""
    op.execute(
        f"CREATE TABLE {counts} (status varchar(20) NOT NULL, n bigint NOT NULL, "
        f"CONSTRAINT pk_{counts} PRIMARY KEY (status))"
    )
    for event, (verb, tables, deltas) in _DELTAS.items():
        apply = _APPLY.format(counts=counts, deltas=deltas)
        op.execute(
            f"CREATE FUNCTION {counts}_{event}() RETURNS trigger LANGUAGE plpgsql AS $$ "
            f"BEGIN {apply}; RETURN NULL; END $$"
        )
        op.execute(
            f"CREATE TRIGGER {counts}_{event} AFTER {verb} ON {source} REFERENCING {tables} "
            f"FOR EACH STATEMENT EXECUTE FUNCTION {counts}_{event}()"
        )
    op.execute(
        f"CREATE FUNCTION {counts}_truncate() RETURNS trigger LANGUAGE plpgsql AS $$ "
        f"BEGIN DELETE FROM {counts}; RETURN NULL; END $$"
    )
    op.execute(
        f"CREATE TRIGGER {counts}_truncate AFTER TRUNCATE ON {source} "
        f"FOR EACH STATEMENT EXECUTE FUNCTION {counts}_truncate()"
    )
    op.execute(f"INSERT INTO {counts} SELECT status, count(*) FROM {source} GROUP BY status")


def drop_status_counts(source: str, counts: str) -> None:
    for event in (*_DELTAS, "truncate"):
        op.execute(f"DROP TRIGGER {counts}_{event} ON {source}")
        op.execute(f"DROP FUNCTION {counts}_{event}()")
    op.execute(f"DROP TABLE {counts}")
