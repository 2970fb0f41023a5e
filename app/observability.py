"""Operations: liveness, readiness (database reachable and migrated) and Prometheus metrics.

Metrics are labelled by route *template* (``/v1/treaties/{id}``), never by raw URL, so
that a scraper's cardinality stays bounded whatever clients ask for.
"""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from pydantic import BaseModel
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.dataset import current_state
from app.db import read_connection
from app.migrate import current_revision
from app.problems import ServiceUnavailable, problem_responses

router = APIRouter(tags=["operations"])


class Health(BaseModel):
    status: str


class Readiness(BaseModel):
    status: str
    migration: str
    revision: int


@router.get(
    "/healthz",
    operation_id="get_health",
    summary="Liveness: the process answers",
    response_model=Health,
)
def get_health() -> dict[str, Any]:
    return {"status": "ok"}


@router.get(
    "/readyz",
    operation_id="get_readiness",
    summary="Readiness: the database is reachable and migrated to the latest revision",
    response_model=Readiness,
    responses=problem_responses(503),
)
def get_readiness(request: Request) -> dict[str, Any]:
    engine: Engine = request.app.state.engine
    head: str | None = request.app.state.migration_head
    try:
        current = current_revision(engine)
        revision = current_state_safe(engine) if current == head else 0
    except SQLAlchemyError:
        raise ServiceUnavailable(
            "The database cannot be reached.", headers={"Retry-After": "5"}
        ) from None
    if current != head:
        raise ServiceUnavailable(
            f"The database is at migration {current or 'none'}, not {head}: run `dyad db upgrade`.",
            headers={"Retry-After": "5"},
        )
    return {"status": "ready", "migration": head, "revision": revision}


def current_state_safe(engine: Engine) -> int:
    with read_connection(engine) as connection:
        return current_state(connection)[0]


class Metrics:
    """Request counts and latency histograms of one app, in a registry of its own."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "dyad_http_requests",
            "HTTP requests answered, by method, route template and status.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "dyad_http_request_duration_seconds",
            "Time to answer, by method and route template.",
            ["method", "route"],
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
            registry=self.registry,
        )
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    def record(self, method: str, route: str, status: int, seconds: float) -> None:
        """Count one answer. The labelled children are looked up once per label set:
        ``labels()`` checks and locks on every call, a third of a cached answer's time."""
        key = (method, route, status)
        children = self._children.get(key)
        if children is None:
            children = self._children[key] = (
                self.requests.labels(method, route, str(status)),
                self.latency.labels(method, route),
            )
        children[0].inc()
        children[1].observe(seconds)


class MetricsMiddleware:
    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def record(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, record)
        finally:
            # Routers carry their full prefix ("/v1/..."), so this is the whole template.
            # (The response cache puts the route of the answer it repeats in the scope.)
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            self.metrics.record(scope["method"], route, status, time.perf_counter() - started)


@router.get(
    "/metrics",
    operation_id="get_metrics",
    summary="Prometheus metrics",
    description="Request counts and latency histograms per route template, in the "
    "Prometheus text format.",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {"schema": {"type": "string"}}}}},
)
def get_metrics(request: Request) -> Response:
    metrics: Metrics = request.app.state.metrics
    return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)
