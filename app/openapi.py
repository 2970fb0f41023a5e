"""The OpenAPI document, with an example taken from the seed for every answer and schema.

``openapi_examples.json`` holds the real answers of the API over ``data/seed.json`` (one
request per operation, listed in ``EXAMPLE_REQUESTS``); ``scripts/openapi_examples.py``
regenerates it and a test checks that it is current. When the document is built, each
example is put on its operation's 200 answer and walked into the component schemas it
instantiates, so that nested schemas (a country, a citation) get an example too.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import orjson
from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from app.limits import UNLIMITED_PATHS
from app.problems import problem_responses

EXAMPLES_FILE = Path(__file__).with_name("openapi_examples.json")
TREATY = "kz-az-strategic-partnership-2005"

# operationId -> the request whose answer over the seed is that operation's example.
EXAMPLE_REQUESTS: dict[str, str] = {
    "get_health": "/healthz",
    "get_readiness": "/readyz",
    "list_countries": "/v1/countries?q=kaz",
    "get_country": "/v1/countries/KZ?lang=de",
    "list_country_partners": "/v1/countries/KZ/partners",
    "get_relation_dossier": "/v1/relations/KZ/AZ",
    "get_relation_timeline": "/v1/relations/KZ/AZ/timeline?limit=3",
    "list_treaties": "/v1/treaties?country=KZ&partner=AZ",
    "get_treaty": f"/v1/treaties/{TREATY}",
    "list_visits": "/v1/visits?country=KZ&partner=AZ",
    "get_visit": "/v1/visits/kz-az-2022-08-24-tokayev-baku",
    "list_trade": "/v1/trade?country=AZ&partner=KZ",
    "get_trade_figure": "/v1/trade/az-kz-2021-turnover-azernews",
    "list_routes": "/v1/routes?country=KZ",
    "get_route": "/v1/routes/titr",
    "list_organizations": "/v1/organizations?country=KZ&limit=1",
    "get_organization": "/v1/organizations/un",
    "list_people": "/v1/people?country=AZ&limit=1",
    "get_person": "/v1/people/yevgeny-bolgert",
    "list_sources": "/v1/sources",
    "get_source": "/v1/sources/azernews-2022-08-24-tokayev-baku",
    "list_source_facts": "/v1/sources/azernews-2022-08-24-tokayev-baku/facts?limit=2",
    "list_memberships": "/v1/memberships?country=KZ&limit=2",
    "get_membership": "/v1/memberships/kz-un",
    "list_figures": "/v1/figures?country=KZ&partner=AZ",
    "get_figure": "/v1/figures/titr-throughput-2022",
    "list_relations": "/v1/relations?country=KZ",
    "get_relation": "/v1/relations/az-kz",
    "search": "/v1/search?q=Tokayev&limit=2",
    "list_changes": "/v1/changes?limit=2",
    "export_dataset": "/v1/export",
}
PROBLEM_REQUEST = "/v1/treaties?sort=bogus"
# Writes are named ``create_<x>`` / ``update_<x>``: <x> -> the collection and id of the seed
# record (from the export example) whose body is their request example; their answer's
# example is that of ``get_<x>``.
EXAMPLE_WRITES: dict[str, tuple[str, str]] = {
    "treaty": ("treaties", TREATY),
    "visit": ("visits", "kz-az-2022-08-24-tokayev-baku"),
    "trade_figure": ("trade", "az-kz-2021-turnover-azernews"),
    "route": ("routes", "titr"),
    "organization": ("organizations", "un"),
    "membership": ("memberships", "kz-un"),
    "person": ("people", "yevgeny-bolgert"),
    "source": ("sources", "azernews-2022-08-24-tokayev-baku"),
    "figure": ("figures", "titr-throughput-2022"),
    "relation": ("relations", "az-kz"),
}
# Values that depend on when, or on which engine, the example was made, not on the seed.
VOLATILE_KEYS = frozenset({"at", "migration", "score", "snippet"})


def generate_examples(get: Callable[[str], Any]) -> dict[str, Any]:
    """``{operationId: answer}`` for every example request; ``get`` returns parsed JSON."""
    examples = {op: get(path) for op, path in EXAMPLE_REQUESTS.items()}
    examples["problem"] = get(PROBLEM_REQUEST)
    return examples


def without_volatile(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: None if k in VOLATILE_KEYS else without_volatile(v) for k, v in value.items()}
    if isinstance(value, list):
        return [without_volatile(v) for v in value]
    return value


def load_examples() -> dict[str, Any]:
    if not EXAMPLES_FILE.exists():
        return {}
    return orjson.loads(EXAMPLES_FILE.read_bytes())  # type: ignore[no-any-return]


def _component(spec: Mapping[str, Any], schema: Mapping[str, Any]) -> dict[str, Any] | None:
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/components/schemas/"):
        found: dict[str, Any] = spec["components"]["schemas"][ref.rsplit("/", 1)[1]]
        return found
    return None


def annotate(spec: Mapping[str, Any], schema: Mapping[str, Any], value: Any) -> None:
    """Give the schema (and every component schema inside it) an example from ``value``."""
    if value is None:
        return
    for option in schema.get("anyOf", []) + schema.get("oneOf", []) + schema.get("allOf", []):
        annotate(spec, option, value)
    component = _component(spec, schema)
    if component is not None:
        component.setdefault("examples", [value])
        annotate(spec, component, value)
        return
    if isinstance(value, dict):
        for name, prop in schema.get("properties", {}).items():
            annotate(spec, prop, value.get(name))
    elif isinstance(value, list) and value and isinstance(schema.get("items"), dict):
        annotate(spec, schema["items"], value[0])


def with_examples(spec: dict[str, Any], examples: Mapping[str, Any]) -> dict[str, Any]:
    for item in spec["paths"].values():
        for operation in item.values():
            example = examples.get(operation.get("operationId"))
            content = operation.get("responses", {}).get("200", {}).get("content", {})
            json_content = content.get("application/json")
            if example is None or json_content is None:
                continue
            json_content["example"] = example
            annotate(spec, json_content.get("schema", {}), example)
    with_write_examples(spec, examples)
    problem = spec["components"]["schemas"].get("ProblemDetails")
    if problem is not None and "problem" in examples:
        annotate(spec, {"$ref": "#/components/schemas/ProblemDetails"}, examples["problem"])
    return spec


def _seed_record(examples: Mapping[str, Any], collection: str, id_: str) -> Any:
    records = examples.get("export_dataset", {}).get(collection, [])
    return next((r for r in records if r.get("id") == id_), None)


def with_write_examples(spec: dict[str, Any], examples: Mapping[str, Any]) -> None:
    """Examples for writes: seed records as bodies and ids, answers like their GET's."""
    for item in spec["paths"].values():
        for operation in item.values():
            verb, _, name = str(operation.get("operationId", "")).partition("_")
            if verb not in ("create", "update", "delete") or name not in EXAMPLE_WRITES:
                continue
            for parameter in operation.get("parameters", []):
                if parameter["in"] == "path" and parameter["name"] == "id":
                    parameter["example"] = EXAMPLE_WRITES[name][1]
            record = _seed_record(examples, *EXAMPLE_WRITES[name])
            body = operation.get("requestBody", {}).get("content", {}).get("application/json")
            if record is not None and body is not None:
                if verb == "update":
                    record = {k: v for k, v in record.items() if k != "id"}
                body["example"] = record
                annotate(spec, body.get("schema", {}), record)
            answer = examples.get(f"get_{name}")
            status = "201" if verb == "create" else "200"
            content = operation.get("responses", {}).get(status, {}).get("content", {})
            if answer is not None and "application/json" in content:
                content["application/json"]["example"] = answer
                annotate(spec, content["application/json"].get("schema", {}), answer)


