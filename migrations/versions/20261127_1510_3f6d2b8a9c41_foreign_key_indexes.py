"""Index the foreign keys that had none: relation notes, roles, a figure's second country.

Reads by these keys scanned their tables: the dossier read every relation note to find
its pair's (0.8 ms at 10,000 notes, growing with them), a person's roles and an
organization's members scanned the roles, and a country's figures on the second side
scanned the figures. Deleting a parent (ON DELETE CASCADE / RESTRICT) scanned them too.

Revision ID: 3f6d2b8a9c41
Revises: e8a1d5c3f7b2
Create Date: 2026-11-27 15:10:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "3f6d2b8a9c41"
down_revision: str | None = "e8a1d5c3f7b2"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEXES = (
    ("ix_relation_note_relation_id", "relation_note", ["relation_id", "position"]),
    ("ix_role_person_id", "role", ["person_id"]),
    ("ix_role_organization_id", "role", ["organization_id"]),
    ("ix_figure_country_b", "figure", ["country_b"]),
)


def upgrade() -> None:
    for name, table, columns in INDEXES:
        op.create_index(name, table, columns)


def downgrade() -> None:
    for name, table, _ in reversed(INDEXES):
        op.drop_index(name, table_name=table)
