"""The ``dyad`` command: help, migrate, seed, check and export, on every engine."""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from conftest import SEED
from sqlalchemy import select
from test_dataset import SEED_JSON, faulty
from typer.testing import CliRunner

from app import dataset, migrate
from app import models as m
from app.cli import app
from app.db import create_db_engine, engine_for
from app.models import table

SEED_BYTES = SEED.read_bytes()


def dyad(*args: str | Path) -> Result:
    return CliRunner().invoke(app, [str(a) for a in args])


def point_at(url: str, use_database: Any) -> Iterator[str]:
    use_database(url)
    yield url
    engine_for(url).dispose()  # the CLI's pooled connections, before the database goes


@pytest.fixture
def empty_db(empty_url: str, use_database: Callable[[str], None]) -> Iterator[str]:
    """The CLI pointed at a database that has not been migrated."""
    yield from point_at(empty_url, use_database)


@pytest.fixture
def fresh_db(fresh_url: str, use_database: Callable[[str], None]) -> Iterator[str]:
    """The CLI pointed at a migrated, empty database."""
    yield from point_at(fresh_url, use_database)


def state(url: str) -> tuple[bytes, int, int]:
    """The exported data, the revision and the length of the change feed."""
    engine = create_db_engine(url)
    try:
        with engine.connect() as connection:
            data = dataset.dumps(dataset.export_dataset(connection))
            revision = dataset.current_state(connection)[0]
            changes = len(connection.execute(select(table(m.DatasetChange))).all())
    finally:
        engine.dispose()
    return data, revision, changes


def write(path: Path, raw: dict[str, Any]) -> Path:
    path.write_bytes(dataset.dumps(raw))
    return path


# --- help -----------------------------------------------------------------------------------


def test_help_lists_the_commands() -> None:
    result = dyad("--help")
    assert result.exit_code == 0, result.output
    assert "sourced facts about the relations between pairs of countries" in result.output
    assert "DYAD_DATABASE_URL" in result.output
    for command in ("seed", "check", "export", "serve", "db"):
        assert f"│ {command} " in result.output


@pytest.mark.parametrize(
    ("command", "description"),
    [
        (["db"], "Create or update the database schema."),
        (["db", "upgrade"], "Apply the migrations up to REVISION"),
        (["db", "downgrade"], "Undo the migrations down to REVISION."),
        (["db", "current"], "Show the migration the database is at"),
        (["seed"], "Load a dataset into the database, all or nothing."),
        (["check"], "Validate a dataset file without writing anything."),
        (["export"], "Write the whole dataset in the format of data/seed.json"),
        (["serve"], "Serve the HTTP API (docs at /docs)."),
    ],
)
def test_each_command_describes_itself(command: list[str], description: str) -> None:
    result = dyad(*command, "--help")
    assert result.exit_code == 0, result.output
    assert f"Usage: root {' '.join(command)}" in result.output
    assert description in result.output


# --- migrate, seed, export ------------------------------------------------------------------


def test_seed_and_export_need_a_migrated_database(empty_db: str, tmp_path: Path) -> None:
    for args in (["seed"], ["export", tmp_path / "out.json"]):
        result = dyad(*args)
        assert result.exit_code == 2, result.output
        assert "The database is not migrated. Run dyad db upgrade first." in result.output
    assert not (tmp_path / "out.json").exists()
    engine = create_db_engine(empty_db)
    try:
        assert migrate.current_revision(engine) is None
    finally:
        engine.dispose()


def test_upgrade_seed_reseed_and_export(empty_db: str, tmp_path: Path) -> None:
    head = migrate.head_revision()
    assert f"current: none  latest: {head}" in dyad("db", "current").output

    result = dyad("db", "upgrade")
    assert result.exit_code == 0, result.output
    assert f"Database migrated to {head}." in result.output

    result = dyad("seed")
    assert result.exit_code == 0, result.output
    assert "Wrote: 29 created, 0 updated, 0 unchanged. Dataset revision 1." in result.output
    seeded = state(empty_db)
    assert seeded[1:] == (1, 29)

    result = dyad("seed")
    assert result.exit_code == 0, result.output
    assert "Nothing changed (29 records already up to date)." in result.output
    assert state(empty_db) == seeded

    result = dyad("seed", "--if-changed")
    assert result.exit_code == 0, result.output
    assert "seed.json is already loaded; nothing to do." in result.output
    assert state(empty_db) == seeded

    out = tmp_path / "export.json"
    result = dyad("export", out)
    assert result.exit_code == 0, result.output
    assert out.read_bytes() == SEED_BYTES
    assert dyad("export").stdout_bytes == SEED_BYTES


