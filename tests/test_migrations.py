"""Migrations build the models' schema, match the models exactly, and run down and up again."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

import pycountry
import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from conftest import SEED, count_rows
from sqlalchemy import Engine, func, insert, inspect, select, text

from app import dataset, migrate, search
from app import models as m
from app.db import create_db_engine
from app.models import metadata, table
from app.records import COLLECTIONS, MAIN_TABLE
from app.settings import PROJECT_ROOT, Settings

VERSIONS = PROJECT_ROOT / "migrations" / "versions"
GENERATED_TRADE = 100_000
CITED = "azernews-2022-08-24-tokayev-baku"  # a seed source


@contextmanager
def connected(url: str) -> Iterator[Engine]:
    engine = create_db_engine(url)
    try:
        yield engine
    finally:
        engine.dispose()


def modelled_tables(engine: Engine) -> set[str]:
    """Tables in the database, less Alembic's own and the unmodelled full-text ones."""
    names = set(inspect(engine).get_table_names())
    return {
        n
        for n in names - {"alembic_version"}
        if not n.startswith(migrate.UNMODELLED_TABLE_PREFIXES)
    }


def test_upgrade_builds_every_table_and_loads_the_countries(empty_url: str) -> None:
    with connected(empty_url) as engine:
        assert modelled_tables(engine) == set()
        assert migrate.current_revision(engine) is None

    migrate.upgrade(empty_url)

    country = table(m.Country)
    with connected(empty_url) as engine:
        assert modelled_tables(engine) == set(metadata.tables)
        assert migrate.is_at_head(engine)
        with engine.connect() as connection:
            assert count_rows(connection, m.Country) == 249
            kz = connection.execute(select(country).where(country.c.iso2 == "KZ")).one()
            assert dataset.current_state(connection) == (0, None)
    assert kz._asdict() == {
        "iso2": "KZ",
        "iso3": "KAZ",
        "numeric": "398",
        "name": "Kazakhstan",
        "official_name": "Republic of Kazakhstan",
    }


def test_every_foreign_key_leads_an_index(empty_url: str) -> None:
    """Children are read by their parent's key, and deleting a parent looks for them: a
    foreign key no index starts with is a scan of its table each time."""
    migrate.upgrade(empty_url)
    with connected(empty_url) as engine:
        inspector = inspect(engine)
        for name in modelled_tables(engine):
            keys = [
                *(i["column_names"] for i in inspector.get_indexes(name)),
                *(u["column_names"] for u in inspector.get_unique_constraints(name)),
                inspector.get_pk_constraint(name)["constrained_columns"],
            ]
            leading = {columns[0] for columns in keys if columns}
            for fk in inspector.get_foreign_keys(name):
                assert fk["constrained_columns"][0] in leading, f"{name}: {fk}"


def test_no_index_is_the_start_of_a_longer_one(empty_url: str) -> None:
    """An index whose columns lead a longer index, a unique constraint or the primary key
    finds nothing the longer one does not, and every write pays for both."""
    migrate.upgrade(empty_url)
    with connected(empty_url) as engine:
        inspector = inspect(engine)
        for name in modelled_tables(engine):
            indexes = [i for i in inspector.get_indexes(name) if not i.get("duplicates_constraint")]
            keys = [
                *(i["column_names"] for i in indexes),
                *(u["column_names"] for u in inspector.get_unique_constraints(name)),
                inspector.get_pk_constraint(name)["constrained_columns"],
            ]
            for index in indexes:
                columns = index["column_names"]
                if index["unique"]:
                    continue  # a constraint, not only a way in
                led = [k for k in keys if len(k) > len(columns) and k[: len(columns)] == columns]
                assert not led, f"{name}: {index['name']} {columns} leads {led}"


def test_autogenerate_finds_no_difference(empty_url: str) -> None:
    migrate.upgrade(empty_url)
    with connected(empty_url) as engine, engine.connect() as connection:
        context = MigrationContext.configure(
            connection,
            opts={
                "target_metadata": metadata,
                "compare_type": True,
                "include_object": migrate.include_object,
            },
        )
        assert compare_metadata(context, metadata) == []
    # The same through env.py itself, so its own settings are the ones checked.
    command.check(migrate.alembic_config(empty_url))


