"""PostgreSQL announces every new dataset revision (NOTIFY dyad_revision) for the caches.

Revision ID: 5b0c3a9e7d21
Revises: d1f727452bfc
Create Date: 2026-11-27 06:20:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "5b0c3a9e7d21"
down_revision: str | None = "d1f727452bfc"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen here rather than imported: a migration must not change when app code does.
NOTIFY = [
    """CREATE OR REPLACE FUNCTION dyad_notify_revision() RETURNS trigger AS $$
BEGIN
    PERFORM pg_notify('dyad_revision', NEW.revision::text);
    RETURN NEW;
END;
$$ LANGUAGE plpgsql""",
    "DROP TRIGGER IF EXISTS dyad_revision_changed ON dataset_state",
    """CREATE TRIGGER dyad_revision_changed AFTER INSERT OR UPDATE OF revision
ON dataset_state FOR EACH ROW EXECUTE FUNCTION dyad_notify_revision()""",
]


def upgrade() -> None:
    if op.get_context().dialect.name == "postgresql":  # SQLite caches watch data_version
        for statement in NOTIFY:
            op.execute(statement)


def downgrade() -> None:
    if op.get_context().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS dyad_revision_changed ON dataset_state")
        op.execute("DROP FUNCTION IF EXISTS dyad_notify_revision()")