def test_seed_if_changed_loads_another_file(fresh_db: str, tmp_path: Path) -> None:
    assert dyad("seed", "--if-changed").exit_code == 0
    raw = copy.deepcopy(SEED_JSON)
    raw["treaties"][0]["title"] += " (signed in Baku)"
    result = dyad("seed", "--if-changed", write(tmp_path / "next.json", raw))
    assert result.exit_code == 0, result.output
    assert "Wrote: 0 created, 1 updated, 28 unchanged. Dataset revision 2." in result.output
    assert state(fresh_db)[0] == dataset.dumps(raw)


def test_downgrade_to_base(fresh_db: str) -> None:
    assert dyad("seed").exit_code == 0
    result = dyad("db", "downgrade", "base")
    assert result.exit_code == 0, result.output
    assert "Database now at base." in result.output
    assert dyad("seed").exit_code == 2


# --- check and bad files --------------------------------------------------------------------


def test_check_accepts_the_seed() -> None:
    result = dyad("check", SEED)
    assert result.exit_code == 0, result.output
    assert f"{SEED} is valid: 29 records." in result.output


def test_check_lists_every_problem_of_a_faulty_file(tmp_path: Path) -> None:
    raw, expected = faulty()
    shape = {k: v for k, v in expected.items() if not v.startswith("no ")}
    result = dyad("check", write(tmp_path / "faulty.json", raw))
    assert result.exit_code == 1
    assert "problem(s)" in result.output
    for where in shape:
        assert f"│ {where} " in result.output


def test_check_lists_references_that_lead_nowhere(tmp_path: Path) -> None:
    raw = copy.deepcopy(SEED_JSON)
    raw["trade"][0]["sources"][0]["source"] = "no-such-source"
    raw["visits"][0]["participants"][1]["person"] = "nobody"
    result = dyad("check", write(tmp_path / "dangling.json", raw))
    assert result.exit_code == 1
    assert "2 problem(s)" in result.output
    assert "│ /trade/0/sources/0/source " in result.output
    assert "│ /visits/0/participants/1/person " in result.output


def test_check_lists_references_along_with_shape_problems(tmp_path: Path) -> None:
    raw, expected = faulty()
    result = dyad("check", write(tmp_path / "faulty.json", raw))
    assert result.exit_code == 1
    assert f"{len(expected)} problem(s)" in result.output


def test_seed_of_a_faulty_file_writes_nothing(fresh_db: str, tmp_path: Path) -> None:
    assert dyad("seed").exit_code == 0
    before = state(fresh_db)
    raw, expected = faulty()
    result = dyad("seed", write(tmp_path / "faulty.json", raw))
    assert result.exit_code == 1
    assert "Nothing was written." in result.output
    for where, message in expected.items():
        if not message.startswith("no "):
            assert f"│ {where} " in result.output
    assert state(fresh_db) == before
    # A file that is well formed but names what exists nowhere is refused as well.
    raw = copy.deepcopy(SEED_JSON)
    raw["treaties"][0]["title"] = "Changed"
    raw["visits"][0]["participants"][1]["person"] = "nobody"
    result = dyad("seed", write(tmp_path / "dangling.json", raw))
    assert result.exit_code == 1
    assert "│ /visits/0/participants/1/person " in result.output
    assert "Nothing was written." in result.output
    assert state(fresh_db) == before


def test_seed_lists_references_along_with_shape_problems(fresh_db: str, tmp_path: Path) -> None:
    raw, expected = faulty()
    result = dyad("seed", write(tmp_path / "faulty.json", raw))
    assert result.exit_code == 1
    assert f"{len(expected)} problem(s)" in result.output


def test_seed_of_a_missing_file(fresh_db: str, tmp_path: Path) -> None:
    result = dyad("seed", tmp_path / "nothere.json")
    assert result.exit_code == 1
    assert "cannot read" in result.output
    assert "Nothing was written." in result.output
    assert state(fresh_db)[1] == 0


def test_backup_copies_the_live_database(fresh_db: str, tmp_path: Path) -> None:
    assert dyad("seed", SEED).exit_code == 0
    copy_file = tmp_path / "copy.db"
    result = dyad("backup", copy_file)
    if not fresh_db.startswith("sqlite"):
        assert result.exit_code == 2 and "pg_dump" in result.output
        assert not copy_file.exists()
        return
    assert result.exit_code == 0, result.output
    assert state(f"sqlite:///{copy_file}") == state(fresh_db)  # data, revision and feed
    again = dyad("backup", copy_file)
    assert again.exit_code == 1 and "already" in again.output
