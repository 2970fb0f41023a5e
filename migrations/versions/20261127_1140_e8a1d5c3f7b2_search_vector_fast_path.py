"""PostgreSQL: the search vector calls translate() only for text with Latin diacritics.

translate() looks every character of a text up among the hundreds of letters it folds: a
millisecond for a Comtrade row's document, most of a bulk import's time. A regular
expression over the same letters finds in microseconds the texts that hold none of them,
for which translate() changes nothing, so every vector stays exactly as it was.

The search_index migration now makes the column this way. This one brings databases made
before that to it, computing every vector again; on any other it does nothing, and going
down leaves the column as search_index now makes it (there is nothing to undo).

Revision ID: e8a1d5c3f7b2
Revises: 7c4f2a9e1b03
Create Date: 2026-11-27 11:40:00
"""

import unicodedata
from collections.abc import Sequence

from alembic import context, op

revision: str = "e8a1d5c3f7b2"
down_revision: str | None = "7c4f2a9e1b03"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen here rather than imported, as in the search_index migration this mirrors.
PUNCTUATION = "'[!-/:-@[-`{-~]'"


def _latin_diacritics() -> tuple[str, str]:
    accented, plain = [], []
    for code in range(0x80, 0x10000):
        parts = unicodedata.normalize("NFD", chr(code))
        base, marks = parts[0], parts[1:]
        if marks and base.isascii() and base.isalpha() and all(map(unicodedata.combining, marks)):
            accented.append(chr(code))
            plain.append(base)
    return "".join(accented), "".join(plain)


ACCENTED, PLAIN = _latin_diacritics()


def _words(column: str) -> str:
    stripped = f"regexp_replace({column}, {PUNCTUATION}, ' ', 'g')"
    folded = f"translate({stripped}, '{ACCENTED}', '{PLAIN}')"
    # The letters are neither ] nor ^ nor - nor \: a plain bracket expression.
    fast = f"CASE WHEN {column} ~ '[{ACCENTED}]' THEN {folded} ELSE {stripped} END"
    return f"to_tsvector('simple'::regconfig, {fast})"


def _vector() -> list[str]:
    """The statements that compute every document's vector again, within the migration's
    transaction (dropping the column drops its index too)."""
    expression = f"setweight({_words('title')}, 'A') || setweight({_words('body')}, 'B')"
    return [
        # Every document's vector is computed again: no statement timeout cuts that short.
        "SET LOCAL statement_timeout = 0",
        "ALTER TABLE search_document DROP COLUMN tsv",
        f"ALTER TABLE search_document ADD COLUMN tsv TSVECTOR GENERATED ALWAYS AS ({expression}) "
        "STORED",
        "CREATE INDEX ix_search_document_tsv ON search_document USING gin (tsv)",
    ]


def _is_fast() -> bool:
    expression = op.get_bind().exec_driver_sql(
        "SELECT generation_expression FROM information_schema.columns "
        "WHERE table_schema = current_schema() AND table_name = 'search_document' "
        "AND column_name = 'tsv'"
    )
    return "CASE" in (expression.scalar_one() or "")


def upgrade() -> None:
    if op.get_context().dialect.name != "postgresql":  # SQLite's FTS5 folds as it tokenizes
        return
    # Offline (--sql) the column cannot be read: the script computes the vectors again.
    if context.is_offline_mode() or not _is_fast():
        for statement in _vector():
            op.execute(statement)


def downgrade() -> None:
    """Nothing: the column is already as the search_index migration makes it."""
