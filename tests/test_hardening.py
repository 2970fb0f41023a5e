"""Hostile input and what answers give away: body limits, query abuse, slow queries, security
headers, unknown methods, CORS with credentials, keys kept out of sight, key guessing."""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest
from conftest import make_client, ok, problem
from fastapi import Request
from fastapi.routing import iter_route_contexts
from fastapi.testclient import TestClient
from httpx import Response
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from sqlalchemy import Engine, Integer, column, text
from sqlalchemy.exc import OperationalError

from app import api_keys, problems
from app.db import create_db_engine, fetch_all, is_sqlite, write_transaction
from app.guard import query_parameters
from app.settings import PROJECT_ROOT, Settings

SOURCE = {"id": "hardening-source", "title": "A source of the hardening tests"}
NESTED = b"[" * 100_000 + b"]" * 100_000
NESTED_OBJECTS = b'{"a":' * 100_000 + b"1" + b"}" * 100_000
# What an answer must never show: a traceback, a file of the server, SQL, the libraries.
LEAKS = re.compile(
    r"Traceback|File \"|" + re.escape(str(PROJECT_ROOT)) + r"|\.py\b|SELECT |INSERT |"
    r"sqlalchemy|psycopg|sqlite3|pydantic_core|uvicorn|starlette",
    re.IGNORECASE,
)
# Values that break naive SQL, LIKE patterns, FTS5 and tsquery syntax, encodings, parsers.
HOSTILE = [
    "'",
    '"',
    "%",
    "*",
    "a' OR '1'='1",
    '"unbalanced ( NEAR/2 ^x -y OR AND: [x] {y} % _ \\ * ?',
    "\u202eعربي\u202c \U0001f4a5 ﷽",
    "x" * 3000,
    "a\x00b",
]
IDS = [*HOSTILE, "a\"b'c[d]{e}", "[]", "%5B", "..", "\\"]
OFFSETS = ["99999999999999999999", str(2**63), str(2**63 - 1), "-1", "1e400", "1000000000"]


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def new_key(url: str, scope: api_keys.Scope = "write") -> str:
    engine = create_db_engine(url)
    try:
        return api_keys.create_key(engine, f"{scope}-{uuid.uuid4().hex[:6]}", scope)[0]
    finally:
        engine.dispose()


def revision(client: TestClient) -> int:
    return int(client.get("/v1/changes?limit=1").json()["revision"])


def no_leaks(response: Response) -> None:
    assert response.status_code < 500, (response.request.url, response.text[:300])
    hides_internals(response)


def hides_internals(response: Response) -> None:
    assert not LEAKS.search(response.text), (response.request.url, response.text[:300])
    assert response.headers["x-content-type-options"] == "nosniff"


def fill(path: str, value: str) -> str:
    return re.sub(r"\{[^}]+\}", lambda _: quote(value, safe=""), path)


def get_routes(client: TestClient) -> Iterator[Any]:
    for route in iter_route_contexts(client.app.routes):  # type: ignore[attr-defined]
        if "GET" in (route.methods or ()) and route.path.startswith("/v1/"):
            yield route


# --- 2. body size ---------------------------------------------------------------------------


def test_a_declared_body_over_the_limit_is_413_before_the_key(shared_seeded_url: str) -> None:
    with make_client(shared_seeded_url, max_body_bytes=100) as client:
        for method, path in (("POST", "/v1/sources"), ("PATCH", "/v1/sources/x")):
            response = client.request(method, path, content=b"{" + b" " * 200 + b"}")
            body = problem(response, 413)  # a 401 if the key were looked at first
            assert body["type"] == "/problems/too-large"
            assert "100 bytes" in body["detail"]
            assert response.headers["cache-control"] == "no-store"


def test_a_streamed_body_is_counted_as_it_arrives(seeded_url: str) -> None:
    key = new_key(seeded_url)
    body = b'{"id": "streamed", "title": "Streamed", "notes": "' + b"x" * 5000 + b'"}'
    json = {"Content-Type": "application/json", **bearer(key)}
    with make_client(seeded_url, max_body_bytes=1000) as client:
        before = revision(client)
        chunks = (body[i : i + 100] for i in range(0, len(body), 100))  # no Content-Length
        response = client.post("/v1/sources", content=chunks, headers=json)
        assert problem(response, 413)["type"] == "/problems/too-large"
        assert revision(client) == before
        assert client.get("/v1/sources/streamed").status_code == 404
        small = (b'{"id": "streamed", "title": "small"}',)
        assert client.post("/v1/sources", content=iter(small), headers=json).status_code == 201