def test_downgrade_to_base_and_back_on_a_seeded_database(empty_url: str) -> None:
    migrate.upgrade(empty_url)
    with connected(empty_url) as engine:
        assert dataset.load(engine, dataset.read_file(SEED)).created == 29

    migrate.downgrade(empty_url, "base")
    with connected(empty_url) as engine:
        assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
        assert migrate.current_revision(engine) is None

    migrate.upgrade(empty_url)
    with connected(empty_url) as engine:
        assert modelled_tables(engine) == set(metadata.tables)
        report = dataset.load(engine, dataset.read_file(SEED))
        assert (report.created, report.revision) == (29, 1)
        with engine.connect() as connection:
            assert dataset.dumps(dataset.export_dataset(connection)) == SEED.read_bytes()


def generated_trade(rows: int) -> Iterator[dict[str, object]]:
    """``rows`` distinct trade figures over every pair of countries and many years."""
    codes = sorted(c.alpha_2 for c in pycountry.countries)
    made = 0
    for year in range(1990, 2030):
        for reporter in codes:
            for partner in codes:
                for flow in ("export", "import", "turnover"):
                    if made == rows:
                        return
                    if reporter == partner or (flow == "turnover" and reporter > partner):
                        continue
                    yield {
                        "id": f"gen-{reporter}-{partner}-{year}-{flow}".lower(),
                        "reporter": reporter,
                        "partner": partner,
                        "year": year,
                        "flow": flow,
                        "value": made * 7_919 % 10**11,
                        "currency": "USD",
                        "approximate": made % 10 == 0,
                    }
                    made += 1


def add_generated_trade(engine: Engine, rows: int) -> None:
    """Trade figures straight into the tables, each citing a seed source: a COPY per table
    on PostgreSQL, an executemany on SQLite. Seconds, where :func:`dataset.load` of as many
    takes minutes on PostgreSQL."""
    figures = list(generated_trade(rows))
    citations = [
        {
            "fact_type": "trade",
            "fact_id": f["id"],
            "position": 0,
            "source_id": CITED,
            "quote": f"Generated figure {i} for the migration test.",
        }
        for i, f in enumerate(figures)
    ]
    with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            cursor = connection.connection.cursor()
            for model, batch in ((m.TradeFigure, figures), (m.Citation, citations)):
                columns = list(batch[0])
                with cursor.copy(  # type: ignore[attr-defined]
                    f"COPY {table(model).name} ({', '.join(columns)}) FROM STDIN"
                ) as copy:
                    for row in batch:
                        copy.write_row([row[c] for c in columns])
        else:
            connection.execute(insert(table(m.TradeFigure)), figures)
            connection.execute(insert(table(m.Citation)), citations)


def export_bytes(engine: Engine) -> bytes:
    with engine.connect() as connection:
        return dataset.dumps(dataset.export_dataset(connection))


@pytest.mark.slow
def test_every_step_down_and_up_again_on_real_data(seeded_url: str) -> None:
    """The seed and 100,000 trade figures: each migration downgraded and applied again
    (with those after it), and the export the same bytes after each. The first step drops
    every table by design, so after it the same data is loaded again before comparing."""
    scripts = ScriptDirectory.from_config(migrate.alembic_config(seeded_url))
    steps = [s.revision for s in scripts.walk_revisions()]  # newest first
    with connected(seeded_url) as engine:
        add_generated_trade(engine, GENERATED_TRADE)
        with engine.connect() as connection:
            assert count_rows(connection, m.TradeFigure) > GENERATED_TRADE
        before = export_bytes(engine)
    assert before.count(b'"Generated figure ') == GENERATED_TRADE

    for step, below in zip(steps, [*steps[1:], "base"], strict=True):
        migrate.downgrade(seeded_url, below)
        with connected(seeded_url) as engine:
            assert migrate.current_revision(engine) == (None if below == "base" else below)
        migrate.upgrade(seeded_url)
        with connected(seeded_url) as engine:
            assert migrate.is_at_head(engine)
            if below == "base":
                dataset.load(engine, SEED)
                add_generated_trade(engine, GENERATED_TRADE)
            assert export_bytes(engine) == before, f"the export changed over {step}"
            if below == steps[-1]:
                # The search index, made again, was built from the rows it found: one
                # document for each entity.
                assert search_documents(engine) == entities(engine)


def search_documents(engine: Engine) -> int:
    store = "search_entry" if engine.dialect.name == "sqlite" else "search_document"
    with engine.connect() as connection:
        return int(connection.execute(text(f"SELECT count(*) FROM {store}")).scalar_one())


