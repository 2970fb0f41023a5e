"""SQLite done right for a server: pragmas on every connection, writers that queue.

Several processes run read-then-write transactions on one SQLite file at once. Started
with BEGIN IMMEDIATE (what ``write_transaction`` does) every one of them commits; started
as plain deferred transactions, some fail with "database is locked" — so the test can fail.
"""

from __future__ import annotations

import multiprocessing
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest
from conftest import load_into
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import Connection, Engine, func, insert, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from app import dataset, db, migrate
from app import models as m
from app.db import (
    backup_sqlite,
    create_db_engine,
    fetch,
    fetch_all,
    read_connection,
    write_transaction,
)
from app.models import table
from app.readers import Reading, _select, read_collection, together
from app.resources import names
from app.settings import Settings

WRITERS = 4
ROUNDS = 10
SOURCE = table(m.Source)


def writer(
    url: str,
    immediate: bool,
    rounds: int,
    errors: multiprocessing.Queue,  # type: ignore[type-arg]
    start: threading.Barrier,
) -> None:
    engine = create_db_engine(url)
    start.wait()  # all writers begin together, so that their transactions overlap
    failed = 0
    for _ in range(rounds):
        try:
            transaction = write_transaction(engine) if immediate else deferred(engine)
            with transaction as connection:
                revision = connection.execute(
                    text("SELECT revision FROM dataset_state WHERE id = 1")
                ).scalar_one()
                time.sleep(0.01)  # the window in which another writer gets in
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
    start = context.Barrier(WRITERS)
    processes = [
        context.Process(target=writer, args=(url, immediate, ROUNDS, errors, start))
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


def test_backup_of_a_live_database_is_consistent(seeded_url: str, tmp_path: Path) -> None:
    if not seeded_url.startswith("sqlite"):
        pytest.skip("dyad backup copies SQLite; PostgreSQL is backed up with pg_dump")
    engine = create_db_engine(seeded_url)
    stop = threading.Event()

    def keep_writing() -> None:
        n = 0
        while not stop.is_set():
            n += 1
            load_into(seeded_url, {"sources": [{"id": "busy", "title": f"Edition {n}"}]})

    thread = threading.Thread(target=keep_writing)
    thread.start()
    try:
        time.sleep(0.3)
        backup_sqlite(engine, tmp_path / "backup.db")
    finally:
        stop.set()
        thread.join()
    copy = create_db_engine(f"sqlite:///{tmp_path / 'backup.db'}")
    with copy.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA integrity_check").scalar() == "ok"
        revision = connection.execute(text("SELECT revision FROM dataset_state")).scalar_one()
        feed = connection.execute(text("SELECT max(revision) FROM dataset_change")).scalar_one()
        title = connection.execute(text("SELECT title FROM source WHERE id = 'busy'")).scalar()
        assert revision >= 2 and feed == revision  # a snapshot: feed and state agree
        assert title == f"Edition {revision - 1}"  # revision 1 is the seed
        assert dataset.dumps(dataset.export_dataset(connection))  # readable throughout
    copy.dispose()
    engine.dispose()
    with pytest.raises(ValueError, match="pg_dump"):
        backup_sqlite(create_db_engine("postgresql+psycopg://x@127.0.0.1:1/x"), tmp_path / "x")


# Ids that JSON, SQL or an array literal would each treat specially if they were not
# passed as one escaped JSON array.
ODD_IDS = [
    "it's",
    'say "hi"',
    "back\\slash",
    "[bracket]",
    "a,b",
    "{brace}",
    "NULL",
    " spaced ",
    "Ålesund",
    "ユニコード",
    "tab\tline\nbreak",
    "emoji 🙂",
]


@pytest.fixture
def odd_sources(seeded_url: str) -> Iterator[Engine]:
    engine = create_db_engine(seeded_url)
    with write_transaction(engine) as connection:
        connection.execute(insert(SOURCE), [{"id": i, "title": f"title of {i}"} for i in ODD_IDS])
    yield engine
    engine.dispose()


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    ids=st.lists(st.sampled_from(ODD_IDS) | st.text(max_size=8), max_size=12),
)
@example(ids=["it's", "a\x00NUL", "back\\slash", "back\\u0000slash"])
def test_a_list_of_ids_finds_exactly_those_stored(odd_sources: Engine, ids: list[str]) -> None:
    """Reads by a list of ids (``any_of``) send it as one JSON array on both engines."""
    with odd_sources.connect() as connection:
        found = names(connection, SOURCE.c.id, SOURCE.c.title, set(ids))
        records = read_collection(connection, "sources", ids)
    expected = [i for i in dict.fromkeys(ids) if i in ODD_IDS]
    assert found == {i: f"title of {i}" for i in expected}
    assert [r["id"] for r in records] == expected