def test_imports_take_larger_bodies_than_other_writes(seeded_url: str) -> None:
    key = new_key(seeded_url, "import")
    dataset = b'{"sources": [{"id": "big-import", "title": "B", "notes": "' + b"x" * 3000 + b'"}]}'
    with make_client(seeded_url, max_body_bytes=1000, max_import_bytes=5000) as client:
        json = {"Content-Type": "application/json", **bearer(key)}
        assert client.post("/v1/imports?dry_run=true", content=dataset, headers=json).is_success
        problem(client.post("/v1/sources", content=dataset, headers=json), 413)
        too_big = dataset.replace(b"x" * 3000, b"x" * 6000)
        problem(client.post("/v1/imports", content=too_big, headers=json), 413)
        chunks = (too_big[i : i + 500] for i in range(0, len(too_big), 500))
        problem(client.post("/v1/imports", content=chunks, headers=json), 413)
        # Without a key too, the size is refused first, streamed or not.
        anonymous = {"Content-Type": "application/json"}
        chunks = (too_big[i : i + 500] for i in range(0, len(too_big), 500))
        problem(client.post("/v1/imports", content=chunks, headers=anonymous), 413)
        chunks = (dataset[i : i + 500] for i in range(0, len(dataset), 500))
        problem(client.post("/v1/imports", content=chunks, headers=anonymous), 401)
        assert client.get("/v1/sources/big-import").status_code == 404


def chunked(body: bytes, size: int = 500) -> Iterator[bytes]:
    """``body`` streamed in pieces: sent chunked, without Content-Length."""
    return (body[i : i + size] for i in range(0, len(body), size))


def test_a_body_over_the_limit_is_413_whatever_its_key(seeded_url: str) -> None:
    """Refused or missing keys do not turn a too-large body into a 401: the size comes first."""
    write, load = new_key(seeded_url), new_key(seeded_url, "import")
    small_treaty = (
        b'{"id": "too-big", "title": "T", "kind": "agreement", "signed": "2023-05", '
        b'"parties": ["KZ", "031"], "sources": [{"source": "azernews-2022-08-24-tokayev-baku", '
        b'"quote": "A sentence of the source that says so."}]}'
    )
    big_treaty = small_treaty[:-1] + b', "notes": "' + b"x" * 3000 + b'"}'
    small_import = b'{"sources": [{"id": "imported", "title": "Imported"}]}'
    big_import = b'{"sources": [{"id": "too-big", "title": "B", "notes": "' + b"x" * 6000 + b'"}]}'
    routes = (
        ("/v1/imports?dry_run=true", small_import, big_import, load, write),
        ("/v1/treaties", small_treaty, big_treaty, write, load),
    )
    unknown = "dyad_" + "A" * 43
    with make_client(seeded_url, max_body_bytes=1000, max_import_bytes=5000) as client:
        before = revision(client)
        for path, small, big, right, wrong in routes:
            refused = [({}, 401), (bearer("nope"), 401), (bearer(unknown), 401)]
            refused.append((bearer(wrong), 403))  # a key of another scope
            for auth, status in refused:
                headers = {"Content-Type": "application/json", **auth}
                for body in (chunked(big), big):  # streamed, or over its Content-Length
                    problem(client.post(path, content=body, headers=headers), 413)
                # Under the limit, the key is what is wrong, streamed or not.
                problem(client.post(path, content=chunked(small), headers=headers), status)
                problem(client.post(path, content=small, headers=headers), status)
            headers = {"Content-Type": "application/json", **bearer(right)}
            problem(client.post(path, content=chunked(big), headers=headers), 413)
        # A route that takes no body checks the key before anything else: the size still first.
        delete, guess = "/v1/treaties/kz-az-strategic-partnership-2005", bearer("nope")
        for body in (chunked(big_treaty), big_treaty):
            problem(client.request("DELETE", delete, content=body, headers=guess), 413)
        problem(client.request("DELETE", delete, content=chunked(small_treaty), headers=guess), 401)
        assert revision(client) == before
        # The right key, streamed, under the limit: read once, and written.
        headers = {"Content-Type": "application/json", **bearer(write)}
        response = client.post("/v1/treaties", content=chunked(small_treaty), headers=headers)
        assert response.status_code == 201, response.text
        assert client.get("/v1/treaties/too-big").status_code == 200
        headers = {"Content-Type": "application/json", **bearer(load)}
        response = client.post("/v1/imports", content=chunked(small_import), headers=headers)
        assert response.status_code == 200, response.text
        assert client.get("/v1/sources/imported").status_code == 200


