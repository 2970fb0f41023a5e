"""A response cache in front of routing, exact because it is keyed by the dataset revision.

Cacheable GETs (``/v1/...`` answering 200) are stored as bytes with their headers, keyed by
method, path, query and the negotiated representation, and tagged with the revision they
were made at. A request whose entry carries the current revision is answered from memory,
``304`` included, without routing, validation or SQL.

Knowing the current revision must itself be cheap and exact across processes:
- SQLite: ``PRAGMA data_version`` on a connection of the cache's own changes whenever
  another connection (in any process) commits; only then is the revision row read again.
  One answer serves the requests already queued on the event loop when it was asked.
- PostgreSQL: a trigger (migration ``notify_revision``) sends ``NOTIFY dyad_revision``
  when the revision row changes; a listener thread keeps the revision current.
  Notifications arrive after commit, typically well under a millisecond later; a worker
  also re-reads the row at least every ``POSTGRES_RECHECK`` seconds in case its listener
  lost its connection.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Protocol

import psycopg
from sqlalchemy import Engine
from sqlalchemy.engine import make_url
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.etags import matches
from app.pagination import accepts_csv

CACHEABLE_PREFIX = "/v1/"
MAX_BODY = 2_000_000
POSTGRES_RECHECK = 1.0
CHANNEL = "dyad_revision"
REVISION_SQL = "SELECT coalesce(max(revision), 0) FROM dataset_state"


class RevisionSource(Protocol):
    def current(self) -> int: ...

    def refresh(self) -> None: ...

    def close(self) -> None: ...


class SQLiteRevision:
    """The revision, re-read only when ``PRAGMA data_version`` says someone committed.

    Asking opens a read transaction, whose lock costs two ``fcntl`` calls: a quarter of a
    cached answer's time in the server. So one answer is shared by the requests already
    queued on the event loop when it was asked. Each of them arrived before it was asked,
    so it has seen every commit it must see. A callback queued right after the question
    drops the answer: it runs before any request that arrives later, and that request asks
    again. (The WAL-index header in the ``-shm`` file would tell without a lock, but reading
    it takes a descriptor of that file, and closing one drops every POSIX lock this process
    holds on it, SQLite's own included.)
    """

    def __init__(self, path: str) -> None:
        self.connection = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self.lock = threading.Lock()
        self.version = -1
        self.revision = 0
        self.reads = 0  # how often the revision row was read: the hot path must not
        self.checks = 0  # how often data_version was asked: once per turn of the loop at most
        self.held: asyncio.AbstractEventLoop | None = None  # whose queued requests share it

    def current(self) -> int:
        loop = _running_loop()
        with self.lock:
            if loop is None or self.held is not loop:
                self._check()
                if loop is not None:
                    self.held = loop
                    loop.call_soon(self._release)
            return int(self.revision)

    def _check(self) -> None:
        version = self.connection.execute("PRAGMA data_version").fetchone()[0]
        self.checks += 1
        if version != self.version:
            self.version = version
            self.revision = self.connection.execute(REVISION_SQL).fetchone()[0]
            self.reads += 1

    def _release(self) -> None:
        self.held = None

    def refresh(self) -> None:
        """A write answered by this process: ask again at the next request."""
        self._release()

    def close(self) -> None:
        self.connection.close()


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


class PostgresRevision:
    """The revision, kept current by LISTEN/NOTIFY on a connection of its own."""

    def __init__(self, conninfo: str) -> None:
        self.conninfo = conninfo
        # Rechecks and refreshes run on the event loop: on a connection kept open, a query
        # costs about 0.07 ms where connecting each time cost 2 ms (and a server process).
        self.reader: psycopg.Connection[Any] | None = None
        self.reader_lock = threading.Lock()
        self.revision = self._read()
        self.checked = time.monotonic()
        self.reads = 1
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._listen, name="dyad-revision", daemon=True)
        self.thread.start()

    def _read(self) -> int:
        with self.reader_lock:
            try:
                if self.reader is None:
                    self.reader = psycopg.connect(self.conninfo, autocommit=True)
                return _revision(self.reader)
            except psycopg.Error:
                self._close_reader()  # the next read connects again
                raise

    def _close_reader(self) -> None:
        if self.reader is not None:
            self.reader.close()
            self.reader = None

    def _listen(self) -> None:
        while not self.stopped.is_set():
            try:
                with psycopg.connect(self.conninfo, autocommit=True) as connection:
                    connection.execute(f"LISTEN {CHANNEL}")
                    # Whatever changed while not listening, read on this connection: the
                    # reader is the event loop's, and closed by close() while this may run.
                    self.revision = _revision(connection)
                    while not self.stopped.is_set():
                        for notice in connection.notifies(timeout=0.5):
                            self.revision = max(self.revision, int(notice.payload or 0))
            except psycopg.Error:
                self.stopped.wait(0.5)  # the database restarts: listen again shortly

    def current(self) -> int:
        if time.monotonic() - self.checked > POSTGRES_RECHECK:
            self.refresh()
        return self.revision

    def refresh(self) -> None:
        self.checked = time.monotonic()
        try:
            self.revision = max(self.revision, self._read())
            self.reads += 1
        except psycopg.Error:
            pass

    def close(self) -> None:
        self.stopped.set()
        with self.reader_lock:
            self._close_reader()


def _revision(connection: psycopg.Connection[Any]) -> int:
    row = connection.execute(REVISION_SQL).fetchone()
    return int(row[0]) if row else 0


def revision_source(engine: Engine) -> RevisionSource:
    url = make_url(engine.url)
    if url.get_backend_name() == "sqlite":
        return SQLiteRevision(url.database or ":memory:")
    return PostgresRevision(url.set(drivername="postgresql").render_as_string(hide_password=False))


@dataclass(frozen=True)
class Entry:
    revision: int
    headers: list[tuple[bytes, bytes]]
    body: bytes
    etag: str
    route: Any  # the route that made the answer, for the metrics of the answers repeating it
    size: int  # the bytes it holds: its body and headers


def _negotiation(scope: Scope) -> tuple[str, str | None]:
    """The representation ``Accept`` asks for (CSV or JSON, as a list decides it: nothing
    else varies by a request header, and keying by the header itself kept one copy per
    browser's wording), and ``If-None-Match``: one pass over the raw headers, on the path
    of every cached answer."""
    accept: str | None = None  # the first, as Starlette's request.headers gives it
    etags = None
    for name, value in scope["headers"]:
        name = name.lower()
        if name == b"accept" and accept is None:
            accept = value.decode("latin-1")
        elif name == b"if-none-match" and etags is None:
            etags = value.decode("latin-1")
    return ("csv" if accepts_csv(accept or "") else "json"), etags


class RevisionWatch:
    """The current dataset revision for one app, started on first use, closed on shutdown."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.source: RevisionSource | None = None
        self.dirty = False

    def current(self) -> int | None:
        try:
            if self.source is None:
                self.source = revision_source(self.engine)
            elif self.dirty:
                # A write answered by this process: know its revision now, not later.
                self.source.refresh()
            self.dirty = False
            return self.source.current()
        except Exception:  # no database yet, or not migrated: do not cache at all
            self.close()
            return None

    def close(self) -> None:
        if self.source is not None:
            self.source.close()
            self.source = None


class ResponseCache:
    """An LRU of answers, each valid only at the revision it was made at, bounded both in
    entries and in the bytes they hold (10,000 answers of up to 2 MB each would be 20 GB:
    a crawl of distinct large pages must not grow the process without end)."""

    def __init__(
        self,
        app: ASGIApp,
        watch: RevisionWatch,
        max_entries: int = 10_000,
        max_bytes: int = 256 * 2**20,
    ) -> None:
        self.app = app
        self.watch = watch
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.size = 0  # the bytes of every entry
        self.entries: OrderedDict[tuple[str, ...], Entry] = OrderedDict()
        self.hits = 0
        self.lock = threading.Lock()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope["method"] not in ("GET", "HEAD"):
            try:
                await self.app(scope, receive, send)
            finally:
                self.watch.dirty = True
            return
        if not scope["path"].startswith(CACHEABLE_PREFIX):
            await self.app(scope, receive, send)
            return
        revision = self.watch.current()
        if revision is None:
            await self.app(scope, receive, send)
            return
        representation, etags = _negotiation(scope)
        key = (
            scope["method"],
            scope["path"],
            scope["query_string"].decode("latin-1"),
            representation,
        )
        entry = self.entries.get(key)
        if entry is not None and entry.revision == revision:
            self.hits += 1
            self.entries.move_to_end(key)
            scope["route"] = entry.route
            await self._answer(scope, entry, etags, send)
            return
        await self.app(scope, receive, self._storing(scope, key, revision, send))

    async def _answer(self, scope: Scope, entry: Entry, etags: str | None, send: Send) -> None:
        if matches(etags, entry.etag):
            headers = [
                (k, v) for k, v in entry.headers if k not in (b"content-length", b"content-type")
            ]
            await send({"type": "http.response.start", "status": 304, "headers": headers})
            await send({"type": "http.response.body", "body": b""})
            return
        await send({"type": "http.response.start", "status": 200, "headers": entry.headers})
        body = b"" if scope["method"] == "HEAD" else entry.body
        await send({"type": "http.response.body", "body": body})

    def _storing(self, scope: Scope, key: tuple[str, ...], revision: int, send: Send) -> Any:
        start: Message | None = None
        chunks: list[bytes] = []
        size = 0

        async def wrapped(message: Message) -> None:
            nonlocal start, size
            if message["type"] == "http.response.start" and message["status"] == 200:
                # A copy: the middlewares outside change the message's headers as it passes
                # (CORS for this request's origin) and the stored answer must not keep them.
                start = {**message, "headers": list(message.get("headers", []))}
            elif message["type"] == "http.response.start":
                start = None
            elif start is not None and message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
                size += len(chunks[-1])
                if size > MAX_BODY:
                    start = None
                elif not message.get("more_body", False):
                    self._store(key, revision, start, b"".join(chunks), scope.get("route"))
            await send(message)

        return wrapped

    def _store(
        self, key: tuple[str, ...], revision: int, start: Message, body: bytes, route: Any
    ) -> None:
        headers = [(bytes(k), bytes(v)) for k, v in start["headers"]]
        etag = dict(headers).get(b"etag", b"").decode()
        if not etag or key[0] == "HEAD":
            return
        size = len(body) + sum(len(name) + len(value) for name, value in headers)
        if size > self.max_bytes:
            return
        with self.lock:
            replaced = self.entries.pop(key, None)
            self.size += size - (replaced.size if replaced else 0)
            self.entries[key] = Entry(revision, headers, body, etag, route, size)
            while len(self.entries) > self.max_entries or self.size > self.max_bytes:
                _, dropped = self.entries.popitem(last=False)
                self.size -= dropped.size
