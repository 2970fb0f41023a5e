"""PostgreSQL: the search vector folds Latin diacritics by Unicode decomposition.

translate() looked each character of a text up among the hundreds of letters it folds:
about 0.5 ms for a document holding any of them (one Comtrade document in twenty), a quarter
of the time a Comtrade import spent writing search documents. Now such a text is decomposed (NFD), the
combining marks that follow an ASCII letter are dropped, and it is composed again (NFC),
about 20 µs a document. A letter whose canonical decomposition is an ASCII letter and
combining marks, which is what translate() folded, comes out as that letter in both ways;
other letters (й, ά) come out as they went in. Unlike translate(), this also folds an
accent written as a separate combining mark (``e`` + U+0301), as SQLite's tokenizer does.
Texts without those letters still skip the folding (migration e8a1d5c3f7b2).

Going down computes the vectors again with translate().

Revision ID: a4c9e1f07d35
Revises: df077c91318b
Create Date: 2026-11-27 20:20:00
"""

import unicodedata
from collections.abc import Sequence

from alembic import op

revision: str = "a4c9e1f07d35"
down_revision: str | None = "df077c91318b"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen here rather than imported, as in the migrations this follows.
PUNCTUATION = "'[!-/:-@[-`{-~]'"
MARKS_AFTER_LATIN = r"'([A-Za-z])[\u0300-\u036F]+'"


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


def _words(column: str, decompose: bool) -> str:
    stripped = f"regexp_replace({column}, {PUNCTUATION}, ' ', 'g')"
    if decompose:
        bare = f"regexp_replace(normalize({stripped}, NFD), {MARKS_AFTER_LATIN}, '\\1', 'g')"
        folded = f"normalize({bare}, NFC)"
    else:
        folded = f"translate({stripped}, '{ACCENTED}', '{PLAIN}')"
    # The letters are neither ] nor ^ nor - nor \: a plain bracket expression.
    fast = f"CASE WHEN {column} ~ '[{ACCENTED}]' THEN {folded} ELSE {stripped} END"
    return f"to_tsvector('simple'::regconfig, {fast})"


def _vector(decompose: bool) -> None:
    """Compute every document's vector again, within the migration's transaction (dropping
    the column drops its index too)."""
    title, body = _words("title", decompose), _words("body", decompose)
    expression = f"setweight({title}, 'A') || setweight({body}, 'B')"
    # Every document's vector is computed again: no statement timeout cuts that short.
    op.execute("SET LOCAL statement_timeout = 0")
    op.execute("ALTER TABLE search_document DROP COLUMN tsv")
    op.execute(
        f"ALTER TABLE search_document ADD COLUMN tsv TSVECTOR GENERATED ALWAYS AS ({expression}) "
        "STORED"
    )
    op.execute("CREATE INDEX ix_search_document_tsv ON search_document USING gin (tsv)")


def upgrade() -> None:
    if op.get_context().dialect.name == "postgresql":  # SQLite's FTS5 folds as it tokenizes
        _vector(decompose=True)


def downgrade() -> None:
    if op.get_context().dialect.name == "postgresql":
        _vector(decompose=False)