def test_a_throttled_address_gets_429_whatever_its_body(seeded_url: str) -> None:
    big = b'{"sources": [{"id": "x", "title": "' + b"x" * 3000 + b'"}]}'
    small = b'{"sources": [{"id": "x", "title": "x"}]}'
    settings: dict[str, Any] = {"max_import_bytes": 1000, "bad_key_throttle": True}
    with make_client(seeded_url, bad_key_limit=2, **settings) as client:
        guess = {"Content-Type": "application/json", **bearer("dyad_" + "Q" * 43)}
        # The import checks the key before it reads the body: a refused key is counted even
        # when the answer is the 413 of its body.
        problem(client.post("/v1/imports", content=chunked(big), headers=guess), 413)
        problem(client.post("/v1/imports", content=chunked(small), headers=guess), 401)
        # Throttled: 429 before any of the body is read, however large.
        problem(client.post("/v1/imports", content=chunked(big), headers=guess), 429)
        problem(client.post("/v1/imports", content=big, headers=guess), 413)  # Content-Length
        problem(client.post("/v1/imports", content=small, headers=guess), 429)


def test_deeply_nested_json_is_a_4xx(seeded_url: str) -> None:
    write, load = new_key(seeded_url), new_key(seeded_url, "import")
    with make_client(seeded_url) as client:
        before = revision(client)
        for body in (NESTED, NESTED_OBJECTS, b'{"id": "deep", "title": ' + NESTED + b"}"):
            headers = {"Content-Type": "application/json"}
            for path, key in (("/v1/sources", write), ("/v1/imports", load)):
                for auth in ({}, bearer(key)):
                    response = client.post(path, content=body, headers={**headers, **auth})
                    assert 400 <= response.status_code < 500, response.text
                    no_leaks(response)
        assert revision(client) == before


# --- 3. query limits ------------------------------------------------------------------------


def test_hostile_queries_and_ids_are_never_a_5xx(client: TestClient) -> None:
    routes = list(get_routes(client))
    lists = [r for r in routes if "{" not in r.path]
    by_id = [r for r in routes if "{" in r.path]
    assert len(lists) >= 10 and len(by_id) >= 10, "the routes were not found"
    for route in lists:
        names = query_parameters(route)
        for name in sorted(names - {"limit", "offset", "format"}):
            for value in HOSTILE:
                no_leaks(client.get(route.path, params={name: value}))
        for offset in OFFSETS if "offset" in names else ():
            no_leaks(client.get(route.path, params={"offset": offset}))
    for route in by_id:
        for value in IDS:
            no_leaks(client.get(fill(route.path, value)))


def test_a_parameter_an_operation_does_not_take_is_a_422(client: TestClient) -> None:
    """A misspelt or guessed filter is refused, never ignored: ignored, `year` on the trade
    list answered every year."""
    body = problem(client.get("/v1/trade", params={"year": 2021}), 422)
    assert body["errors"] == [{"param": "year", "message": "not a parameter of this operation"}]
    assert "`year_from`" in body["detail"] and "`year_to`" in body["detail"]
    body = problem(client.get("/v1/relations/KZ/AZ", params={"lang": "de", "Limit": 1}), 422)
    assert [e["param"] for e in body["errors"]] == ["Limit", "lang"]  # names are exact
    assert "takes no query parameter" in body["detail"]
    assert client.get("/v1/countries/KZ", params={"lang": "de"}).status_code == 200
    follow = ok(client.get("/v1/memberships", params={"limit": 1}))["next"]
    assert follow and client.get(follow).status_code == 200  # what a next link carries


TEXT = st.characters(blacklist_categories=["Cs"])  # what a URL can carry