def entities(engine: Engine) -> int:
    with engine.connect() as connection:
        return sum(
            int(connection.execute(select(func.count()).select_from(MAIN_TABLE[c])).scalar_one())
            for c in COLLECTIONS
        )


def tsv_column(engine: Engine) -> tuple[str, list[tuple[str, str, str]]]:
    """The search vector's expression, and every document's vector."""
    with engine.connect() as connection:
        expression = connection.execute(
            text(
                "SELECT generation_expression FROM information_schema.columns "
                "WHERE table_name = 'search_document' AND column_name = 'tsv'"
            )
        ).scalar_one()
        rows = connection.execute(
            text("SELECT type, id, tsv::text FROM search_document ORDER BY type, id")
        )
        return expression, [tuple(r) for r in rows]


def test_a_search_vector_made_before_its_fast_path_gets_it(seeded_url: str) -> None:
    """Databases whose search_index migration made the vector with translate() on every text
    get the fast path from e8a1d5c3f7b2, with every vector unchanged."""
    if seeded_url.startswith("sqlite"):
        pytest.skip("SQLite's FTS5 folds letters as it tokenizes: no vector expression")
    accented, plain = "".join(map(chr, search.FOLD)), "".join(search.FOLD.values())

    def words(column: str) -> str:
        stripped = f"regexp_replace({column}, '[!-/:-@[-`{{-~]', ' ', 'g')"
        return f"to_tsvector('simple'::regconfig, translate({stripped}, '{accented}', '{plain}'))"

    with connected(seeded_url) as engine:
        expression, vectors = tsv_column(engine)
        assert "CASE" in expression
        with engine.begin() as connection:  # the column as search_index used to make it
            connection.execute(text("ALTER TABLE search_document DROP COLUMN tsv"))
            connection.execute(
                text(
                    "ALTER TABLE search_document ADD COLUMN tsv TSVECTOR GENERATED ALWAYS AS "
                    f"(setweight({words('title')}, 'A') || setweight({words('body')}, 'B')) "
                    "STORED"
                )
            )
        slow, slow_vectors = tsv_column(engine)
        assert "CASE" not in slow
        assert slow_vectors == vectors
    migrate.downgrade(seeded_url, "7c4f2a9e1b03")
    migrate.upgrade(seeded_url)
    with connected(seeded_url) as engine:
        assert tsv_column(engine) == (expression, vectors)


def test_one_line_of_migrations() -> None:
    scripts = ScriptDirectory.from_config(migrate.alembic_config("sqlite://"))
    assert len(scripts.get_heads()) == 1
    assert len(scripts.get_bases()) == 1


def test_migration_file_names_start_with_their_date() -> None:
    files = sorted(p.name for p in VERSIONS.glob("*.py"))
    assert files
    for name in files:
        match = re.fullmatch(r"(\d{8}_\d{4})_[0-9a-f]{12}_[a-z0-9_]+\.py", name)
        assert match, f"{name} should be YYYYMMDD_HHMM_<revision>_<slug>.py"
        datetime.strptime(match[1], "%Y%m%d_%H%M")  # a real date and time
    # Sorting by name is sorting by history.
    scripts = ScriptDirectory.from_config(migrate.alembic_config("sqlite://"))
    history = [Path(s.path).name for s in reversed(list(scripts.walk_revisions()))]
    assert history == files


def test_sqlite_connections_are_configured(tmp_path: Path) -> None:
    settings = Settings(sqlite_busy_timeout_ms=4321, sqlite_mmap_bytes=8 << 20)
    engine = create_db_engine(f"sqlite:///{tmp_path / 'pragmas.db'}", settings)
    try:
        with engine.connect() as first, engine.connect() as second:
            for connection in (first, second):  # every pooled connection, not just the first
                pragmas = {
                    name: connection.exec_driver_sql(f"PRAGMA {name}").scalar()
                    for name in ("journal_mode", "foreign_keys", "busy_timeout", "mmap_size")
                }
                assert pragmas == {
                    "journal_mode": "wal",
                    "foreign_keys": 1,
                    "busy_timeout": 4321,
                    "mmap_size": 8 << 20,
                }
    finally:
        engine.dispose()


@pytest.mark.parametrize("url", ["sqlite://", "sqlite:///:memory:"])
def test_in_memory_sqlite_engines_work(url: str) -> None:
    engine = create_db_engine(url, Settings())
    try:
        with engine.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    finally:
        engine.dispose()
