"""API keys: every non-GET route refuses what is not a valid key of its scope, and the CLI
makes keys that are shown once and stored only as a digest."""

from __future__ import annotations

import hashlib
import re
from base64 import b64encode
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from click.testing import Result
from conftest import make_client, problem
from fastapi.routing import iter_route_contexts
from fastapi.testclient import TestClient
from sqlalchemy import select, update
from typer.testing import CliRunner

from app import api_keys
from app import models as m
from app.api_keys import ScopeGuard
from app.cli import app as cli
from app.db import create_db_engine, engine_for
from app.models import table

WRITE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
SCOPES: tuple[api_keys.Scope, ...] = ("write", "import")
KEY = re.compile(r"dyad_[A-Za-z0-9_-]{43}")


@dataclass(frozen=True)
class Guarded:
    method: str
    path: str  # with its path parameters filled in
    scope: str | None  # the scope its dependency asks for; None: no key asked at all


def _scopes(dependant: Any) -> Iterator[str]:
    for dependency in dependant.dependencies:
        if isinstance(dependency.call, ScopeGuard):
            yield dependency.call.scope
        yield from _scopes(dependency)


def guarded_routes(client: TestClient) -> list[Guarded]:
    """Every route of the app whose methods write, with the scope its dependency needs."""
    found = []
    # Included routers are flattened here as the OpenAPI document flattens them.
    for route in iter_route_contexts(client.app.routes):  # type: ignore[attr-defined]
        dependant = getattr(route, "dependant", None)
        if dependant is None or not route.path:
            continue
        path = re.sub(r"\{[^}]+\}", "no-such-thing", route.path)
        scopes = set(_scopes(dependant))
        assert len(scopes) <= 1, route.path
        for method in sorted((route.methods or set()) & WRITE_METHODS):
            found.append(Guarded(method, path, next(iter(scopes), None)))
    assert len(found) >= 30, "the write routes were not found"
    return found


@dataclass
class Keys:
    """A key of every kind, on one database."""

    valid: dict[str, str]  # scope -> secret
    revoked: str
    expired: str
    unknown: str


@pytest.fixture
def keys(fresh_url: str) -> Keys:
    engine = create_db_engine(fresh_url)
    try:
        valid = {scope: api_keys.create_key(engine, scope, scope)[0] for scope in SCOPES}
        revoked, info = api_keys.create_key(engine, "revoked", "write")
        assert api_keys.revoke_key(engine, info.id)
        expired, info = api_keys.create_key(engine, "expired", "write", timedelta(days=1))
        with engine.begin() as connection:  # its lifetime ran out
            connection.execute(
                update(table(m.ApiKey))
                .where(table(m.ApiKey).c.id == info.id)
                .values(expires_at=datetime.now(UTC) - timedelta(minutes=1))
            )
    finally:
        engine.dispose()
    unknown = "dyad_" + "A" * 43
    return Keys(valid=valid, revoked=revoked, expired=expired, unknown=unknown)


@pytest.fixture
def fresh_client(fresh_url: str) -> Iterator[TestClient]:
    """A client of a database of the test's own (the keys fixture writes to it)."""
    with make_client(fresh_url) as test_client:
        yield test_client


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def send(client: TestClient, route: Guarded, headers: dict[str, str], query: str = "") -> Any:
    body = {} if route.method in ("POST", "PUT", "PATCH") else None
    return client.request(route.method, route.path + query, headers=headers, json=body)


def test_every_write_route_asks_for_a_key(fresh_client: TestClient) -> None:
    routes = guarded_routes(fresh_client)
    assert {(r.method, r.path) for r in routes} >= {
        ("POST", "/v1/treaties"),
        ("PATCH", "/v1/treaties/no-such-thing"),
        ("DELETE", "/v1/sources/no-such-thing"),
    }
    assert not [r for r in routes if r.scope is None], "write routes that ask for no key"


def test_refused_keys_are_401_on_every_write_route(fresh_client: TestClient, keys: Keys) -> None:
    write_key = keys.valid["write"]
    refused: list[tuple[str, dict[str, str], str]] = [
        ("no Authorization", {}, ""),
        ("malformed key", {"Authorization": "Bearer garbage"}, ""),
        ("empty bearer", {"Authorization": "Bearer "}, ""),
        ("scheme only", {"Authorization": "Bearer"}, ""),
        ("unknown key", bearer(keys.unknown), ""),
        ("revoked key", bearer(keys.revoked), ""),
        ("expired key", bearer(keys.expired), ""),
        ("key in the URL", {}, f"?api_key={write_key}"),
        ("key in the URL too", bearer(write_key), f"?access_token={write_key}"),
        ("Basic", {"Authorization": "Basic " + b64encode(f"x:{write_key}".encode()).decode()}, ""),
        ("key without a scheme", {"Authorization": write_key}, ""),
        ("key in another header", {"X-API-Key": write_key}, ""),
    ]
    failures = []
    for route in guarded_routes(fresh_client):
        for what, headers, query in refused:
            response = send(fresh_client, route, headers, query)
            if response.status_code != 401:
                failures.append(f"{route.method} {route.path} with {what}: {response.status_code}")
                continue
            problem(response, 401)
            if not response.headers.get("www-authenticate", "").startswith("Bearer"):
                failures.append(f"{route.method} {route.path} with {what}: no WWW-Authenticate")
    assert not failures, "\n".join(failures)