@given(name=st.text(TEXT, min_size=1, max_size=50), value=st.text(TEXT, max_size=20))
@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
def test_any_parameter_but_the_declared_ones_is_refused(
    client: TestClient, name: str, value: str
) -> None:
    declared = {"country", "partner", "flow", "year_from", "year_to"}
    declared |= {"limit", "offset", "sort", "format", "cursor"}
    response = client.get("/v1/trade", params={name: value})
    if name in declared or name in api_keys.URL_KEY_PARAMS:
        assert response.status_code != 422 or all(
            e.get("message") != "not a parameter of this operation"
            for e in response.json()["errors"]
        )
    else:
        body = problem(response, 422)
        assert body["errors"] == [
            {"param": name[:40], "message": "not a parameter of this operation"}
        ]


def test_a_refusal_names_what_is_accepted(client: TestClient) -> None:
    """A value outside a choice or a sort names the alternatives, not a regular expression,
    and the detail says each problem, not only where it is."""
    body = problem(client.get("/v1/trade", params={"sort": "-nothing,year"}), 422)
    [error] = body["errors"]
    assert error["param"] == "sort" and "fields among flow, id, value, year" in error["message"]
    assert "^" not in error["message"] and error["message"] in body["detail"]
    body = problem(client.get("/v1/countries/KZ", params={"lang": "xx_YY"}), 422)
    assert re.fullmatch(
        r"'xx_YY' is not one of: ab, ace, .*, … \(\d+ in all\)", body["errors"][0]["message"]
    )
    body = problem(
        client.get("/v1/trade", params={"limit": 0, "offset": -1, "flow": "x", "year_from": 1}), 422
    )
    assert len(body["errors"]) == 4 and body["detail"].endswith("; and 1 more.")


@given(
    st.lists(
        st.from_regex(r"[a-z][a-z_]{0,11}(@[a-z]{1,5})?", fullmatch=True),
        min_size=1,
        max_size=40,
        unique=True,
    )
)
def test_the_alternatives_of_a_pattern_are_read_back(words: list[str]) -> None:
    choice = "|".join(re.escape(word) for word in words)
    assert problems._alternatives(f"^({choice})$") == words
    assert problems._alternatives(rf"^[-+]?({choice})(,[-+]?({choice}))*$") == words
    assert problems._alternatives(rf"^[a-z]({choice})$") is None  # not a plain choice


def test_a_nul_character_finds_nothing_on_every_engine(seeded_url: str) -> None:
    key = new_key(seeded_url)
    with make_client(seeded_url) as client:
        problem(client.get("/v1/treaties/a%00b"), 404)
        problem(client.get("/v1/relations/KZ/%00"), 404)
        assert client.get("/v1/treaties?q=Baku%00").json()["items"] == []
        assert client.get("/v1/visits?person=%00").json()["items"] == []
        # PostgreSQL cannot store one: a 422 there, never a 500, and nothing half-written.
        before = revision(client)
        response = client.post(
            "/v1/sources", json={**SOURCE, "notes": "a\x00b"}, headers=bearer(key)
        )
        assert response.status_code in (201, 422), response.text
        assert revision(client) == before + (response.status_code == 201)


def heavy_sql(engine: Engine, size: int) -> str:
    if is_sqlite(engine):
        return (
            "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < "
            f"{size}) SELECT count(*) FROM c"
        )
    return f"SELECT count(*) FROM pg_sleep({size / 10_000_000})"


def test_a_slow_read_is_stopped_into_a_503(shared_seeded_url: str) -> None:
    with make_client(shared_seeded_url, query_timeout_ms=100) as client:
        app = client.app

        @app.get("/slow")  # type: ignore[attr-defined]
        def slow(request: Request) -> int:
            engine: Engine = request.app.state.engine
            with engine.connect() as connection:
                return int(connection.execute(text(heavy_sql(engine, 10**9))).scalar_one())

        started = time.monotonic()
        response = client.get("/slow")
        assert time.monotonic() - started < 5
        body = problem(response, 503)
        assert body["type"] == "/problems/query-timeout"
        assert int(response.headers["retry-after"]) > 0
        hides_internals(response)
        # The connection goes back to the pool whole: the next reads are answered (each a
        # query the response cache has not seen).
        for _ in range(3):
            assert client.get("/v1/countries?q=" + uuid.uuid4().hex).status_code == 200


