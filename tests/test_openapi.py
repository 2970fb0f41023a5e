"""The OpenAPI document is complete, and the whole API, writes included, survives schemathesis."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest
import schemathesis
from conftest import SEED, load_into
from fastapi.routing import iter_route_contexts
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis.stateful import run_state_machine_as_test
from schemathesis.config import SchemathesisConfig
from schemathesis.generation import GenerationMode

from app import api_keys
from app.db import create_db_engine
from app.guard import query_parameters
from app.main import create_app
from app.openapi import generate_examples, load_examples, without_volatile
from app.settings import Settings

METHODS = {"get", "post", "put", "patch", "delete"}
WRITE_METHODS = {"post", "put", "patch", "delete"}
COLLECTIONS = {
    "treaties": "treaty",
    "visits": "visit",
    "trade": "trade_figure",
    "routes": "route",
    "organizations": "organization",
    "memberships": "membership",
    "people": "person",
    "sources": "source",
    "figures": "figure",
    "relations": "relation",
}
# Collections whose entities are unique per pair (a relation per pair of countries, a
# membership per organization and country), where a second create of an example clashes.
PAIRED = {"relations", "memberships"}
# What a schema cannot say about a read: that a `cursor` is one a `next` link gave.
PAGED_LISTS = "|".join(
    [
        *("trade", "treaties", "visits", "organizations", "routes", "figures"),
        *("memberships", "people", "relations", "sources"),
    ]
)
CURSOR_RULE = f"""
[[operations]]
include-method-regex = "^GET$"
include-path-regex = '^/v1/({PAGED_LISTS})$'
checks.positive_data_acceptance.expected-statuses = ["2xx", "401", "403", "404", "422"]
"""
# What a schema cannot say about a write: that a cited source or a named person exists,
# that a pair differs, that If-Match names the current version. Schemathesis documents this
# tuning for such rejections (`st explain ST202`); every check still runs on every answer.
WRITE_CONFIG = (
    """
[[operations]]
include-method-regex = "^(POST|PATCH|DELETE)$"
checks.positive_data_acceptance.expected-statuses = [
    "2xx", "3xx", "401", "403", "404", "409", "412", "413", "422", "429", "5xx",
]
# Schemathesis' default rejections, and 413: a body over the limit is refused unread.
checks.negative_data_rejection.expected-statuses = [
    "400", "401", "403", "404", "405", "406", "409", "413", "415", "422", "428", "429", "5xx",
]
"""
    + CURSOR_RULE
)
# Reads: nor that the two countries of a pair differ (`/v1/relations/KZ/KZ` is a 422).
READ_CONFIG = (
    """
