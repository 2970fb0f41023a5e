"""Full-text search index: FTS5 on SQLite, a weighted tsvector under GIN on PostgreSQL.

The tables are named ``search_*`` so that autogenerate leaves them alone (they are not in
the models: ``app.migrate.include_object``). ``app.search`` owns what goes in them.

Revision ID: 8128987b7ee5
Revises: 62e51d65f564
Create Date: 2026-11-27 06:00:00.000000
"""

import unicodedata
from collections.abc import Sequence

from alembic import context, op

revision: str = "8128987b7ee5"
down_revision: str | None = "62e51d65f564"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# SQLite: the documents live in an ordinary table, so that replacing one finds it through
# the (type, id) index; the FTS5 table indexes them as "external content" (its columns are
# read from search_entry by rowid) and triggers keep the two in step.
SQLITE_UPGRADE = (
    """
    CREATE TABLE search_entry (
        doc INTEGER NOT NULL,
        type VARCHAR(20) NOT NULL,
        id VARCHAR(120) NOT NULL,
        title TEXT NOT NULL,
        body TEXT NOT NULL,
        CONSTRAINT pk_search_entry PRIMARY KEY (doc),
        CONSTRAINT uq_search_entry_type_id UNIQUE (type, id)
    )
    """,
    """
    CREATE VIRTUAL TABLE search_document USING fts5(
        type UNINDEXED, id UNINDEXED, title, body,
        content='search_entry', content_rowid='doc',
        tokenize='unicode61 remove_diacritics 2'
    )
    """,
    """
    CREATE TRIGGER search_entry_ai AFTER INSERT ON search_entry BEGIN
        INSERT INTO search_document (rowid, type, id, title, body)
        VALUES (new.doc, new.type, new.id, new.title, new.body);
    END
    """,
    """
    CREATE TRIGGER search_entry_ad AFTER DELETE ON search_entry BEGIN
        INSERT INTO search_document (search_document, rowid, type, id, title, body)
        VALUES ('delete', old.doc, old.type, old.id, old.title, old.body);
    END
    """,
    """
    CREATE TRIGGER search_entry_au AFTER UPDATE ON search_entry BEGIN
        INSERT INTO search_document (search_document, rowid, type, id, title, body)
        VALUES ('delete', old.doc, old.type, old.id, old.title, old.body);
        INSERT INTO search_document (rowid, type, id, title, body)
        VALUES (new.doc, new.type, new.id, new.title, new.body);
    END
    """,
)
SQLITE_DOWNGRADE = (
    "DROP TRIGGER IF EXISTS search_entry_au",
    "DROP TRIGGER IF EXISTS search_entry_ad",
    "DROP TRIGGER IF EXISTS search_entry_ai",
    "DROP TABLE IF EXISTS search_document",
    "DROP TABLE IF EXISTS search_entry",
)

# PostgreSQL: the text is brought to what FTS5's tokenizer sees before the parser reads it.
# ASCII punctuation becomes a space, so that "Kassym-Jomart", "t/year", "$332.2" or a URL
# split into plain words (the default parser keeps them whole as compound, file, float or URL
# tokens, which a word-by-word query never matches). Latin letters with diacritics become
# their base letter, as unicode61's remove_diacritics does: every character whose canonical
# decomposition is an ASCII letter and combining marks (decompositions never change, so the
# two strings are the same whatever Python builds them). Titles weigh A, bodies B.
# translate() looks every character up among the hundreds of letters it folds, a millisecond
# for a long document; a regular expression over the same letters finds in microseconds the
# texts that hold none of them, for which translate() would change nothing. (Databases made
# before that test was added here get it from migration e8a1d5c3f7b2; the vectors are equal.)
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
    return (
        f"to_tsvector('simple'::regconfig, "
        f"CASE WHEN {column} ~ '[{ACCENTED}]' THEN {folded} ELSE {stripped} END)"
    )


POSTGRESQL_UPGRADE = (
    f"""
    CREATE TABLE search_document (
        type VARCHAR(20) NOT NULL,
        id VARCHAR(120) NOT NULL,
        title TEXT NOT NULL,
        body TEXT NOT NULL,
        tsv TSVECTOR GENERATED ALWAYS AS (
            setweight({_words("title")}, 'A') || setweight({_words("body")}, 'B')
        ) STORED,
        CONSTRAINT pk_search_document PRIMARY KEY (type, id)
    )
    """,
    "CREATE INDEX ix_search_document_tsv ON search_document USING gin (tsv)",
)
POSTGRESQL_DOWNGRADE = ("DROP TABLE IF EXISTS search_document",)


def upgrade() -> None:
    sqlite = op.get_context().dialect.name == "sqlite"
    for statement in SQLITE_UPGRADE if sqlite else POSTGRESQL_UPGRADE:
        op.execute(statement)
    if not context.is_offline_mode():
        # A database migrated before search existed already holds facts: index them now.
        # (This runs app code; should a later migration change the tables the readers use,
        # freeze this step as plain SQL.)
        from app.search import rebuild

        rebuild(op.get_bind())


def downgrade() -> None:
    sqlite = op.get_context().dialect.name == "sqlite"
    for statement in SQLITE_DOWNGRADE if sqlite else POSTGRESQL_DOWNGRADE:
        op.execute(statement)
