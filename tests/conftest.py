"""Test databases on every engine: SQLite always, PostgreSQL when DYAD_TEST_DATABASE_URL is set.

Each engine gets a template database per test session (migrated, empty dataset) and a
seeded one that read-only tests share. Tests that write get their own copy of the template
(a file copy on SQLite, ``CREATE DATABASE ... TEMPLATE`` on PostgreSQL), so no test sees
another's writes, and every database made here is dropped at the end.
"""

from __future__ import annotations

import os
import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Connection, create_engine, func, select, text
from sqlalchemy.engine import make_url

from app import dataset, limits, migrate
from app.db import create_db_engine, engine_for
from app.main import create_app
from app.models import table
from app.settings import Settings, get_settings

ENGINES = ["sqlite", "postgresql"]
SOURCES_DIR = Path(__file__).resolve().parents[2] / "shared" / "sources"
SEED = Path(__file__).resolve().parents[1] / "data" / "seed.json"


class Postgres:
    """Creates and drops databases on the server named by DYAD_TEST_DATABASE_URL."""

    def __init__(self, url: str) -> None:
        self.url = make_url(url)
        self.admin = create_engine(self.url, isolation_level="AUTOCOMMIT", pool_size=1)
        self.created: list[str] = []

    def create(self, template: str | None = None) -> str:
        name = f"dyad_test_{uuid.uuid4().hex[:12]}"
        clause = f' TEMPLATE "{template}"' if template else ""
        with self.admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"{clause}'))
        self.created.append(name)
        return self.url.set(database=name).render_as_string(hide_password=False)

    def drop(self, url: str) -> None:
        name = make_url(url).database
        engine_for.cache_clear()
        with self.admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        self.created.remove(name)  # type: ignore[arg-type]

    def close(self) -> None:
        for name in list(self.created):
            with self.admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        self.admin.dispose()


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres | None]:
    url = os.environ.get("DYAD_TEST_DATABASE_URL")
    if not url:
        yield None
        return
    server = Postgres(url)
    yield server
    server.close()


@pytest.fixture(scope="session", params=ENGINES)
def engine_kind(request: pytest.FixtureRequest, postgres: Postgres | None) -> str:
    if request.param == "postgresql" and postgres is None:
        pytest.skip("PostgreSQL tests need DYAD_TEST_DATABASE_URL (set by .ci/run)")
    return str(request.param)


@pytest.fixture(scope="session")
def template_url(
    engine_kind: str, postgres: Postgres | None, tmp_path_factory: pytest.TempPathFactory
) -> str:
    """A migrated database with no dataset loaded, to copy from."""
    if engine_kind == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('template') / 'template.db'}"
    else:
        assert postgres is not None
        url = postgres.create()
    migrate.upgrade(url)
    checkpoint(url)
    return url


def checkpoint(url: str) -> None:
    """On SQLite, fold the WAL into the file, so that a copy of the file is whole."""
    if url.startswith("sqlite"):
        engine = create_db_engine(url)
        with engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        engine.dispose()


def copy_database(template: str, kind: str, postgres: Postgres | None, directory: Path) -> str:
    if kind == "sqlite":
        target = directory / f"{uuid.uuid4().hex[:8]}.db"
        shutil.copyfile(make_url(template).database or "", target)
        return f"sqlite:///{target}"
    assert postgres is not None
    return postgres.create(template=make_url(template).database)


@pytest.fixture
def fresh_url(
    template_url: str, engine_kind: str, postgres: Postgres | None, tmp_path: Path
) -> Iterator[str]:
    """A migrated, empty database of the test's own."""
    url = copy_database(template_url, engine_kind, postgres, tmp_path)
    yield url
    engine_for.cache_clear()
    if engine_kind == "postgresql" and postgres is not None:
        postgres.drop(url)


def load_into(url: str, data: dict[str, Any] | Path) -> dataset.LoadReport:
    """Load a dataset (a dict in the seed format, or a file) into the database at ``url``."""
    engine = create_db_engine(url)
    try:
        return dataset.load(engine, data)
    finally:
        engine.dispose()


@pytest.fixture(scope="session")
def loaded_url(
    template_url: str,
    engine_kind: str,
    postgres: Postgres | None,
    tmp_path_factory: pytest.TempPathFactory,
) -> Callable[[str, Any], str]:
    """``loaded_url(name, data)``: a database holding ``data``, loaded once a session and
    shared by every test that asks for the same name. Read it, or copy it; never write."""
    loaded: dict[str, str] = {}

    def url_for(name: str, data: Any) -> str:
        if name not in loaded:
            directory = tmp_path_factory.mktemp(name)
            url = copy_database(template_url, engine_kind, postgres, directory)
            load_into(url, data() if callable(data) else data)
            checkpoint(url)
            loaded[name] = url
        return loaded[name]

    return url_for