def test_the_reads_of_an_answer_see_one_snapshot(seeded_url: str) -> None:
    """A write committed between two statements of one answer is not seen by the second
    (under PostgreSQL's default READ COMMITTED it would be), and is by the next answer."""
    engine = create_db_engine(seeded_url)
    count = select(func.count()).select_from(SOURCE)
    try:
        with read_connection(engine) as reader:
            before = reader.execute(count).scalar_one()
            with write_transaction(engine) as writer:
                writer.execute(insert(SOURCE), {"id": "written-meanwhile", "title": "New"})
            assert reader.execute(count).scalar_one() == before
        with read_connection(engine) as reader:
            assert reader.execute(count).scalar_one() == before + 1
    finally:
        engine.dispose()


def test_readings_together_send_each_round_as_one_batch() -> None:
    """``together`` merges the rounds of several readings and gives each its own rows."""

    def reading(name: str, rounds: int) -> Reading[list[Any]]:
        got = []
        for number in range(rounds):
            (rows,) = yield [(name, {"round": number})]  # type: ignore[list-item]
            got.append(rows)
        return got

    def nothing() -> Reading[list[Any]]:
        return []
        yield []  # a generator that needs no query

    merged = together(reading("a", 2), nothing(), reading("b", 1))
    assert next(merged) == [("a", {"round": 0}), ("b", {"round": 0})]
    assert merged.send([["a0"], ["b0"]]) == [("a", {"round": 1})]
    with pytest.raises(StopIteration) as done:
        merged.send([["a1"]])
    assert done.value.value == [[["a0"], ["a1"]], [], [["b0"]]]


def test_a_batch_of_reads_answers_as_its_statements_one_by_one(seeded_url: str) -> None:
    """On PostgreSQL a batch goes out in pipeline mode; its rows are each statement's own,
    and a statement failing in it fails the batch, after which the connection still reads."""
    engine = create_db_engine(seeded_url)
    sources = _select(SOURCE, "id", None, True, engine.dialect.name)
    relations = _select(table(m.DiplomaticRelation), "id", "relation", False, engine.dialect.name)
    batch = [(sources, {"ids": ["azernews-2022-08-24-tokayev-baku", "none"]}), (relations, {})]
    try:
        with read_connection(engine) as connection:
            together_rows = fetch_all(connection, batch)
            one_by_one = [fetch(connection, statement, **params) for statement, params in batch]
            assert together_rows == one_by_one
            assert [row.id for row in together_rows[0]] == ["azernews-2022-08-24-tokayev-baku"]
            assert together_rows[1]
        with read_connection(engine) as connection:
            broken = (sources, {"ids": "not a JSON array"})
            with pytest.raises(DBAPIError):
                fetch_all(connection, [batch[1], broken, batch[0]])
            connection.rollback()
            assert fetch_all(connection, batch) == together_rows
    finally:
        engine.dispose()


@pytest.fixture
def small_pool(engine_kind: str, shared_seeded_url: str) -> Iterator[Engine]:
    """A PostgreSQL engine whose pool has 2 connections and lets a checkout wait 0.3 s."""
    if engine_kind != "postgresql":
        pytest.skip("reads run in threads on PostgreSQL only")
    settings = Settings(database_url=shared_seeded_url, pool_size=2, pool_timeout=0.3)
    engine = create_db_engine(shared_seeded_url, settings)
    yield engine
    engine.dispose()


def test_reads_take_no_more_threads_than_the_pool_has_connections(
    small_pool: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Eight reads at once on a pool of two: at most two threads wait for or hold a
    connection at any moment (with anyio's default, eight would), and every read answers."""
    waiting, most = 0, 0
    lock = threading.Lock()
    original = db.read_connection

    @contextmanager
    def counted(engine: Engine) -> Iterator[Connection]:
        nonlocal waiting, most
        with lock:
            waiting += 1
            most = max(most, waiting)
        try:
            with original(engine) as connection:
                yield connection
        finally:
            with lock:
                waiting -= 1

    monkeypatch.setattr(db, "read_connection", counted)

    def work(connection: Connection) -> int:
        time.sleep(0.02)
        return int(connection.execute(text("SELECT 1")).scalar_one())

    async def burst() -> list[int]:
        answers: list[int] = []

        async def one() -> None:
            answers.append(await db.reading(small_pool, work))

        async with anyio.create_task_group() as group:
            for _ in range(8):
                group.start_soon(one)
        return answers

    assert anyio.run(burst) == [1] * 8
    assert most == 2


def test_a_read_waiting_for_a_thread_gives_up_when_the_pool_would(small_pool: Engine) -> None:
    """Reads queued behind busy connections wait no longer than ``pool_timeout``, then fail
    as a pool timeout (a 503), as a checkout that waited would."""

    def slow(connection: Connection) -> None:
        time.sleep(1)

    async def overload() -> float:
        async with anyio.create_task_group() as group:
            group.start_soon(db.reading, small_pool, slow)
            group.start_soon(db.reading, small_pool, slow)
            await anyio.sleep(0.1)
            started = time.perf_counter()
            with pytest.raises(PoolTimeoutError):
                await db.reading(small_pool, slow)
            return time.perf_counter() - started

    assert 0.15 < anyio.run(overload) < 0.9