[[operations]]
include-path-regex = '^/v1/relations/\\{a\\}/\\{b\\}'  # a TOML literal string
checks.positive_data_acceptance.expected-statuses = ["2xx", "401", "403", "404", "422"]
"""
    + CURSOR_RULE
)
# Derandomized: the same examples every run, so that a failure reproduces as it is.
RUN = settings(
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)
# What no answer may show, in its body or a header: a stack trace, a file path, SQL or the
# database driver. (A marker the request itself holds may be echoed, as a 422 quotes a value.)
CHECKOUT = str(Path(__file__).resolve().parents[1])  # where the code lives, on any machine
LEAKS = ("Traceback", CHECKOUT, '.py"', "site-packages", "SELECT ", "sqlite3.", "psycopg")
ODD_METHODS = ("TRACE", "CONNECT", "PROPFIND", "PURGE", "FOO")
ODD_PATHS = ("/", "/docs", "/no-such-page", "/healthz", "/v1/countries", "/v1/treaties/x")


def leaks(status: int, headers: Mapping[str, list[str]], body: bytes, sent: str = "") -> list[str]:
    """What an answer gives away that it should not, as sentences."""
    found = []
    text = body.decode(errors="replace")
    for marker in LEAKS:
        where = [name for name, values in headers.items() if any(marker in v for v in values)]
        where += ["the body"] * (marker in text)
        if where and marker not in sent:
            found.append(f"{marker!r} in {', '.join(where)}")
    if any(re.search(r"\d|/", v) for v in headers.get("server", [])):
        found.append(f"a server version: {headers['server']}")
    if "x-powered-by" in headers:
        found.append(f"X-Powered-By: {headers['x-powered-by']}")
    if headers.get("x-content-type-options") != ["nosniff"]:
        found.append("no X-Content-Type-Options: nosniff")
    if status >= 500:
        found.append(f"status {status}")
    return found


def _sent(request: Any) -> str:
    body = request.body or b""
    text = body.decode(errors="replace") if isinstance(body, bytes) else str(body)
    return " ".join([unquote(str(request.url)), text, *map(str, request.headers.values())])


def leak_check(answers: list[int]) -> Callable[..., None]:
    """A schemathesis check of every answer for :func:`leaks`; counts them in ``answers``."""

    def no_leaks(ctx: Any, response: Any, case: Any) -> None:
        answers.append(response.status_code)
        found = leaks(
            response.status_code, response.headers, response.content, _sent(response.request)
        )
        # A 5xx is the not_a_server_error check's to report.
        found = [f for f in found if not f.startswith("status ")]
        assert not found, f"{case.method} {case.formatted_path}: " + "; ".join(found)

    return no_leaks


@pytest.fixture(scope="session")
def openapi(client: TestClient) -> dict[str, Any]:
    response = client.get("/openapi.json")
    assert response.status_code == 200
    return response.json()  # type: ignore[no-any-return]


def operations(openapi: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (path, method, op)
        for path, item in openapi["paths"].items()
        for method, op in item.items()
        if method in METHODS
    ]


def test_every_operation_is_documented(openapi: dict[str, Any]) -> None:
    ids = [op["operationId"] for _, _, op in operations(openapi)]
    assert len(ids) == len(set(ids)), "operationIds must be unique"
    for path, method, op in operations(openapi):
        assert re.fullmatch(r"[a-z]+(_[a-z]+)*", op["operationId"]), (path, op["operationId"])
        assert op.get("summary"), f"{method.upper()} {path} has no summary"


def test_problem_responses_are_declared(openapi: dict[str, Any]) -> None:
    for path, method, op in operations(openapi):
        if path.startswith("/v1/"):  # any of them refuses a query parameter it does not take
            assert "422" in op["responses"], f"{method.upper()} {path} does not declare 422"
        for status, response in op["responses"].items():
            if status.startswith(("4", "5")):
                assert "application/problem+json" in response["content"], (path, status)
    assert {"getting": "/v1/relations/{a}/{b}"} and "404" in (
        openapi["paths"]["/v1/relations/{a}/{b}"]["get"]["responses"]
    )


def test_every_body_may_be_too_large(openapi: dict[str, Any]) -> None:
    """A body over the limit is a 413 wherever a body is taken (the fuzzing found creates
    that answered an undeclared 413), and only there."""
    for path, method, op in operations(openapi):
        declared = "413" in op["responses"]
        assert declared == ("requestBody" in op), f"{method.upper()} {path}"
        if declared:
            assert "application/problem+json" in op["responses"]["413"]["content"]


def test_the_parameters_refused_are_exactly_those_not_documented(
    client: TestClient, openapi: dict[str, Any]
) -> None:
    """What app.guard accepts as an operation's query parameters is what OpenAPI lists."""
    checked = 0
    for route in iter_route_contexts(client.app.routes):  # type: ignore[attr-defined]
        if not route.path.startswith("/v1/"):
            continue
        for method in route.methods or ():
            documented = openapi["paths"][route.path][method.lower()].get("parameters", [])
            listed = {p["name"] for p in documented if p["in"] == "query"}
            assert query_parameters(route) == listed, f"{method} {route.path}"
            checked += 1
    assert checked >= 40


def test_well_known_operation_ids(openapi: dict[str, Any]) -> None:
    ids = {op["operationId"] for _, _, op in operations(openapi)}
    assert {
        "list_treaties",
        "get_relation_dossier",
        "get_relation_timeline",
        "search",
        "list_countries",
        "get_country",
        "list_changes",
        "export_dataset",
    } <= ids
    for name in COLLECTIONS.values():
        assert {f"get_{name}", f"create_{name}", f"update_{name}", f"delete_{name}"} <= ids


@pytest.mark.parametrize("collection", COLLECTIONS)
def test_every_collection_takes_writes(openapi: dict[str, Any], collection: str) -> None:
    """POST, PATCH, DELETE: a key needed, every answer declared, links from a create."""
    name = COLLECTIONS[collection]
    paths = openapi["paths"]
    create = paths[f"/v1/{collection}"]["post"]
    update = paths[f"/v1/{collection}/{{id}}"]["patch"]
    delete = paths[f"/v1/{collection}/{{id}}"]["delete"]
    schemas = openapi["components"]["schemas"]
    camel = "".join(part.capitalize() for part in name.split("_"))
    for op, body, statuses in (
        (create, f"{camel}Create", {"201", "401", "403", "409", "422"}),
        (update, f"{camel}Update", {"200", "401", "403", "404", "409", "412", "422"}),
        (delete, None, {"204", "401", "403", "404", "409", "412", "422"}),
    ):
        assert op["security"] == [{"ApiKey": []}]
        assert op["description"], op["operationId"]
        assert statuses <= set(op["responses"]), op["operationId"]
        if body is not None:
            ref = op["requestBody"]["content"]["application/json"]["schema"]["$ref"]
            assert ref == f"#/components/schemas/{body}"
            assert schemas[body]["additionalProperties"] is False
            assert not {"revision", "created_at", "updated_at"} & set(schemas[body]["properties"])
            assert "example" in op["requestBody"]["content"]["application/json"]
    assert "id" not in schemas[f"{camel}Update"]["properties"]
    assert not schemas[f"{camel}Update"].get("required")
    assert {"If-Match"} <= {p["name"] for p in update["parameters"]}
    assert {"Idempotency-Key"} <= {p["name"] for p in create["parameters"]}
    created = create["responses"]["201"]
    assert {"Location", "ETag"} <= set(created["headers"])
    assert {link["operationId"] for link in created["links"].values()} == {
        f"get_{name}",
        f"update_{name}",
        f"delete_{name}",
    }
    for link in created["links"].values():
        assert link["parameters"] == {"id": "$response.body#/id"}
    security = openapi["components"]["securitySchemes"]["ApiKey"]
    assert (security["type"], security["scheme"]) == ("http", "bearer")


