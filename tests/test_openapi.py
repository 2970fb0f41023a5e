"""The OpenAPI document is complete, and the whole API survives schemathesis."""

from __future__ import annotations

import re
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings

from app.main import create_app
from app.openapi import generate_examples, load_examples, without_volatile
from app.settings import Settings

METHODS = {"get", "post", "put", "patch", "delete"}


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
        has_params = bool(op.get("parameters")) or "requestBody" in op
        if has_params and path.startswith("/v1"):
            assert "422" in op["responses"], f"{method.upper()} {path} does not declare 422"
        for status, response in op["responses"].items():
            if status.startswith(("4", "5")):
                assert "application/problem+json" in response["content"], (path, status)
    assert {"getting": "/v1/relations/{a}/{b}"} and "404" in (
        openapi["paths"]["/v1/relations/{a}/{b}"]["get"]["responses"]
    )


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


def test_api_conforms_to_its_schema(shared_seeded_url: str) -> None:
    """Every operation, all default checks: no 5xx, answers match the schema.

    Driven through ``as_strategy`` rather than schemathesis' pytest plugin, which does not
    work with this pytest release. Examples are derandomized so a failure reproduces.
    """
    app = create_app(Settings(database_url=shared_seeded_url))
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    failures: list[str] = []
    for result in schema.get_all_operations():
        operation = result.ok()

        @given(case=operation.as_strategy())
        @settings(
            max_examples=25,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def check(case: Any) -> None:
            case.call_and_validate()

        try:
            check()
        except Exception as exc:  # collect every operation's failure, then report them all
            failures.append(f"{operation.label}: {exc}")
    assert not failures, "\n\n".join(failures)


def test_every_schema_has_an_example(openapi: dict[str, Any]) -> None:
    missing = [
        name for name, s in openapi["components"]["schemas"].items() if not s.get("examples")
    ]
    assert not missing, f"schemas without an example: {missing}"
    for path, method, op in operations(openapi):
        content = op["responses"]["200"].get("content", {})
        if "application/json" in content:
            assert "example" in content["application/json"], f"{method.upper()} {path}"


def test_examples_are_the_answers_over_the_seed(client: TestClient) -> None:
    """app/openapi_examples.json is current: regenerate it with scripts/openapi_examples.py."""
    live = generate_examples(lambda path: client.get(path).json())
    stored = load_examples()
    assert set(live) == set(stored)
    for operation, answer in live.items():
        assert without_volatile(answer) == without_volatile(stored[operation]), (
            f"the example of {operation} is stale: run .venv/bin/python scripts/openapi_examples.py"
        )