def with_refusals(spec: dict[str, Any]) -> dict[str, Any]:
    """The refusals of :mod:`app.guard`, which no route declares itself: every operation
    that takes a body can answer 413 (the bytes that arrive are counted before
    authentication or parsing), and every ``/v1`` operation 422 (a query parameter it does
    not take)."""
    problem = problem_responses(413)[413]["content"]  # a problem's content, any status
    too_large = {
        "description": "Content Too Large: the body is over this operation's limit "
        "(`DYAD_MAX_BODY_BYTES`; for imports, `DYAD_MAX_IMPORT_BYTES`).",
        "content": problem,
    }
    unknown = {
        "description": "Unprocessable Entity: a query parameter this operation does not take.",
        "content": problem,
    }
    for path, item in spec["paths"].items():
        for operation in item.values():
            responses = operation.setdefault("responses", {})
            if "requestBody" in operation:
                responses.setdefault("413", too_large)
            if path.startswith("/v1/"):
                responses.setdefault("422", unknown)
    return spec


def with_rate_limits(spec: dict[str, Any]) -> dict[str, Any]:
    """Every limited operation can answer 429, and every answer carries the budget headers."""
    headers = {
        name: {"description": description, "schema": {"type": "integer"}}
        for name, description in (
            ("RateLimit-Limit", "Requests allowed in any 60 seconds (a sliding window)."),
            ("RateLimit-Remaining", "Requests left in the last 60 seconds."),
            ("RateLimit-Reset", "Seconds until this minute's count starts to fade."),
        )
    }
    too_many = problem_responses(429)[429]
    for path, item in spec["paths"].items():
        if path in UNLIMITED_PATHS:
            continue
        for operation in item.values():
            responses = operation.setdefault("responses", {})
            responses.setdefault(
                "429",
                {
                    "description": "Too Many Requests: wait `Retry-After` seconds.",
                    "content": too_many["content"],
                    "headers": {"Retry-After": {"schema": {"type": "integer"}}, **headers},
                },
            )
            for response in responses.values():
                response.setdefault("headers", {}).update(headers)
    return spec


def install_openapi(app: FastAPI) -> None:
    """Build the document once, with the seed's examples, on first request."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            spec = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
                tags=app.openapi_tags,
                servers=app.servers,
            )
            spec = with_rate_limits(with_refusals(spec))
            app.openapi_schema = with_examples(spec, load_examples())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
