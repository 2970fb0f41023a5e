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
import select as io_select
import sqlite3
import time
from collections import namedtuple
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from functools import lru_cache, partial
from itertools import chain
from pathlib import Path
from typing import Any, TypeVar
from weakref import WeakKeyDictionary

import anyio
import orjson
from sqlalchemy import (
    JSON,
    ColumnElement,
    Connection,
    Engine,
    Select,
    String,
    any_,
    bindparam,
    cast,
    create_engine,
    event,
    func,
    literal_column,
    select,
)
from sqlalchemy.engine import Dialect, make_url
from sqlalchemy.exc import DBAPIError, InvalidatePoolError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.pool import ConnectionPoolEntry

from app.settings import Settings, get_settings

_WRITE = {"dyad_write": True}
# SQLite calls the progress handler every this many virtual machine instructions: about a
# tenth of a millisecond of work, often enough to stop on time, rarely enough to cost nothing.
PROGRESS_STEPS = 10_000
_DEADLINE = "dyad_deadline"  # in the connection's info: when its statement must stop
_PROGRESS = "dyad_progress"  # in the connection's info: its progress handler
_UNHOOKED = "dyad_unhooked"  # in the connection's info: a write took the handler off
NUL, NONCHARACTER = "\x00", "\uffff"
_GENERIC_PLANS = "dyad_generic_plans"  # connection.info: see generic_plans()
T = TypeVar("T")
SQLITE_MAX_PARAMETERS = 32_766  # SQLITE_MAX_VARIABLE_NUMBER since SQLite 3.32


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
            pool_recycle=1800,
            hide_parameters=True,
            connect_args=connect_args,
        )
        # An executemany INSERT goes as multi-row INSERTs of up to 1,000 rows, not one
        # statement per row: each statement fires the row-count triggers (``row_count``) once.
        engine.dialect.use_insertmanyvalues_wo_returning = True
        if timeout_ms:
            _no_timeout_for_writes(engine)
        event.listen(engine, "before_cursor_execute", _no_nul_in_reads, retval=True)
        event.listen(engine.pool, "checkout", _refuse_closed_by_server)
        return engine
    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(parsed, connect_args={"check_same_thread": False}, hide_parameters=True)
    busy_ms = settings.sqlite_busy_timeout_ms
    mmap_bytes = settings.sqlite_mmap_bytes

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
        # Let SQLAlchemy's "begin" event issue BEGIN itself (the pysqlite recipe).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_ms)}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA mmap_size={int(mmap_bytes)}")
        cursor.close()
        # SQLite's own lower() folds ASCII only; PostgreSQL's folds all of Unicode. The same
        # case-insensitive filter must match "Åland" on both.
        dbapi_connection.create_function("lower", 1, _lower, deterministic=True)
        if timeout_ms:
            # [when the running statement must stop, how long a read statement may run]
            deadline = _record.info[_DEADLINE] = [math.inf, timeout_ms / 1000]
            handler = _record.info[_PROGRESS] = lambda: time.monotonic() > deadline[0]
            dbapi_connection.set_progress_handler(handler, PROGRESS_STEPS)

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        write = connection.get_execution_options().get("dyad_write", False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

    if timeout_ms:
        _sqlite_deadlines(engine)
    return engine


def _refuse_closed_by_server(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
    """A pooled PostgreSQL connection that the server has closed is not handed out.

    An idle connection's socket has nothing to read, unless the server has since sent its
    farewell (``terminating connection``) and closed it, as a restart or
    ``pg_terminate_backend`` does. Polling the socket finds that at no round trip, where
    SQLAlchemy's ``pool_pre_ping`` cost one on every request. The whole pool is then
    recycled, as after a failed ping: a server that closed one connection has usually
    closed them all. (A peer that vanished without closing is not seen here; a ping would
    wait for it as a statement does.)
    """
    poll = io_select.poll()
    poll.register(dbapi_connection.fileno(), io_select.POLLIN)
    if poll.poll(0):
        raise InvalidatePoolError("the server closed this connection")


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


def _sqlite_deadlines(engine: Engine) -> None:
    """Arm the progress handler's deadline as a read statement starts; disarm it at the end
    of the transaction, so that no ROLLBACK or COMMIT is ever interrupted.

    The deadline stays armed while rows are fetched: a scan that finds its rows slowly is
    stopped as surely as one that computes long before the first.
    """

    @event.listens_for(engine, "before_cursor_execute")
    def _arm(connection: Connection, *_args: Any) -> None:
        _arm_deadline(connection)

    @event.listens_for(engine, "begin")
    def _unhook_writes(connection: Connection) -> None:
        # A write transaction has no deadline, and the handler's Python callback would cost
        # it a GIL hand-over every few thousand SQLite steps (a quarter of an import's time
        # while another thread parses the file): it goes until the transaction ends.
        if connection.get_execution_options().get("dyad_write", False):
            _driver(connection).set_progress_handler(None, 0)
            connection.info[_UNHOOKED] = True

    def _disarm(connection: Connection) -> None:
        holder = connection.info.get(_DEADLINE)
        if holder is not None:
            holder[0] = math.inf
            if connection.info.pop(_UNHOOKED, False):  # only after a write took it off
                handler = connection.info[_PROGRESS]
                _driver(connection).set_progress_handler(handler, PROGRESS_STEPS)

    event.listen(engine, "commit", _disarm)
    event.listen(engine, "rollback", _disarm)

    @event.listens_for(engine.pool, "checkin")
    def _on_checkin(_dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
        holder = record.info.get(_DEADLINE)
        if holder is not None:
            holder[0] = math.inf


def _driver(connection: Connection) -> Any:
    return connection.connection.driver_connection


def _arm_deadline(connection: Connection) -> None:
    holder = connection.info.get(_DEADLINE)
    if holder is not None:
        write = connection.get_execution_options().get("dyad_write", False)
        holder[0] = math.inf if write else time.monotonic() + holder[1]


def any_of(column: ColumnElement[Any], name: str, dialect: str) -> ColumnElement[bool]:
    """``column`` is one of the list given as parameter ``name``, in SQL whose text does not
    change with the list's length (so it is compiled once). :func:`fetch` sends the list as
    one JSON array, which both engines read in C: SQLite with ``json_each``, PostgreSQL with
    ``json_array_elements_text`` made an array for ``= ANY`` (the plan of an array
    parameter: an index lookup per element). psycopg would adapt a list parameter element
    by element in Python, about 1 µs each, and a dossier sends some 170 ids."""
    if dialect == "sqlite":
        return column.in_(
            select(literal_column("value")).select_from(func.json_each(bindparam(name)))
        )
    element: ColumnElement[Any] = func.json_array_elements_text(
        cast(bindparam(name, type_=String), JSON)
    )
    if not isinstance(column.type, String):  # e.g. integer ids: compared as their own type
        element = cast(element, column.type)
    return column == any_(func.array(select(element).scalar_subquery()))


def bulk_insert(
    connection: Connection, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]
) -> None:
    """Insert many rows in as few statements as the engine allows: a COPY on PostgreSQL, a
    multi-row INSERT per 32,766 parameters on SQLite. An executemany runs a statement per
    row, which PostgreSQL plans each time and after which FTS5 flushes its pending terms."""
    if not rows:
        return
    if connection.dialect.name == "postgresql":
        cursor = connection.connection.cursor()
        with cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        return
    per_statement = SQLITE_MAX_PARAMETERS // len(columns)
    for start in range(0, len(rows), per_statement):
        chunk = rows[start : start + per_statement]
        sql = _insert_sql(table, tuple(columns), len(chunk))
        connection.exec_driver_sql(sql, tuple(chain.from_iterable(chunk)))


@lru_cache(maxsize=64)
def _insert_sql(table: str, columns: tuple[str, ...], rows: int) -> str:
    values = "(" + ", ".join(["?"] * len(columns)) + ")"
    # Only names of this code's own tables and placeholders go into the text.
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES " + ", ".join(  # noqa: S608
        [values] * rows
    )


@dataclass(frozen=True)
class _Prepared:
    sql: str
    order: tuple[str, ...] | None  # qmark drivers take values by position
    make_row: Callable[[Any], Any]  # a driver's row as a named tuple of the selected columns
    constants: dict[str, Any]  # the values of parameters made from literals, e.g. "turnover"


@lru_cache(maxsize=512)
def _prepare(statement: Select[Any], dialect: Dialect) -> _Prepared:
    compiled = statement.compile(dialect=dialect)
    order = tuple(compiled.positiontup) if compiled.positiontup is not None else None
    # (rename: a sort naming a field twice selects its column twice)
    row = namedtuple("Row", statement.selected_columns.keys(), rename=True)  # type: ignore[misc]
    constants = {
        name: bind.effective_value for name, bind in compiled.binds.items() if not bind.required
    }
    # tuple.__new__ is what Row._make runs, less a length check in Python per row
    return _Prepared(compiled.string, order, partial(tuple.__new__, row), constants)


Query = tuple[Select[Any], dict[str, Any]]
"""A read statement built once, and the values of its parameters."""


def fetch(connection: Connection, statement: Select[Any], **params: Any) -> list[Any]:
    """The rows of a read statement built once, run on the driver's own cursor (see
    :func:`fetch_all`)."""
    return fetch_all(connection, [(statement, params)])[0]


def fetch_all(connection: Connection, queries: Sequence[Query]) -> list[list[Any]]:
    """The rows of each of several read statements that do not depend on one another.

    SQLAlchemy's work per execution (parameters, result wrapping) costs several times what
    SQLite takes to run an indexed query, and an answer may run a dozen of them. Each
    statement is compiled once per dialect; list parameters (see :func:`any_of`) are sent
    as one JSON array to both engines. On PostgreSQL the statements go out together in
    psycopg's pipeline mode, one round trip for all of them (a dossier's were most of its
    time, each waiting for the answer to the one before). The transaction begins as for
    any read (one snapshot for all the statements of an answer), and the engine's
    ``before_cursor_execute`` listeners still see each statement: they arm the SQLite
    deadline, and tests count statements with them. A NUL is swapped out of PostgreSQL
    parameters here, as :func:`_no_nul_in_reads` does for SQLAlchemy's own executions.
    Rows are named tuples of the driver's values (SQLite booleans are 0 and 1).
    """
    if not queries:
        return []
    if not connection.in_transaction():
        connection.begin()
    bound = [_bind(connection, statement, params) for statement, params in queries]
    driver = _driver(connection)
    dbapi_error = connection.dialect.loaded_dbapi.Error
    results: list[list[Any]] = []
    try:
        generic = connection.info.pop(_GENERIC_PLANS, False)
        if connection.dialect.name == "sqlite" or (len(bound) == 1 and not generic):
            for prepared, values in bound:
                _announce(connection, prepared.sql, values)
                results.append(driver.execute(prepared.sql, values).fetchall())
        else:
            with driver.pipeline():
                if generic:
                    driver.execute("SET LOCAL plan_cache_mode = force_generic_plan")
                cursors = []
                for prepared, values in bound:
                    _announce(connection, prepared.sql, values)
                    cursors.append(driver.execute(prepared.sql, values))
                results = [cursor.fetchall() for cursor in cursors]
    except dbapi_error as error:
        # As SQLAlchemy's own execution would: a lost connection is not given back to the
        # pool, and the error is SQLAlchemy's (a timeout is a 503 problem, see app.problems).
        if connection.dialect.is_disconnect(error, connection.connection.dbapi_connection, None):
            connection.invalidate(error)
        raise DBAPIError.instance(
            "; ".join(prepared.sql for prepared, _ in bound),
            None,
            error,
            dbapi_error,
            hide_parameters=True,
            dialect=connection.dialect,
        ) from error
    return [
        list(map(prepared.make_row, rows))
        for (prepared, _), rows in zip(bound, results, strict=True)
    ]


def _bind(connection: Connection, statement: Select[Any], params: dict[str, Any]) -> Any:
    """A statement compiled for the connection's dialect, and its values as the driver
    takes them."""
    prepared = _prepare(statement, connection.dialect)
    values: Any = {**prepared.constants, **params} if prepared.constants else params
    if connection.dialect.name == "sqlite":
        values = {k: _sqlite_value(v) for k, v in values.items()}
    else:
        read = not connection.get_execution_options().get("dyad_write", False)
        values = {k: _postgresql_value(v, read) for k, v in values.items()}
    if prepared.order is not None:
        values = tuple(values[name] for name in prepared.order)
    return prepared, values


def _announce(connection: Connection, sql: str, values: Any) -> None:
    connection.dispatch.before_cursor_execute(connection, None, sql, values, None, False)


def _sqlite_value(value: Any) -> Any:
    """A parameter as SQLite compares it: lists as JSON (see :func:`any_of`), dates as the
    ISO text SQLAlchemy stores them as."""
    if isinstance(value, list):
        return orjson.dumps(value).decode()
    if isinstance(value, date):
        return value.isoformat()
    return value


def _postgresql_value(value: Any, read: bool) -> Any:
    """A parameter as PostgreSQL reads it: lists as JSON (see :func:`any_of`); in a read,
    NULs swapped out. JSON writes a NUL ``\\u0000``, so a list is looked at element by
    element only when its JSON holds that (a dossier sends some 170 ids)."""
    if isinstance(value, list):
        text = orjson.dumps(value).decode()
        if read and "\\u0000" in text:
            text = orjson.dumps(_without_nul(value)).decode()
        return text
    return value.replace(NUL, NONCHARACTER) if read and isinstance(value, str) else value


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
def read_connection(engine: Engine) -> Iterator[Connection]:
    """A connection for an answer's reads, all from one snapshot of the data, whose
    transaction ends with COMMIT when the block ends normally.

    SQLite's read transaction keeps the snapshot of its first statement. PostgreSQL's
    default (READ COMMITTED) gives each statement a snapshot of its own, so the statements
    of one answer (a dossier's 17, a page and its total) could each see a different
    revision: there the transaction is REPEATABLE READ and READ ONLY, which psycopg puts
    in its BEGIN, at no extra round trip. psycopg deallocates every prepared statement of
    a connection on ROLLBACK, so reads that rolled back (SQLAlchemy's way to end them) were
    parsed and planned again on every request. An error still rolls back."""
    with engine.connect() as connection:
        if connection.dialect.name == "postgresql":
            connection.execution_options(
                isolation_level="REPEATABLE READ", postgresql_readonly=True
            )
        try:
            yield connection
        finally:
            connection.info.pop(_GENERIC_PLANS, None)
        if connection.in_transaction():
            connection.commit()


def generic_plans(connection: Connection) -> None:
    """On PostgreSQL, the rest of this transaction plans each prepared statement once.

    By default PostgreSQL plans a prepared statement again on every execution while that
    custom plan looks cheaper than the generic one, as it always does for a lookup of an
    array of ids: planning then costs the server more than running the statement. For
    statements whose best plan does not depend on their values only. The setting goes out
    with the next batch of :func:`fetch_all`, in its round trip, before its statements.
    """
    if connection.dialect.name == "postgresql":
        connection.info[_GENERIC_PLANS] = True


async def reading(engine: Engine, work: Callable[[Connection], T]) -> T:
    """``work`` done on a read connection, for an ``async`` handler.

    On SQLite in the event loop: its statements are this process's own CPU work, which a
    hop to a thread would only add to. On PostgreSQL in a worker thread: a request waiting
    for the server's answers (a dossier's two rounds) must let the others run, or one
    worker serves one request at a time while both it and the server sit idle. A read waits
    for a thread (see :func:`_read_threads`) no longer than a checkout waits for a
    connection: then it fails as a checkout would, into a 503.
    """

    def read() -> T:
        with read_connection(engine) as connection:
            return work(connection)

    if is_sqlite(engine):
        return read()
    threads = _read_threads(engine)
    pool: Any = engine.pool
    with anyio.move_on_after(pool.timeout()) as waiting:  # as long as a checkout may wait
        await threads.acquire()
    if waiting.cancelled_caught:
        raise PoolTimeoutError("Every connection of the pool stayed busy.")
    try:
        return await anyio.to_thread.run_sync(read)
    finally:
        threads.release()


_READ_THREADS: WeakKeyDictionary[Engine, anyio.CapacityLimiter] = WeakKeyDictionary()


def _read_threads(engine: Engine) -> anyio.CapacityLimiter:
    """No more threads at once for an engine's reads than its pool has connections (anyio's
    default allows 40): a thread beyond those only waits for a connection, and on one core
    32 such threads took a quarter of a PostgreSQL dossier's throughput in switches."""
    limiter = _READ_THREADS.get(engine)
    if limiter is None:
        pool: Any = engine.pool
        limiter = _READ_THREADS[engine] = anyio.CapacityLimiter(pool.size())
    return limiter


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
