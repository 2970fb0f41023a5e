"""HTTP behaviour shared by every route: problems, ETags, CORS, metrics, readiness."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from conftest import make_client
from fastapi.testclient import TestClient
from sqlalchemy import event

from app.problems import NotFound

PROBLEM = "application/problem+json"


def assert_problem(response: object, status: int) -> dict[str, object]:
    assert response.status_code == status, response.text  # type: ignore[attr-defined]
    assert response.headers["content-type"].startswith(PROBLEM)  # type: ignore[attr-defined]
    body: dict[str, object] = response.json()  # type: ignore[attr-defined]
    assert body["status"] == status
    assert {"type", "title", "status", "detail"} <= set(body)
    return body


def test_unknown_path_is_a_problem(client: TestClient) -> None:
    body = assert_problem(client.get("/v1/nothing-here"), 404)
    assert "/v1/nothing-here" in str(body["detail"])


def test_wrong_method_is_405_with_allow(client: TestClient) -> None:
    response = client.put("/v1/countries")
    assert_problem(response, 405)
    assert "GET" in response.headers["allow"]


def test_validation_errors_name_the_parameter(client: TestClient) -> None:
    body = assert_problem(client.get("/v1/treaties?limit=501"), 422)
    assert body["errors"] == [
        {"param": "limit", "message": "Input should be less than or equal to 500"}
    ]


def test_unexpected_errors_hide_internals(
    shared_seeded_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    with make_client(shared_seeded_url) as client:

        @client.app.get("/boom")  # type: ignore[attr-defined]
        def boom() -> None:
            raise RuntimeError("secret internals at /srv/dyad/app.py: SELECT * FROM api_key")

        response = client.get("/boom")
    body = assert_problem(response, 500)
    assert body["request_id"]
    assert "secret" not in response.text and "SELECT" not in response.text
    assert "Traceback" not in response.text
    assert "RuntimeError" in caplog.text  # the server log keeps the traceback


def test_named_problems_render(shared_seeded_url: str) -> None:
    with make_client(shared_seeded_url) as client:

        @client.app.get("/missing")  # type: ignore[attr-defined]
        def missing() -> None:
            raise NotFound("No such thing.")

        body = assert_problem(client.get("/missing"), 404)
    assert body["type"] == "/problems/not-found"
    assert body["detail"] == "No such thing."


@pytest.mark.parametrize(
    "path",
    [
        "/v1/countries/KZ",
        "/v1/treaties",
        "/v1/treaties?format=csv",
        "/v1/relations/KZ/AZ",
        "/v1/relations/KZ/AZ/timeline",
        "/v1/sources/azernews-2022-08-24-tokayev-baku",
        "/v1/changes",
    ],
)
def test_conditional_get(client: TestClient, path: str) -> None:
    first = client.get(path)
    assert first.status_code == 200
    etag = first.headers["etag"]
    assert etag.startswith('"') and etag.endswith('"')
    assert first.headers["cache-control"] == "public, max-age=60"
    again = client.get(path, headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert again.content == b""
    assert again.headers["etag"] == etag
    assert client.get(path, headers={"If-None-Match": '"other"'}).status_code == 200
    assert client.get(path, headers={"If-None-Match": f'"x", W/{etag}'}).status_code == 304


def test_etag_differs_by_representation(client: TestClient) -> None:
    as_json = client.get("/v1/treaties").headers["etag"]
    as_csv = client.get("/v1/treaties", headers={"Accept": "text/csv"}).headers["etag"]
    assert as_json != as_csv


def test_cache_max_age_is_configurable(shared_seeded_url: str) -> None:
    with make_client(shared_seeded_url, cache_max_age=5) as client:
        assert client.get("/v1/countries/KZ").headers["cache-control"] == "public, max-age=5"


def test_errors_carry_no_etag(client: TestClient) -> None:
    assert "etag" not in client.get("/v1/countries/XX").headers


def test_cors_allows_any_origin_without_credentials(client: TestClient) -> None:
    response = client.get("/v1/countries/KZ", headers={"Origin": "https://example.org"})
    assert response.headers["access-control-allow-origin"] == "*"
    assert "access-control-allow-credentials" not in response.headers
    exposed = response.headers["access-control-expose-headers"].lower()
    for header in (
        "etag",
        "link",
        "location",
        "retry-after",
        "ratelimit-limit",
        "ratelimit-remaining",
        "ratelimit-reset",
    ):
        assert header in exposed
    preflight = client.options(
        "/v1/treaties",
        headers={"Origin": "https://example.org", "Access-Control-Request-Method": "GET"},
    )
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == "*"


def test_metrics_are_labelled_by_route_template(client: TestClient) -> None:
    client.get("/v1/treaties/kz-az-strategic-partnership-2005")
    client.get("/v1/treaties/no-such-treaty")
    client.get("/v1/unknown/path/x-y-z")
    text = client.get("/metrics").text
    assert 'route="/v1/treaties/{id}"' in text
    # (Not digits: a duration's sum may hold any run of them.)
    assert "no-such-treaty" not in text and "x-y-z" not in text
    assert 'route="unmatched"' in text
    assert "dyad_http_request_duration_seconds_bucket" in text
    assert 'status="404"' in text


def test_ready_when_migrated(client: TestClient) -> None:
    body = client.get("/readyz").json()
    assert body["status"] == "ready"


def test_not_ready_before_migrations(tmp_path: Path) -> None:
    with make_client(f"sqlite:///{tmp_path / 'empty.db'}") as client:
        assert client.get("/healthz").status_code == 200
        body = assert_problem(client.get("/readyz"), 503)
        assert "dyad db upgrade" in str(body["detail"])
        assert client.get("/readyz").headers["retry-after"]


def test_not_ready_when_database_unreachable() -> None:
    url = "postgresql+psycopg://nobody@127.0.0.1:1/none?connect_timeout=1"
    with make_client(url) as client:
        assert_problem(client.get("/readyz"), 503)


def test_unreachable_database_is_a_503_not_a_500() -> None:
    url = "postgresql+psycopg://nobody@127.0.0.1:1/none?connect_timeout=1"
    with make_client(url) as client:
        response = client.get("/v1/treaties")
        assert_problem(response, 503)
        assert response.headers["retry-after"]
        assert "127.0.0.1" not in response.text and "psycopg" not in response.text


def test_exhausted_pool_answers_503_quickly(engine_kind: str, shared_seeded_url: str) -> None:
    if engine_kind != "postgresql":
        pytest.skip("SQLite has no bounded pool to exhaust")
    with make_client(shared_seeded_url, pool_size=1, pool_timeout=0.2) as client:
        engine = client.app.state.engine  # type: ignore[attr-defined]
        client.get("/v1/countries/KZ")  # warm the country index
        with engine.connect():  # the only connection of the pool is taken
            started = time.perf_counter()
            response = client.get("/v1/treaties")
            elapsed = time.perf_counter() - started
        assert_problem(response, 503)
        assert response.headers["retry-after"]
        assert elapsed < 2
        assert client.get("/v1/treaties").status_code == 200  # and it recovers


READS = ["/v1/relations/KZ/AZ", "/v1/relations/KZ/AZ/timeline", "/v1/treaties", "/v1/visits"]
READS += ["/v1/countries?q=kaz", "/v1/changes", "/v1/trade/az-kz-2021-turnover-azernews"]


@pytest.mark.parametrize("path", READS)
def test_reads_wait_for_postgresql_off_the_event_loop(
    engine_kind: str, shared_seeded_url: str, path: str
) -> None:
    """On PostgreSQL an answer's statements run in a worker thread, so that a request waiting
    for the server lets the others run; on SQLite they run in the event loop (no thread hop
    for work done in this process)."""
    in_loop: list[bool] = []

    def record(*_: object) -> None:
        try:
            asyncio.get_running_loop()
            in_loop.append(True)
        except RuntimeError:
            in_loop.append(False)

    with make_client(shared_seeded_url, cache_enabled=False) as client:
        client.get("/v1/countries/KZ")  # the country index is read once, at first use
        engine = client.app.state.engine  # type: ignore[attr-defined]
        event.listen(engine, "before_cursor_execute", record)
        try:
            assert client.get(path).status_code == 200
        finally:
            event.remove(engine, "before_cursor_execute", record)
    assert in_loop
    assert set(in_loop) == {engine_kind == "sqlite"}