@pytest.mark.parametrize("batch", [False, True], ids=["alone", "in-a-batch"])
def test_a_slow_read_on_the_drivers_cursor_is_a_503_too(
    shared_seeded_url: str, batch: bool
) -> None:
    """Readers run their statements on the driver's cursor (app.db.fetch_all), several at
    once in PostgreSQL's pipeline mode: a statement stopped there is SQLAlchemy's error all
    the same, so it is a 503 problem, not a 500."""
    with make_client(shared_seeded_url, query_timeout_ms=100) as client:
        app = client.app

        @app.get("/slow-fetch")  # type: ignore[attr-defined]
        def slow(request: Request) -> int:
            engine: Engine = request.app.state.engine
            heavy = text(heavy_sql(engine, 10**9)).columns(column("n", Integer))
            quick = text("SELECT 1").columns(column("n", Integer))
            queries = [(quick, {}), (heavy, {}), (quick, {})] if batch else [(heavy, {})]
            with engine.connect() as connection:
                return sum(rows[0].n for rows in fetch_all(connection, queries))  # type: ignore[arg-type]

        started = time.monotonic()
        response = client.get("/slow-fetch")
        assert time.monotonic() - started < 5
        assert problem(response, 503)["type"] == "/problems/query-timeout"
        hides_internals(response)
        for pair in ("KZ/AZ", "AZ/KZ", "KAZ/AZE"):  # and the connection is usable again
            assert client.get(f"/v1/relations/{pair}").status_code == 200


def test_writes_and_the_cli_are_not_cut_short(fresh_url: str) -> None:
    engine = create_db_engine(fresh_url, query_timeout_ms=50)
    try:
        with write_transaction(engine) as connection:  # takes a few times the limit
            assert connection.execute(text(heavy_sql(engine, 3_000_000))).scalar_one()
        with engine.connect() as connection:  # and a read gets a fresh deadline
            assert connection.execute(text("SELECT 1")).scalar_one() == 1
    finally:
        engine.dispose()
    engine = create_db_engine(fresh_url, query_timeout_ms=0)  # what the CLI's engine gets
    try:
        with engine.connect() as connection:
            assert connection.execute(text(heavy_sql(engine, 3_000_000))).scalar_one()
    finally:
        engine.dispose()


def test_a_read_after_a_write_on_the_same_connection_is_still_stopped(fresh_url: str) -> None:
    """SQLite's progress handler is taken off for a write transaction (it would only slow
    it) and put back when the transaction ends: the next read on that connection has its
    deadline again."""
    engine = create_db_engine(fresh_url, query_timeout_ms=50)
    try:
        for _ in range(2):
            with write_transaction(engine) as connection:
                assert connection.execute(text(heavy_sql(engine, 3_000_000))).scalar_one()
            with engine.connect() as connection, pytest.raises(OperationalError):
                connection.execute(text(heavy_sql(engine, 10**9))).scalar_one()
    finally:
        engine.dispose()


# --- 4. headers -----------------------------------------------------------------------------


def test_every_answer_says_nosniff(shared_seeded_url: str) -> None:
    with make_client(shared_seeded_url, rate_limit_enabled=True, rate_limit_reads=12) as client:

        @client.app.get("/boom")  # type: ignore[attr-defined]
        def boom() -> None:
            raise RuntimeError("internals")

        first = client.get("/v1/countries/KZ")
        answers = [
            first,
            client.get("/v1/countries/KZ"),  # from the response cache
            client.get("/v1/countries/KZ", headers={"If-None-Match": first.headers["etag"]}),
            client.head("/v1/countries/KZ"),
            client.get("/v1/countries/XX"),
            client.get("/v1/treaties?limit=9999"),
            client.request("TRACE", "/v1/treaties"),
            client.options(
                "/v1/treaties",
                headers={"Origin": "https://a.example", "Access-Control-Request-Method": "POST"},
            ),
            client.get("/boom"),
            client.get("/docs"),
            client.get("/metrics"),
        ]
        while (limited := client.get("/v1/countries/AZ")).status_code != 429:
            pass
        answers.append(limited)
    assert {a.status_code for a in answers} >= {200, 304, 404, 405, 422, 429, 500}
    for answer in answers:
        assert answer.headers["x-content-type-options"] == "nosniff", answer.request.url
        assert "server" not in answer.headers and "x-powered-by" not in answer.headers
        assert not re.search(r"uvicorn|starlette|fastapi|python", str(answer.headers), re.I)


