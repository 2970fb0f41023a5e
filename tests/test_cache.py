"""The response cache: answers repeats without SQL, and is exact when the data changes."""

from __future__ import annotations

import asyncio
import gc
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import SEED, make_client, ok
from fastapi.testclient import TestClient
from sqlalchemy import Engine, event, text

from app.cache import PostgresRevision, ResponseCache, SQLiteRevision, revision_source
from app.db import create_db_engine


class Statements:
    """Counts the SQL statements an engine runs while it is open."""

    def __init__(self, engine: Engine) -> None:
        self.engine, self.count = engine, 0
        event.listen(engine, "before_cursor_execute", self.seen)

    def seen(self, *args: Any) -> None:
        self.count += 1

    def close(self) -> None:
        event.remove(self.engine, "before_cursor_execute", self.seen)


def test_a_repeat_touches_no_database(seeded_url: str) -> None:
    with make_client(seeded_url, cache_enabled=True) as client:
        app: Any = client.app
        first = ok(client.get("/v1/relations/KZ/AZ"))
        source = app.state.revision.source
        reads = source.reads
        statements = Statements(app.state.engine)
        try:
            for _ in range(5):
                assert ok(client.get("/v1/relations/KZ/AZ")) == first
        finally:
            statements.close()
        assert statements.count == 0  # no SQL through the app's engine
        assert source.reads == reads  # nor a read of the revision row


def test_revalidation_and_representations(seeded_url: str) -> None:
    with make_client(seeded_url, cache_enabled=True) as client:
        as_json = client.get("/v1/treaties")
        as_csv = client.get("/v1/treaties", headers={"Accept": "text/csv"})
        again_csv = client.get("/v1/treaties", headers={"Accept": "text/csv"})
        assert as_csv.headers["content-type"].startswith("text/csv")
        assert again_csv.content == as_csv.content
        assert again_csv.headers["etag"] == as_csv.headers["etag"] != as_json.headers["etag"]
        etag = as_json.headers["etag"]
        cached_304 = client.get("/v1/treaties", headers={"If-None-Match": etag})
        assert cached_304.status_code == 304 and cached_304.content == b""


def test_a_write_in_another_process_is_seen_at_once(seeded_url: str, tmp_path: Path) -> None:
    changed = tmp_path / "changed.json"
    changed.write_text(
        SEED.read_text().replace(
            '"title": "Kazakh President Kassym-Jomart Tokayev arrived in Baku on an official '
            'visit"',
            '"title": "A corrected title"',
        )
    )
    with make_client(seeded_url, cache_enabled=True) as client:
        path = "/v1/sources/azernews-2022-08-24-tokayev-baku"
        before = ok(client.get(path))
        assert ok(client.get(path)) == before  # now cached
        env = {**os.environ, "DYAD_DATABASE_URL": seeded_url}
        subprocess.run(
            [sys.executable, "-c", "from app.cli import app; app()", "seed", str(changed)],
            env=env,
            check=True,
            capture_output=True,
        )
        title = seen_title(client, path, patient=seeded_url.startswith("postgresql"))
    assert title == "A corrected title"


def seen_title(client: TestClient, path: str, patient: bool) -> str:
    """SQLite: exact on the next request. PostgreSQL: the notification may take a moment."""
    deadline = time.monotonic() + (1.0 if patient else 0.0)
    while True:
        title = str(ok(client.get(path))["title"])
        if title == "A corrected title" or time.monotonic() >= deadline:
            return title
        time.sleep(0.01)


def test_cached_answers_are_counted_under_their_route(shared_seeded_url: str) -> None:
    with make_client(shared_seeded_url, cache_enabled=True) as client:
        for _ in range(3):  # the second and third are the cache's
            ok(client.get("/v1/countries/KZ"))
            assert client.head("/v1/countries/KZ").status_code == 200
        text = client.get("/metrics").text
    for method in ("GET", "HEAD"):
        counted = f'{{method="{method}",route="/v1/countries/{{code}}",status="200"}}'
        assert f"dyad_http_requests_total{counted} 3.0" in text
    assert 'route="unmatched"' not in text


