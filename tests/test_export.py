"""Export round trip: export, import into an empty database, export again: the same bytes.

On the seed and on a generated dataset holding every kind of fact, through HTTP
(``GET /v1/export``, ``POST /v1/imports``) and the command line (``dyad export``,
``dyad import``), on every engine.
"""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType

import pytest
from conftest import SEED, Postgres, copy_database, make_client, ok
from typer.testing import CliRunner

from app import api_keys
from app.cli import app as cli
from app.db import create_db_engine, engine_for
from app.records import COLLECTIONS

ROOT = Path(__file__).resolve().parents[1]


def _load(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"bench_{path.stem}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


generate = _load(ROOT / "bench" / "generate.py")


def import_key(url: str) -> dict[str, str]:
    engine = create_db_engine(url)
    try:
        secret, _ = api_keys.create_key(engine, "importer", "import")
    finally:
        engine.dispose()
    return {"Authorization": f"Bearer {secret}"}


def http_export(url: str) -> bytes:
    with make_client(url) as client:
        response = client.get("/v1/export")
        assert response.status_code == 200, response.text
        return response.content


def http_import(url: str, body: bytes) -> dict[str, object]:
    headers = {**import_key(url), "Content-Type": "application/json"}
    with make_client(url) as client:
        return ok(client.post("/v1/imports", content=body, headers=headers))  # type: ignore[no-any-return]


@contextmanager
def cli_on(url: str, use_database: Callable[[str], None]) -> Iterator[None]:
    """The command line pointed at ``url``; its pooled connections closed after."""
    use_database(url)
    try:
        yield
    finally:
        engine_for(url).dispose()


def dyad(*args: str | Path) -> bytes:
    result = CliRunner().invoke(cli, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    return result.stdout_bytes


@pytest.fixture
def other_url(
    template_url: str, engine_kind: str, postgres: Postgres | None, tmp_path: Path
) -> Iterator[str]:
    """A second migrated, empty database."""
    (tmp_path / "other").mkdir()
    url = copy_database(template_url, engine_kind, postgres, tmp_path / "other")
    yield url
    engine_for.cache_clear()
    if engine_kind == "postgresql" and postgres is not None:
        postgres.drop(url)


@pytest.fixture(scope="module")
def generated() -> bytes:
    """A dataset with 2,000 trade figures and every other kind of fact."""
    return generate.dumps(generate.generate(2_000, seed=7))  # type: ignore[no-any-return]


def test_the_generated_dataset_has_every_kind_of_fact(generated: bytes) -> None:
    data = json.loads(generated)
    assert all(data[collection] for collection in COLLECTIONS)
    assert len(data["trade"]) == 2_000
    assert {t["flow"] for t in data["trade"]} == {"turnover", "export", "import"}
    assert any(p["roles"] for p in data["people"]) and any(r["notes"] for r in data["relations"])
    assert any(v["participants"] for v in data["visits"])
    assert {f["route"] is None for f in data["figures"]} == {True, False}
    countries = {c for t in data["trade"] for c in (t["reporter"], t["partner"])}
    assert len(countries) > 200
    assert len({t["year"] for t in data["trade"]}) > 20
    # The same seed gives the same bytes; another seed another dataset.
    assert generate.dumps(generate.generate(2_000, seed=7)) == generated
    assert generate.dumps(generate.generate(2_000, seed=8)) != generated


def test_seed_round_trip_over_http(seeded_url: str, other_url: str) -> None:
    exported = http_export(seeded_url)
    assert exported == SEED.read_bytes()
    report = http_import(other_url, exported)
    assert report["created"] == 29 and report["revision"] == 1
    assert http_export(other_url) == exported


def test_generated_round_trip_over_http(fresh_url: str, other_url: str, generated: bytes) -> None:
    report = http_import(fresh_url, generated)
    assert report["updated"] == report["unchanged"] == 0
    exported = http_export(fresh_url)
    assert exported == generated  # the generator writes export form
    http_import(other_url, exported)
    assert http_export(other_url) == exported
    assert http_import(other_url, exported)["created"] == 0  # and again changes nothing


def test_seed_round_trip_on_the_command_line(
    seeded_url: str, other_url: str, use_database: Callable[[str], None], tmp_path: Path
) -> None:
    with cli_on(seeded_url, use_database):
        dyad("export", tmp_path / "seed.json")
    assert (tmp_path / "seed.json").read_bytes() == SEED.read_bytes()
    with cli_on(other_url, use_database):
        dyad("import", tmp_path / "seed.json")
        assert dyad("export") == SEED.read_bytes()


def test_generated_round_trip_on_the_command_line(
    fresh_url: str,
    other_url: str,
    use_database: Callable[[str], None],
    tmp_path: Path,
    generated: bytes,
) -> None:
    (tmp_path / "generated.json").write_bytes(generated)
    with cli_on(fresh_url, use_database):
        dyad("import", tmp_path / "generated.json")
        dyad("export", tmp_path / "exported.json")
    assert (tmp_path / "exported.json").read_bytes() == generated
    with cli_on(other_url, use_database):
        dyad("import", tmp_path / "exported.json")
        assert dyad("export") == generated