def test_answers_to_writes_are_never_stored(seeded_url: str) -> None:
    key = new_key(seeded_url)
    with make_client(seeded_url) as client:
        answers = [
            client.post("/v1/sources", json=SOURCE, headers=bearer(key)),
            client.patch("/v1/sources/hardening-source", json={"title": "B"}, headers=bearer(key)),
            client.delete("/v1/sources/hardening-source", headers=bearer(key)),
            client.post("/v1/sources", json=SOURCE),
            client.post("/v1/sources", json={}, headers=bearer(key)),
        ]
    assert [a.status_code for a in answers] == [201, 200, 204, 401, 422]
    for answer in answers:
        assert answer.headers["cache-control"] == "no-store"
        assert answer.headers["x-content-type-options"] == "nosniff"


def test_trace_and_unknown_methods_are_405_on_every_path(client: TestClient) -> None:
    paths = {fill(r.path, "kz") for r in iter_route_contexts(client.app.routes)}  # type: ignore[attr-defined]
    paths |= {"/", "/nothing-here", "/static/nothing"}
    for path in sorted(paths):
        for method in ("TRACE", "FOO", "PROPFIND"):
            response = client.request(method, path)
            body = problem(response, 405)
            assert body["type"] == "/problems/method-not-allowed"
            assert "allow" in response.headers
            no_leaks(response)
    assert "GET" in client.request("TRACE", "/v1/treaties").headers["allow"]


def test_head_is_the_get_without_its_body(client: TestClient) -> None:
    """HEAD works wherever GET does (FastAPI's routes name GET only, so it was a 405)."""
    paths = ["/", "/healthz", "/docs", "/v1/relations/KZ/AZ", "/v1/trade?format=csv"]
    paths += [fill(route.path, "kz") for route in get_routes(client)]
    for path in paths:
        got, head = client.get(path), client.head(path)
        assert head.status_code == got.status_code, path
        assert head.content == b"", path
        for name in ("content-type", "content-length", "etag"):
            assert head.headers.get(name) == got.headers.get(name), (path, name)
    assert "HEAD" in client.request("TRACE", "/v1/treaties").headers["allow"]


# --- 5. CORS --------------------------------------------------------------------------------

CREDENTIALS = {"Cookie": "session=1", "Authorization": "Bearer dyad_" + "x" * 43}


def test_a_credentialed_request_is_never_reflected(client: TestClient) -> None:
    for origin in ("https://evil.example", "null"):
        simple = client.get("/v1/countries/KZ", headers={"Origin": origin, **CREDENTIALS})
        preflight = client.options(
            "/v1/sources",
            headers={
                "Origin": origin,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization",
            },
        )
        for answer in (simple, preflight):
            assert answer.headers.get("access-control-allow-origin") == "*"
            assert "access-control-allow-credentials" not in answer.headers


