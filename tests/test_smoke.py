"""The app starts, answers /healthz and /readyz, and the seed loads on every engine."""

import gc
import inspect
from collections.abc import Iterator
from typing import Any

from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from app import countries


def test_health(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}


def test_ready(client: TestClient) -> None:
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json()["status"] == "ready"
    assert response.json()["revision"] >= 1


def test_start_up_objects_are_out_of_the_collectors_sight(client: TestClient) -> None:
    """A full collection would walk them all (about 60 ms, a p99 for every waiting client)."""
    assert gc.get_freeze_count() > 100_000


def test_read_routes_take_the_engine_from_the_request(client: TestClient) -> None:
    """FastAPI resolves each dependency on every request (about 15 µs here, as much as an
    indexed query): no ``async`` read route asks for the engine as one."""

    def calls(dependant: Dependant) -> Iterator[Any]:
        for sub in dependant.dependencies:
            yield sub.call
            yield from calls(sub)

    def routes(found: list[Any]) -> Iterator[Any]:
        for route in found:  # an included router keeps its own routes
            router = getattr(route, "original_router", None)
            yield from routes(router.routes) if router is not None else [route]

    reads = [
        route
        for route in routes(client.app.routes)  # type: ignore[attr-defined]
        if isinstance(route, APIRoute)
        and "GET" in route.methods
        and inspect.iscoroutinefunction(route.endpoint)
    ]
    assert len(reads) > 20
    for route in reads:
        assert countries._engine not in set(calls(route.dependant)), route.path