@pytest.fixture(scope="session")
def shared_seeded_url(loaded_url: Callable[[str, Any], str]) -> str:
    """A seeded database that read-only tests share: never write to it."""
    return loaded_url("seed", SEED)


@pytest.fixture
def seeded_url(
    loaded_url: Callable[[str, Any], str],
    engine_kind: str,
    postgres: Postgres | None,
    tmp_path: Path,
) -> Iterator[str]:
    """A migrated database of the test's own, holding the seed: a copy of one that nothing
    connects to (PostgreSQL copies a template only when no one is connected to it)."""
    template = loaded_url("seed-template", SEED)
    url = copy_database(template, engine_kind, postgres, tmp_path)
    yield url
    engine_for.cache_clear()
    if engine_kind == "postgresql" and postgres is not None:
        postgres.drop(url)


@pytest.fixture
def redis_url(monkeypatch: pytest.MonkeyPatch) -> str:
    """The test Redis (the test skips without one), its rate-limit keys under a prefix of
    this test's own, so that tests and runs never share counts."""
    url = os.environ.get("DYAD_TEST_REDIS_URL")
    if not url:
        pytest.skip("Redis tests need DYAD_TEST_REDIS_URL (set by .ci/run)")
    prefix = f"dyad-test:{uuid.uuid4().hex}:"
    original = limits.RedisCounter.__init__

    def with_prefix(self: limits.RedisCounter, url: str, prefix_: str = prefix) -> None:
        original(self, url, prefix)

    monkeypatch.setattr(limits.RedisCounter, "__init__", with_prefix)
    return url


def make_client(url: str, **overrides: object) -> TestClient:
    """A client of the app over ``url``; rate limits are off unless a test asks for them.

    The response cache is on, as in production, unless ``DYAD_TEST_CACHE=off``: the suite
    must pass both ways (`.ci/run` runs the HTTP tests again with it off).
    """
    overrides.setdefault("rate_limit_enabled", False)
    overrides.setdefault("cache_enabled", os.environ.get("DYAD_TEST_CACHE", "on") != "off")
    settings = Settings(database_url=url, **overrides)  # type: ignore[arg-type]
    return TestClient(create_app(settings), raise_server_exceptions=False)


def settle(client: TestClient, timeout: float = 5.0) -> None:
    """Wait until the app's response cache knows the database's current revision.

    A write the app did not answer (another engine, another process) reaches a PostgreSQL
    app by NOTIFY, a moment after its commit; on SQLite it is seen at once.
    """
    app: Any = client.app
    with app.state.engine.connect() as connection:
        revision = dataset.current_state(connection)[0]
    deadline = time.monotonic() + timeout
    while app.state.revision.current() not in (None, revision):
        assert time.monotonic() < deadline, "the app never saw the new revision"
        time.sleep(0.002)


@pytest.fixture(scope="session")
def client(shared_seeded_url: str) -> Iterator[TestClient]:
    """An HTTP client of the app over the shared seeded database (read-only tests)."""
    with make_client(shared_seeded_url) as test_client:
        yield test_client


@pytest.fixture
def write_client(seeded_url: str) -> Iterator[TestClient]:
    """An HTTP client of the app over a seeded database of the test's own."""
    with make_client(seeded_url) as test_client:
        yield test_client


@pytest.fixture
def use_database(monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    """Point the CLI's settings at a URL: ``use_database(url)``."""

    def point(url: str) -> None:
        monkeypatch.setenv("DYAD_DATABASE_URL", url)
        get_settings.cache_clear()
        engine_for.cache_clear()

    yield point
    get_settings.cache_clear()
    engine_for.cache_clear()


@pytest.fixture
def empty_url(engine_kind: str, postgres: Postgres | None, tmp_path: Path) -> Iterator[str]:
    """A database of the test's own with nothing in it, not even the migrations."""
    if engine_kind == "sqlite":
        yield f"sqlite:///{tmp_path / 'empty.db'}"
        engine_for.cache_clear()
        return
    assert postgres is not None
    url = postgres.create()
    yield url
    postgres.drop(url)


PROBLEM = "application/problem+json"


def problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["type"] and body["title"] and body["detail"]
    return body


def ok(response: Any) -> Any:
    assert response.status_code == 200, response.text
    return response.json()


def count_rows(connection: Connection, model: Any) -> int:
    return int(connection.execute(select(func.count()).select_from(table(model))).scalar_one())
