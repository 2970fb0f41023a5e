"""Engines and transactions: SQLite pragmas, the PostgreSQL pool, commit-or-rollback.

Reads use short-lived connections; writes go through :func:`write_transaction`, which on
SQLite starts with ``BEGIN IMMEDIATE`` so that a read-then-write transaction takes the
write lock up front instead of failing with "database is locked" when it upgrades.

A read statement of the API gets ``query_timeout_ms`` to finish (PostgreSQL's
``statement_timeout``; on SQLite a progress handler checking a deadline), so that one
costly query cannot hold a worker: it fails into a 503 (see :mod:`app.problems`). Writes
are authenticated and all-or-nothing, so they run to the end; commands of the CLI too.
Statement parameters are kept out of error messages and logs: they can hold key digests.

PostgreSQL text cannot hold NUL, and refuses even to compare with a value holding one. A read
asking for ``a\x00b`` (an id, a filter) must find nothing, as on SQLite, not fail: its NULs
are swapped for U+FFFF, a noncharacter, before the statement is sent. Writes are left as they
are, so that a NUL to be stored is refused (422), never silently changed.
"""

from __future__ import annotations

import math
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.pool import ConnectionPoolEntry

from app.settings import Settings, get_settings

_WRITE = {"dyad_write": True}
# SQLite calls the progress handler every this many virtual machine instructions: about a
# tenth of a millisecond of work, often enough to stop on time, rarely enough to cost nothing.
PROGRESS_STEPS = 10_000
_DEADLINE = "dyad_deadline"  # in the connection's info: when its statement must stop
NUL, NONCHARACTER = "\x00", "\uffff"


def is_sqlite(engine: Engine | Connection) -> bool:
    return engine.dialect.name == "sqlite"