def test_a_key_without_the_scope_is_403_and_with_it_gets_through(
    fresh_client: TestClient, keys: Keys
) -> None:
    failures = []
    for route in guarded_routes(fresh_client):
        for scope, key in keys.valid.items():
            response = send(fresh_client, route, bearer(key))
            if scope != route.scope:
                if response.status_code != 403:
                    failures.append(f"{route.method} {route.path}, {scope} key: not 403")
                else:
                    assert route.scope is not None
                    assert route.scope in problem(response, 403)["detail"]
            elif response.status_code in (401, 403):  # past the key: 404, 422, ...
                failures.append(f"{route.method} {route.path}, {scope} key: refused")
    assert not failures, "\n".join(failures)


def test_the_401_says_what_is_wrong(fresh_client: TestClient, keys: Keys) -> None:
    route = Guarded("POST", "/v1/treaties", "write")
    details = {
        what: problem(send(fresh_client, route, headers), 401)["detail"]
        for what, headers in (
            ("missing", {}),
            ("malformed", {"Authorization": "Bearer garbage"}),
            ("unknown", bearer(keys.unknown)),
            ("revoked", bearer(keys.revoked)),
            ("expired", bearer(keys.expired)),
        )
    }
    assert "Authorization: Bearer" in details["missing"]
    assert "revoked" in details["revoked"]
    assert "expired" in details["expired"]
    assert "not known" in details["unknown"]
    assert len(set(details.values())) == len(details)
    for detail in details.values():
        assert keys.valid["write"] not in detail
    # RFC 6750: no error code when no credentials came, invalid_token when they were bad.
    missing = send(fresh_client, route, {})
    assert missing.headers["www-authenticate"] == 'Bearer realm="dyad"'
    revoked = send(fresh_client, route, bearer(keys.revoked))
    assert revoked.headers["www-authenticate"] == 'Bearer realm="dyad", error="invalid_token"'


def test_reads_need_no_key(fresh_client: TestClient) -> None:
    assert fresh_client.get("/v1/treaties").status_code == 200


# --- the command line ----------------------------------------------------------------


def dyad(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args))


@pytest.fixture
def cli_url(fresh_url: str, use_database: Callable[[str], None]) -> Iterator[str]:
    use_database(fresh_url)
    yield fresh_url
    engine_for(fresh_url).dispose()


def stored_keys(url: str) -> list[dict[str, Any]]:
    engine = create_db_engine(url)
    try:
        with engine.connect() as connection:
            return [dict(r._mapping) for r in connection.execute(select(table(m.ApiKey)))]
    finally:
        engine.dispose()


def test_keys_create_shows_the_key_once_and_stores_its_digest(cli_url: str) -> None:
    result = dyad("keys", "create", "--name", "mirror", "--scope", "write", "--expires", "90d")
    assert result.exit_code == 0, result.output
    secrets = KEY.findall(result.output)
    assert len(secrets) == 1, result.output  # printed once
    secret = secrets[0]
    assert result.stdout.strip() == secret  # alone on stdout, for scripts
    assert len(secret) - len("dyad_") >= 43
    [row] = stored_keys(cli_url)
    assert row["digest"] == hashlib.sha256(secret.encode()).hexdigest()
    for column, value in row.items():
        assert secret not in str(value), f"the secret is stored in {column}"
        assert secret[len("dyad_") :] not in str(value), f"the secret is stored in {column}"
    assert (row["name"], row["scope"]) == ("mirror", "write")
    assert row["expires_at"] is not None

    listed = dyad("keys", "list")
    assert listed.exit_code == 0, listed.output
    assert "mirror" in listed.output
    assert not KEY.search(listed.output)
    assert secret[10:] not in listed.output  # at most the prefix that tells keys apart


def test_keys_are_random(cli_url: str) -> None:
    made = {KEY.findall(dyad("keys", "create", "--name", f"k{i}").output)[0] for i in range(3)}
    assert len(made) == 3


def test_keys_revoke_refuses_the_key_from_then_on(cli_url: str) -> None:
    secret = KEY.findall(dyad("keys", "create", "--name", "doomed").output)[0]
    [row] = stored_keys(cli_url)
    with make_client(cli_url) as client:
        route = Guarded("POST", "/v1/treaties", "write")
        problem(send(client, route, bearer(secret)), 422)  # accepted: the body is empty
        result = dyad("keys", "revoke", str(row["id"]))
        assert result.exit_code == 0, result.output
        response = send(client, route, bearer(secret))
        assert "revoked" in problem(response, 401)["detail"]
        assert response.headers["www-authenticate"].startswith("Bearer")
    assert dyad("keys", "revoke", str(row["id"])).exit_code == 1  # revoked already
    assert dyad("keys", "revoke", "9999").exit_code == 1
    [row] = stored_keys(cli_url)
    assert row["revoked_at"] is not None
