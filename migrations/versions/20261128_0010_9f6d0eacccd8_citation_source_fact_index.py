"""Index a source's citations in the order its facts are listed: (source_id, fact_type,
fact_id, position) replaces ix_citation_source_id.

A source shows its first facts and pages through the rest (`/v1/sources/{id}/facts`);
with the source's id alone, a page of a source cited by a million imported trade figures
sorted all of them.

Revision ID: 9f6d0eacccd8
Revises: 86f4dbf53fef
Create Date: 2026-11-28 00:10:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "9f6d0eacccd8"
down_revision: str | None = "86f4dbf53fef"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_citation_source_fact", "citation", ["source_id", "fact_type", "fact_id", "position"]
    )
    op.drop_index("ix_citation_source_id", table_name="citation")


def downgrade() -> None:
    op.create_index("ix_citation_source_id", "citation", ["source_id"])
    op.drop_index("ix_citation_source_fact", table_name="citation")