def _run_operations(
    schema: Any,
    methods: set[str],
    max_examples: int,
    headers: dict[str, str] | None = None,
    *,
    explicit: bool = False,
) -> None:
    """The operations of ``schema`` with these methods, with generated data (and first, if
    ``explicit``, with the examples the schema gives); all default checks and
    :func:`leak_check` on every answer, every failure reported at once."""
    failures: list[str] = []
    answers: list[int] = []
    no_leaks = leak_check(answers)
    for result in schema.get_all_operations():
        operation = result.ok()
        if operation.method.lower() not in methods:
            continue
        given_examples = (
            schema.get_strategies_from_examples(operation, headers=headers) if explicit else []
        )
        for strategy, examples in [
            *((s, 1) for s in given_examples),
            (operation.as_strategy(headers=headers), max_examples),
        ]:

            @given(case=strategy)
            @settings(RUN, max_examples=examples)
            def check(case: Any) -> None:
                case.call_and_validate(headers=headers, additional_checks=[no_leaks])

            checked = len(answers)
            try:
                check()
            except Exception as exc:  # collect every operation's failure, then report them all
                failures.append(f"{operation.label}: {exc}")
            else:
                if len(answers) == checked:
                    failures.append(f"{operation.label}: no answer was checked")
    assert not failures, "\n\n".join(failures)


def test_reads_conform_to_the_schema(shared_seeded_url: str) -> None:
    """Every read, all default checks: no 5xx, answers match the schema, none leaks.

    Driven through ``as_strategy`` rather than schemathesis' pytest plugin, which does not
    work with this pytest release. Examples are derandomized so a failure reproduces.
    """
    app = create_app(Settings(database_url=shared_seeded_url, rate_limit_enabled=False))
    config = SchemathesisConfig.from_str(READ_CONFIG)
    schema = schemathesis.openapi.from_asgi("/openapi.json", app, config=config)
    _run_operations(schema, {"get"}, max_examples=25)


@pytest.fixture
def write_key(seeded_url: str) -> Iterator[dict[str, str]]:
    """The Authorization header of a write key on a seeded database of the test's own."""
    engine = create_db_engine(seeded_url)
    secret, _ = api_keys.create_key(engine, "schemathesis", "write")
    engine.dispose()
    yield {"Authorization": f"Bearer {secret}"}


def _writable(url: str) -> Any:
    app = create_app(Settings(database_url=url, rate_limit_enabled=False))
    config = SchemathesisConfig.from_str(WRITE_CONFIG)
    return schemathesis.openapi.from_asgi("/openapi.json", app, config=config)


def test_writes_conform_to_the_schema(seeded_url: str, write_key: dict[str, str]) -> None:
    """Every create, update and delete with a write key, all default checks, on a database
    of the test's own: no 5xx, every answer declared and matching its schema, none leaking
    (:func:`leaks`). The examples the schema gives (seed records, seed ids) come first: they
    reach the success paths that random ids and references seldom do."""
    _run_operations(
        _writable(seeded_url), WRITE_METHODS, max_examples=10, headers=write_key, explicit=True
    )


def _fresh(value: Any, n: int) -> Any:
    """``value`` with every ``id`` in it made new (a create's, and its roles' or notes')."""
    if isinstance(value, list):
        return [_fresh(v, n) for v in value]
    if isinstance(value, dict):
        fresh = {k: _fresh(v, n) for k, v in value.items()}
        if isinstance(fresh.get("id"), str):
            fresh["id"] = f"{fresh['id'][:100]}-stateful-{n}"
        return fresh
    return value