def create_db_engine(
    url: str, settings: Settings | None = None, *, query_timeout_ms: int | None = None
) -> Engine:
    """An engine configured for serving: pragmas on SQLite, a bounded pool on PostgreSQL.

    Read statements stop after ``query_timeout_ms`` (default: the setting; 0: never).
    """
    settings = settings or get_settings()
    timeout_ms = settings.query_timeout_ms if query_timeout_ms is None else query_timeout_ms
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        connect_args = {"options": f"-c statement_timeout={int(timeout_ms)}"} if timeout_ms else {}
        engine = create_engine(
            parsed,
            pool_size=settings.pool_size,
            max_overflow=0,
            pool_timeout=settings.pool_timeout,
            pool_pre_ping=True,
            pool_recycle=1800,
            hide_parameters=True,
            connect_args=connect_args,
        )
        if timeout_ms:
            _no_timeout_for_writes(engine)
        event.listen(engine, "before_cursor_execute", _no_nul_in_reads, retval=True)
        return engine
    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(parsed, connect_args={"check_same_thread": False}, hide_parameters=True)
    busy_ms = settings.sqlite_busy_timeout_ms

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
        # Let SQLAlchemy's "begin" event issue BEGIN itself (the pysqlite recipe).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_ms)}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()
        # SQLite's own lower() folds ASCII only; PostgreSQL's folds all of Unicode. The same
        # case-insensitive filter must match "Åland" on both.
        dbapi_connection.create_function("lower", 1, _lower, deterministic=True)
        if timeout_ms:
            deadline = _record.info[_DEADLINE] = [math.inf]
            dbapi_connection.set_progress_handler(
                lambda: time.monotonic() > deadline[0], PROGRESS_STEPS
            )

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        write = connection.get_execution_options().get("dyad_write", False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

    if timeout_ms:
        _sqlite_deadlines(engine, timeout_ms / 1000)
    return engine


def _no_timeout_for_writes(engine: Engine) -> None:
    """On PostgreSQL a write transaction lifts the connection's ``statement_timeout``."""

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        if connection.get_execution_options().get("dyad_write", False):
            connection.exec_driver_sql("SET LOCAL statement_timeout = 0")


def _no_nul_in_reads(
    connection: Connection,
    _cursor: Any,
    statement: str,
    parameters: Any,
    _context: Any,
    executemany: bool,
) -> tuple[str, Any]:
    if executemany or connection.get_execution_options().get("dyad_write", False):
        return statement, parameters
    if isinstance(parameters, dict):
        if any(_holds_nul(v) for v in parameters.values()):
            parameters = {k: _without_nul(v) for k, v in parameters.items()}
    elif isinstance(parameters, (list, tuple)) and any(_holds_nul(v) for v in parameters):
        parameters = type(parameters)(_without_nul(v) for v in parameters)
    return statement, parameters


def _holds_nul(value: Any) -> bool:
    if isinstance(value, str):
        return NUL in value
    return isinstance(value, (list, tuple)) and any(_holds_nul(v) for v in value)


def _without_nul(value: Any) -> Any:
    if isinstance(value, str):
        return value.replace(NUL, NONCHARACTER)
    if isinstance(value, (list, tuple)):
        return type(value)(_without_nul(v) for v in value)
    return value


def _sqlite_deadlines(engine: Engine, seconds: float) -> None:
    """Arm the progress handler's deadline as a read statement starts; disarm it at the end
    of the transaction, so that no ROLLBACK or COMMIT is ever interrupted.

    The deadline stays armed while rows are fetched: a scan that finds its rows slowly is
    stopped as surely as one that computes long before the first.
    """

    def deadline(connection: Connection) -> list[float] | None:
        holder: list[float] | None = connection.info.get(_DEADLINE)
        return holder

    @event.listens_for(engine, "before_cursor_execute")
    def _arm(connection: Connection, *_args: Any) -> None:
        holder = deadline(connection)
        if holder is not None:
            write = connection.get_execution_options().get("dyad_write", False)
            holder[0] = math.inf if write else time.monotonic() + seconds

    def _disarm(connection: Connection) -> None:
        holder = deadline(connection)
        if holder is not None:
            holder[0] = math.inf

    event.listen(engine, "commit", _disarm)
    event.listen(engine, "rollback", _disarm)

    @event.listens_for(engine.pool, "checkin")
    def _on_checkin(_dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
        holder = record.info.get(_DEADLINE)
        if holder is not None:
            holder[0] = math.inf


def _lower(value: str | None) -> str | None:
    return value.lower() if isinstance(value, str) else value


@lru_cache(maxsize=8)
def engine_for(url: str) -> Engine:
    """One engine (and so one pool) per URL and process: the CLI's, whose commands an
    operator runs and waits for, so no statement of theirs is cut short."""
    return create_db_engine(url, query_timeout_ms=0)


def get_engine() -> Engine:
    return engine_for(get_settings().database_url)


@contextmanager
def write_transaction(engine: Engine) -> Iterator[Connection]:
    """A transaction that commits when the block ends and rolls back if it raises."""
    with engine.connect().execution_options(**_WRITE) as connection, connection.begin():
        yield connection


def backup_sqlite(engine: Engine, target: Path) -> None:
    """A consistent copy of a live SQLite database through SQLite's online backup API.

    Copying the file instead could catch a write half done (and miss what sits in the WAL);
    the backup API copies a snapshot page by page while writers go on.
    """
    if not is_sqlite(engine):
        raise ValueError("dyad backup copies SQLite databases; use pg_dump for PostgreSQL")
    target.parent.mkdir(parents=True, exist_ok=True)
    raw = engine.raw_connection()
    try:
        destination = sqlite3.connect(target)
        try:
            # One step: the whole snapshot is read in one read transaction, which in WAL mode
            # never blocks writers and is never restarted by them.
            raw.driver_connection.backup(destination, pages=-1)  # type: ignore[union-attr]
        finally:
            destination.close()
    finally:
        raw.close()
