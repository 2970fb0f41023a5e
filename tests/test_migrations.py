"""Migrations build the models' schema, match the models exactly, and run down and up again."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from conftest import SEED, count_rows
from sqlalchemy import Engine, inspect, select

from app import dataset, migrate
from app import models as m
from app.db import create_db_engine
from app.models import metadata, table
from app.settings import PROJECT_ROOT, Settings

VERSIONS = PROJECT_ROOT / "migrations" / "versions"


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
    settings = Settings(sqlite_busy_timeout_ms=4321)
    engine = create_db_engine(f"sqlite:///{tmp_path / 'pragmas.db'}", settings)
    try:
        with engine.connect() as first, engine.connect() as second:
            for connection in (first, second):  # every pooled connection, not just the first
                pragmas = {
                    name: connection.exec_driver_sql(f"PRAGMA {name}").scalar()
                    for name in ("journal_mode", "foreign_keys", "busy_timeout")
                }
                assert pragmas == {"journal_mode": "wal", "foreign_keys": 1, "busy_timeout": 4321}
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