def test_a_cached_answer_keeps_no_other_requests_cors_headers(shared_seeded_url: str) -> None:
    """What CORS adds for one request's origin is not stored with the answer: with listed
    origins, the next request (from no origin, or another) must not be told the first's."""
    listed = ["https://a.example", "https://b.example"]
    with make_client(shared_seeded_url, cache_enabled=True, cors_origins=listed) as client:
        path = "/v1/countries/AZ"
        first = client.get(path, headers={"Origin": listed[0]})
        assert first.headers["access-control-allow-origin"] == listed[0]
        assert "access-control-allow-origin" not in client.get(path).headers
        other = client.get(path, headers={"Origin": listed[1]})
        assert other.headers["access-control-allow-origin"] == listed[1]
        assert "access-control-allow-origin" not in client.get(path).headers


def test_one_entry_serves_every_wording_of_the_same_representation(seeded_url: str) -> None:
    """Answers are kept by what they are (CSV or JSON), not by how a client words Accept
    or which languages it prefers: a browser's Accept shares the JSON answer. A list says
    Vary: Accept, so that a shared cache keeps the CSV and the JSON of a URL apart too."""
    csv, browser = "text/csv", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
    with make_client(seeded_url, cache_enabled=True) as client:
        as_json = client.get("/v1/treaties")
        assert as_json.headers["vary"] == "Accept, Origin"
        for headers in ({"Accept": browser}, {"Accept-Language": "de-CH,de;q=0.9"}, {}):
            assert not _runs_sql(client, "/v1/treaties", headers)
        assert _runs_sql(client, "/v1/treaties", {"Accept": csv})
        assert not _runs_sql(client, "/v1/treaties", {"Accept": f"{csv}, application/json"})
        as_csv = client.get("/v1/treaties", headers={"Accept": csv})
        assert as_csv.headers["content-type"].startswith("text/csv")
        assert as_csv.headers["vary"] == "Accept, Origin"
        assert client.get("/v1/treaties", headers={"Accept": browser}).content == as_json.content


def test_cors_on_cached_answers(shared_seeded_url: str) -> None:
    with make_client(shared_seeded_url, cache_enabled=True) as client:
        for origin in ({}, {"Origin": "https://example.org"}, {}, {"Origin": "https://a.example"}):
            response = client.get("/v1/countries/KZ", headers=origin)
            assert response.headers["vary"] == "Origin"  # once, cached or not
            assert response.headers["x-content-type-options"] == "nosniff"
            allowed = response.headers.get("access-control-allow-origin")
            assert allowed == ("*" if origin else None)


def test_the_cache_can_be_switched_off(seeded_url: str) -> None:
    with make_client(seeded_url, cache_enabled=False) as client:
        app: Any = client.app
        ok(client.get("/v1/relations/KZ/AZ"))
        statements = Statements(app.state.engine)
        try:
            ok(client.get("/v1/relations/KZ/AZ"))
        finally:
            statements.close()
        assert statements.count > 0
        assert app.state.revision.source is None


def _runs_sql(client: TestClient, path: str, headers: dict[str, str] | None = None) -> bool:
    """Whether answering ``path`` ran a statement (a repeat from the cache runs none)."""
    app: Any = client.app
    statements = Statements(app.state.engine)
    try:
        assert client.get(path, headers=headers).status_code == 200
    finally:
        statements.close()
    return statements.count > 0


def _sizes(url: str, *paths: str) -> list[int]:
    """The bytes the response cache counts for each answer (its body and the headers it
    keeps), read from the cache itself after asking for each path once."""
    sizes = []
    with make_client(url, cache_enabled=True) as client:
        app: Any = client.app
        cache = app.middleware_stack
        while not isinstance(cache, ResponseCache):
            cache = cache.app
        for path in paths:
            before = cache.size
            assert _runs_sql(client, path)
            sizes.append(cache.size - before)
    return sizes


DOSSIER, TREATIES = "/v1/relations/KZ/AZ", "/v1/treaties"