def test_stateful_writes_follow_their_links(seeded_url: str, write_key: dict[str, str]) -> None:
    """Sequences of writes linked through the created entity's id (the OpenAPI links of
    each 201): what was created can be read, changed and deleted, and is gone after; no
    answer leaks. A create meant to be valid sends the operation's example under new ids,
    so that it succeeds and its links are followed (a random body seldom names a source
    that exists); the tests above fuzz create bodies."""
    schema = _writable(seeded_url)
    paths = schema.raw_schema["paths"]
    examples = {
        f"/v1/{c}": paths[f"/v1/{c}"]["post"]["requestBody"]["content"]["application/json"][
            "example"
        ]
        for c in COLLECTIONS
        if c not in PAIRED
    }
    answers: list[int] = []
    no_leaks = leak_check(answers)
    made = iter(range(10**6))
    client = TestClient(schema.app)

    class Writes(schema.as_state_machine()):  # type: ignore[misc]
        def setup(self) -> None:
            self.created: list[str] = []

        def before_call(self, case: Any) -> None:
            positive = case.meta is None or case.meta.generation.mode == GenerationMode.POSITIVE
            if case.method == "POST" and case.path in examples and positive:
                case.body = _fresh(examples[case.path], next(made))
                # A replayed key would answer a create with the first one's answer.
                case.headers = {
                    k: v for k, v in (case.headers or {}).items() if k != "Idempotency-Key"
                }

        def after_call(self, response: Any, case: Any) -> None:
            if case.method == "POST" and response.status_code == 201:
                self.created.append(response.headers["location"][0])

        def teardown(self) -> None:
            # Each run starts from the seed, as Hypothesis needs to replay a run the same way:
            # what it made goes, and what it changed or deleted of the seed (following links
            # from answers that list seed facts) comes back.
            for location in reversed(self.created):
                client.delete(location, headers=write_key)
            load_into(seeded_url, SEED)

        def get_call_kwargs(self, case: Any) -> dict[str, Any]:
            return {"headers": write_key}

        def validate_response(
            self,
            response: Any,
            case: Any,
            additional_checks: list[Any] | None = None,
            **kwargs: Any,
        ) -> None:
            checks = [*(additional_checks or []), no_leaks]
            super().validate_response(response, case, additional_checks=checks, **kwargs)

    run_state_machine_as_test(
        Writes, settings=settings(RUN, max_examples=12, stateful_step_count=6)
    )
    assert {201, 200, 204} <= set(answers), "no create succeeded, or none was followed"


def test_the_leak_check_sees_each_leak() -> None:
    clean = {"content-type": ["application/json"], "x-content-type-options": ["nosniff"]}
    assert leaks(200, clean, b'{"id": "kz-az"}') == []
    for marker in LEAKS:
        assert leaks(200, clean, f"x {marker} y".encode()), marker
        assert leaks(200, {**clean, "x-debug": [marker]}, b""), marker
        assert not leaks(422, clean, f"x {marker} y".encode(), sent=f"q={marker}"), marker
    assert leaks(200, {**clean, "server": ["uvicorn/0.30"]}, b"")
    assert leaks(200, {**clean, "x-powered-by": ["FastAPI"]}, b"")
    assert leaks(200, {"content-type": ["application/json"]}, b"")  # no nosniff
    assert leaks(500, clean, b"")


@pytest.mark.parametrize("method", ODD_METHODS)
def test_other_methods_are_refused_without_a_leak(client: TestClient, method: str) -> None:
    """TRACE, CONNECT, WebDAV's and made-up methods: refused (never a 5xx), and the refusal
    gives nothing away either."""
    for path in ODD_PATHS:
        response = client.request(method, path)
        headers = {name: response.headers.get_list(name) for name in response.headers}
        assert 400 <= response.status_code < 500, (method, path, response.status_code)
        assert not leaks(response.status_code, headers, response.content), (method, path)


def _success(op: dict[str, Any]) -> dict[str, Any]:
    responses: dict[str, Any] = op["responses"]
    return next(responses[s] for s in ("200", "201", "204") if s in responses)


def test_every_schema_has_an_example(openapi: dict[str, Any]) -> None:
    missing = [
        name for name, s in openapi["components"]["schemas"].items() if not s.get("examples")
    ]
    assert not missing, f"schemas without an example: {missing}"
    for path, method, op in operations(openapi):
        content = _success(op).get("content", {})
        if "application/json" in content:
            assert "example" in content["application/json"], f"{method.upper()} {path}"
        body = op.get("requestBody", {}).get("content", {}).get("application/json")
        if op["operationId"].startswith(("create_", "update_")):
            assert "example" in body, f"{method.upper()} {path} has no request example"


def test_examples_are_the_answers_over_the_seed(client: TestClient) -> None:
    """app/openapi_examples.json is current: regenerate it with scripts/openapi_examples.py."""
    live = generate_examples(lambda path: client.get(path).json())
    stored = load_examples()
    assert set(live) == set(stored)
    for operation, answer in live.items():
        assert without_volatile(answer) == without_volatile(stored[operation]), (
            f"the example of {operation} is stale: run .venv/bin/python scripts/openapi_examples.py"
        )
