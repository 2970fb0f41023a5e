"""SQLite done right for a server: pragmas on every connection, writers that queue.

Several processes run read-then-write transactions on one SQLite file at once. Started
with BEGIN IMMEDIATE (what ``write_transaction`` does) every one of them commits; started
as plain deferred transactions, some fail with "database is locked" — so the test can fail.
"""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import Connection, Engine, text

from app import migrate
from app.db import create_db_engine, write_transaction

WRITERS = 4
ROUNDS = 40


def writer(url: str, immediate: bool, rounds: int, errors: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    engine = create_db_engine(url)
    failed = 0
    for _ in range(rounds):
        try:
            transaction = write_transaction(engine) if immediate else deferred(engine)
            with transaction as connection:
                revision = connection.execute(
                    text("SELECT revision FROM dataset_state WHERE id = 1")
                ).scalar_one()
                time.sleep(0.002)  # the window in which another writer gets in
                connection.execute(
                    text("UPDATE dataset_state SET revision = :r WHERE id = 1"), {"r": revision + 1}
                )
        except Exception as exc:  # count every failure, whatever its class
            failed += 1
            last = str(exc)
    engine.dispose()
    errors.put((failed, last if failed else ""))


@contextmanager
def deferred(engine: Engine) -> Iterator[Connection]:
    """A plain BEGIN: the write lock is taken only at the first write."""
    with engine.connect() as connection, connection.begin():
        yield connection


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'concurrent.db'}"
    migrate.upgrade(url)
    engine = create_db_engine(url)
    with engine.begin() as connection:
        connection.execute(text("INSERT INTO dataset_state (id, revision) VALUES (1, 0)"))
    engine.dispose()
    return url


def run_writers(url: str, immediate: bool) -> tuple[int, list[str], int]:
    context = multiprocessing.get_context("spawn")
    errors = context.Queue()
    processes = [
        context.Process(target=writer, args=(url, immediate, ROUNDS, errors))
        for _ in range(WRITERS)
    ]
    for process in processes:
        process.start()
    results = [errors.get(timeout=120) for _ in processes]
    for process in processes:
        process.join(timeout=60)
    engine = create_db_engine(url)
    with engine.connect() as connection:
        revision = connection.execute(text("SELECT revision FROM dataset_state")).scalar_one()
    engine.dispose()
    return sum(failed for failed, _ in results), [m for _, m in results if m], revision


def test_immediate_writers_never_see_a_lock_error(sqlite_url: str) -> None:
    failed, messages, revision = run_writers(sqlite_url, immediate=True)
    assert failed == 0, messages
    assert revision == WRITERS * ROUNDS  # no update was lost either


def test_deferred_writers_do_fail(sqlite_url: str) -> None:
    """The control: without BEGIN IMMEDIATE the same load loses transactions."""
    failed, messages, _ = run_writers(sqlite_url, immediate=False)
    assert failed > 0
    assert any("locked" in m for m in messages), messages


def test_every_connection_has_the_pragmas(sqlite_url: str) -> None:
    engine = create_db_engine(sqlite_url)
    with engine.connect() as connection:
        pragma = lambda name: connection.exec_driver_sql(f"PRAGMA {name}").scalar()  # noqa: E731
        assert pragma("journal_mode") == "wal"
        assert pragma("foreign_keys") == 1
        assert pragma("busy_timeout") == 5000
        assert connection.exec_driver_sql("SELECT lower('ÅLAND')").scalar() == "åland"
    engine.dispose()