def test_the_cache_holds_no_more_bytes_than_it_may(seeded_url: str) -> None:
    """The least recently used answers go once the cached bytes pass ``cache_max_bytes``;
    an answer larger than all of it is not kept (and evicts nothing)."""
    dossier, treaties = _sizes(seeded_url, DOSSIER, TREATIES)
    budget = dossier + treaties  # room for both, exactly
    with make_client(seeded_url, cache_enabled=True, cache_max_bytes=budget) as client:
        for path in (DOSSIER, TREATIES):
            assert _runs_sql(client, path)
        assert not _runs_sql(client, DOSSIER) and not _runs_sql(client, TREATIES)
    with make_client(seeded_url, cache_enabled=True, cache_max_bytes=budget - 1) as client:
        for path in (DOSSIER, TREATIES):  # the treaties push the dossier out
            assert _runs_sql(client, path)
        assert not _runs_sql(client, TREATIES)
        assert _runs_sql(client, DOSSIER)
    with make_client(seeded_url, cache_enabled=True, cache_max_bytes=treaties) as client:
        assert _runs_sql(client, TREATIES)
        assert _runs_sql(client, DOSSIER) and _runs_sql(client, DOSSIER)  # too large to keep
        assert not _runs_sql(client, TREATIES)  # and it pushed nothing out


def test_the_sqlite_revision_asks_once_for_the_requests_queued_when_it_asked(
    tmp_path: Path,
) -> None:
    """Requests already queued on the loop share one ``data_version``; a request queued
    after the question (the next turn of the loop) asks again and sees a commit made in
    between, as does any call off the loop."""
    path = tmp_path / "revision.db"
    writer = sqlite3.connect(path, isolation_level=None)
    writer.execute("PRAGMA journal_mode=wal")
    writer.execute("CREATE TABLE dataset_state (revision INTEGER NOT NULL)")
    writer.execute("INSERT INTO dataset_state VALUES (1)")
    source = SQLiteRevision(str(path))
    seen: list[tuple[int, int]] = []

    async def request() -> None:
        seen.append((source.current(), source.checks))

    async def turns(revision: int) -> None:
        checks = source.checks
        assert source.current() == revision and source.checks == checks + 1
        writer.execute("UPDATE dataset_state SET revision = ?", (revision + 1,))
        # The same turn of the loop: the answer is shared (this call came before the commit
        # as far as anyone can tell); a task queued now runs after it is dropped, and asks.
        assert source.current() == revision and source.checks == checks + 1
        await asyncio.gather(*(request() for _ in range(5)))  # five tasks, queued together
        assert seen[-5:] == [(revision + 1, checks + 2)] * 5

    try:
        for revision in range(1, 40, 2):
            asyncio.run(turns(revision))
            writer.execute("UPDATE dataset_state SET revision = ?", (revision + 2,))
            checks = source.checks
            assert source.current() == revision + 2  # off the loop: always asked
            assert source.current() == revision + 2 and source.checks == checks + 2
    finally:
        source.close()
        writer.close()


def test_the_postgresql_revision_reads_on_one_connection(seeded_url: str) -> None:
    """Rechecks and refreshes (on the event loop) reuse one connection instead of opening
    one each time, see a committed revision at once, and connect again after losing it."""
    if not seeded_url.startswith("postgresql"):
        pytest.skip("the listener and its reader are PostgreSQL's")
    engine = create_db_engine(seeded_url)
    source = revision_source(engine)
    assert isinstance(source, PostgresRevision)
    try:
        first = source.current()
        reader = source.reader
        assert reader is not None
        with engine.begin() as connection:
            connection.execute(text("UPDATE dataset_state SET revision = revision + 1"))
        source.refresh()
        assert source.current() == first + 1 and source.reader is reader
        reader.close()  # as a server restart would
        source.refresh()  # the error is swallowed; the next read connects again
        source.refresh()
        assert source.current() == first + 1
        assert source.reader is not None and source.reader is not reader
    finally:
        source.close()
        engine.dispose()


def test_a_closed_postgresql_revision_leaves_no_connection_open(
    seeded_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Closing while the listener is still connecting must not leave a connection behind:
    the listener once read through the shared reader, and opened it again after close()."""
    if not seeded_url.startswith("postgresql"):
        pytest.skip("the listener and its reader are PostgreSQL's")
    engine = create_db_engine(seeded_url)
    source = revision_source(engine)
    assert isinstance(source, PostgresRevision)
    conninfo = source.conninfo
    source.close()
    engine.dispose()
    left_open: list[BaseException | None] = []
    monkeypatch.setattr(sys, "unraisablehook", lambda u: left_open.append(u.exc_value))
    for attempt in range(12):
        source = PostgresRevision(conninfo)
        time.sleep(0.001 * (attempt % 7))  # close at every stage of the listener's start
        source.close()
        source.thread.join(5)
        del source
        gc.collect()
    assert left_open == []