def test_listed_origins_are_the_only_ones_named(shared_seeded_url: str) -> None:
    with make_client(shared_seeded_url, cors_origins=["https://good.example"]) as client:
        evil = client.get("/v1/countries/KZ", headers={"Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in evil.headers
        good = client.get("/v1/countries/KZ", headers={"Origin": "https://good.example"})
        assert good.headers["access-control-allow-origin"] == "https://good.example"
        assert "access-control-allow-credentials" not in good.headers


def test_startup_refuses_any_origin_with_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValidationError, match="DYAD_CORS_ORIGINS"):
        Settings(cors_allow_credentials=True)
    monkeypatch.setenv("DYAD_CORS_ALLOW_CREDENTIALS", "true")
    monkeypatch.setenv("DYAD_CORS_ORIGINS", '["https://a.example", "*"]')
    with pytest.raises(ValidationError, match="credentials"):
        Settings()
    monkeypatch.setenv("DYAD_CORS_ORIGINS", '["https://a.example"]')
    assert Settings().cors_allow_credentials


# --- 6. keys --------------------------------------------------------------------------------


def test_no_key_or_digest_is_ever_shown(seeded_url: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    key, load = new_key(seeded_url), new_key(seeded_url, "import")
    secrets = [key, load, api_keys.digest(key), api_keys.digest(load), key[10:], load[10:]]
    with make_client(seeded_url) as client:

        @client.app.post("/fail")  # type: ignore[attr-defined]
        def fail(request: Request) -> None:
            # A statement that fails with a key's digest among its parameters.
            with request.app.state.engine.connect() as connection:
                connection.execute(
                    text("SELECT * FROM no_such_table WHERE d = :d"), {"d": secrets[2]}
                )

        seen = [
            client.post("/v1/sources", json=SOURCE, headers=bearer(key)),
            client.patch("/v1/sources/hardening-source", json={"title": "B"}, headers=bearer(key)),
            client.post(
                "/v1/imports",
                json={"sources": [{"id": "imported", "title": "Imported"}]},
                headers=bearer(load),
            ),
            client.delete("/v1/sources/hardening-source", headers=bearer(key)),
            client.post(
                "/v1/sources",
                json=SOURCE,
                headers=bearer(key[:-1] + ("B" if key.endswith("A") else "A")),
            ),
            client.post("/v1/sources", json=SOURCE, headers=bearer(load)),
            client.post("/fail", headers=bearer(key)),
            client.get("/metrics"),
            client.get("/v1/changes?since=0&limit=500"),
            client.get("/v1/export"),
        ]
    assert [a.status_code for a in seen[:6]] == [201, 200, 200, 204, 401, 403]
    assert seen[6].status_code >= 500
    assert "/v1/sources" in seen[7].text and "hardening-source" in seen[8].text
    for secret in secrets:
        for answer in seen:
            assert secret not in answer.text
            assert secret not in str(answer.headers)
        assert secret not in caplog.text


def test_repeated_bad_keys_are_throttled(seeded_url: str) -> None:
    key = new_key(seeded_url)
    guesses = [bearer("dyad_" + c * 43) for c in "ABCD"]
    # The general rate limit stays off, as in the other tests: the throttle is its own.
    with make_client(seeded_url, bad_key_throttle=True, bad_key_limit=3) as client:
        for guess in guesses[:3]:
            assert client.post("/v1/sources", json=SOURCE, headers=guess).status_code == 401
        assert client.post("/v1/sources", json=SOURCE).status_code == 401  # no key: not counted
        response = client.post("/v1/sources", json=SOURCE, headers=guesses[3])
        body = problem(response, 429)
        assert body["type"] == "/problems/too-many-bad-keys"
        # A sliding window: refusals of this minute fade through the next one.
        assert 1 <= int(response.headers["retry-after"]) <= 2 * 60
        # Even the right key waits: the address is refused before any key is looked at.
        problem(client.post("/v1/sources", json=SOURCE, headers=bearer(key)), 429)
        assert client.get("/v1/sources/" + SOURCE["id"]).status_code == 404
        assert client.get("/v1/countries/KZ", headers=guesses[0]).status_code == 200  # reads
        other = TestClient(client.app, client=("203.0.113.9", 4000))
        assert other.post("/v1/sources", json=SOURCE, headers=bearer(key)).status_code == 201


def test_the_throttle_follows_rate_limits_unless_set() -> None:
    assert Settings(rate_limit_enabled=True).throttles_bad_keys
    assert not Settings(rate_limit_enabled=False).throttles_bad_keys
    assert Settings(rate_limit_enabled=False, bad_key_throttle=True).throttles_bad_keys
    assert not Settings(rate_limit_enabled=True, bad_key_throttle=False).throttles_bad_keys


def test_bad_keys_are_counted_together_through_redis(
    shared_seeded_url: str, redis_url: str
) -> None:
    settings = {"redis_url": redis_url, "bad_key_throttle": True, "bad_key_limit": 2}
    guess = bearer("dyad_" + "Z" * 43)
    with (
        make_client(shared_seeded_url, **settings) as one,
        make_client(shared_seeded_url, **settings) as two,
    ):
        assert one.post("/v1/sources", json=SOURCE, headers=guess).status_code == 401
        assert two.post("/v1/sources", json=SOURCE, headers=guess).status_code == 401
        assert one.post("/v1/sources", json=SOURCE, headers=guess).status_code == 429
