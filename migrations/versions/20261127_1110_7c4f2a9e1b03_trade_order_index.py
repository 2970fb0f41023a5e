"""Index /v1/trade's default order (year DESC, id): no sort for a page, deep pages cheap.

Revision ID: 7c4f2a9e1b03
Revises: 5b0c3a9e7d21
Create Date: 2026-11-27 11:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "7c4f2a9e1b03"
down_revision: str | None = "5b0c3a9e7d21"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_trade_figure_year_id", "trade_figure", [sa.column("year").desc(), "id"])
    op.drop_index("ix_trade_figure_year", table_name="trade_figure")


def downgrade() -> None:
    op.create_index("ix_trade_figure_year", "trade_figure", ["year"])
    op.drop_index("ix_trade_figure_year_id", table_name="trade_figure")
