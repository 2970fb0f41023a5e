"""Engines and transactions: SQLite pragmas, the PostgreSQL pool, commit-or-rollback.

Reads use short-lived connections; writes go through :func:`write_transaction`, which on
SQLite starts with ``BEGIN IMMEDIATE`` so that a read-then-write transaction takes the
write lock up front instead of failing with "database is locked" when it upgrades.
"""

from __future__ import annotations

import sqlite3
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


def is_sqlite(engine: Engine | Connection) -> bool:
    return engine.dialect.name == "sqlite"


def create_db_engine(url: str, settings: Settings | None = None) -> Engine:
    """An engine configured for serving: pragmas on SQLite, a bounded pool on PostgreSQL."""
    settings = settings or get_settings()
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_engine(
            parsed,
            pool_size=settings.pool_size,
            max_overflow=0,
            pool_timeout=settings.pool_timeout,
            pool_pre_ping=True,
            pool_recycle=1800,
        )
    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(parsed, connect_args={"check_same_thread": False})
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

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        write = connection.get_execution_options().get("dyad_write", False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

    return engine


def _lower(value: str | None) -> str | None:
    return value.lower() if isinstance(value, str) else value


@lru_cache(maxsize=8)
def engine_for(url: str) -> Engine:
    """One engine (and so one pool) per URL and process."""
    return create_db_engine(url)


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
