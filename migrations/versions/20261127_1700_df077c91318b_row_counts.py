"""PostgreSQL keeps the row count of every listed table, for the `total` of unfiltered lists.

PostgreSQL counts rows by reading them (MVCC: no count is stored), so the `total` of
`/v1/trade` cost 6 ms at 100,000 rows and grows with the table; SQLite reads its count
off the b-tree in microseconds. Statement-level triggers with transition tables add and
subtract what each statement inserted or deleted (a COPY of a whole import batch is one
update), in the same transaction, so a read sees the count of its own snapshot.

Revision ID: df077c91318b
Revises: 3f6d2b8a9c41
Create Date: 2026-11-27 17:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "df077c91318b"
down_revision: str | None = "3f6d2b8a9c41"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen here rather than imported: a migration must not change when app code does.
TABLES = (
    "source",
    "organization",
    "person",
    "diplomatic_relation",
    "treaty",
    "visit",
    "trade_figure",
    "transport_route",
    "membership",
    "figure",
)
FUNCTION = """CREATE OR REPLACE FUNCTION dyad_count_rows() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        UPDATE row_count SET total = total + (SELECT count(*) FROM added)
        WHERE table_name = TG_TABLE_NAME;
    ELSIF TG_OP = 'DELETE' THEN
        UPDATE row_count SET total = total - (SELECT count(*) FROM removed)
        WHERE table_name = TG_TABLE_NAME;
    ELSE
        UPDATE row_count SET total = 0 WHERE table_name = TG_TABLE_NAME;
    END IF;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql"""
TRIGGERS = (
    ("dyad_rows_added", "INSERT", "REFERENCING NEW TABLE AS added"),
    ("dyad_rows_removed", "DELETE", "REFERENCING OLD TABLE AS removed"),
    ("dyad_rows_truncated", "TRUNCATE", ""),
)


def upgrade() -> None:
    if op.get_context().dialect.name != "postgresql":  # SQLite's count(*) is already cheap
        return
    op.execute("CREATE TABLE row_count (table_name text PRIMARY KEY, total bigint NOT NULL)")
    op.execute(FUNCTION)
    for table in TABLES:
        # Counted and watched under one lock, so that no write falls between the two.
        op.execute(f"LOCK TABLE {table} IN SHARE MODE")
        op.execute(f"INSERT INTO row_count SELECT '{table}', count(*) FROM {table}")  # noqa: S608
        for name, event, referencing in TRIGGERS:
            op.execute(
                f"CREATE TRIGGER {name} AFTER {event} ON {table} {referencing} "
                "FOR EACH STATEMENT EXECUTE FUNCTION dyad_count_rows()"
            )


def downgrade() -> None:
    if op.get_context().dialect.name != "postgresql":
        return
    for table in TABLES:
        for name, _, _ in TRIGGERS:
            op.execute(f"DROP TRIGGER IF EXISTS {name} ON {table}")
    op.execute("DROP FUNCTION IF EXISTS dyad_count_rows()")
    op.execute("DROP TABLE IF EXISTS row_count")
