"""The application factory: settings, engine, middleware, routers and problem handlers."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import cache

from fastapi import Depends, FastAPI

from app import (
    changes,
    countries,
    docs,
    dossier,
    explorer,
    imports,
    observability,
    openapi,
    search,
    sources,
)
from app.cache import ResponseCache, RevisionWatch
from app.db import create_db_engine
from app.etags import ETagMiddleware
from app.facts import (
    figures,
    memberships,
    organizations,
    people,
    relations,
    routes,
    trade,
    treaties,
    visits,
)
from app.guard import Cors, RequestGuard, SecurityHeaders, known_query_parameters
from app.limits import BadKeyThrottle, RateLimitMiddleware, RedisCounter, make_counter
from app.migrate import head_revision
from app.problems import install_problem_handlers
from app.settings import Settings, get_settings

DESCRIPTION = """
Sourced facts about the relations between pairs of countries: diplomatic relations,
treaties, official visits, trade figures, transport routes and shared organizations.
Every fact carries `sources`: the source's id and the sentence of it that supports the fact.
"""


EXPOSED_HEADERS = [
    "ETag",
    "Link",
    "Location",
    "Retry-After",
    "RateLimit-Limit",
    "RateLimit-Remaining",
    "RateLimit-Reset",
]


@cache
def freeze_startup_objects() -> None:
    """Move what start-up made (modules, routes, models, the OpenAPI schema) out of the
    collector's sight, once per process: a full collection walked all of it, about 60 ms
    here, a stall for every client waiting on this worker."""
    gc.collect()
    gc.freeze()


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    engine = create_db_engine(settings.database_url, settings)
    counter = make_counter(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        freeze_startup_objects()
        yield
        app.state.revision.close()
        if isinstance(counter, RedisCounter):
            await counter.aclose()
        engine.dispose()

    app = FastAPI(
        title="Dyad",
        version="1.0.0",
        description=DESCRIPTION,
        lifespan=lifespan,
        # Prometheus metrics are ours (/metrics); FastAPI's OpenTelemetry probe would cost
        # every request a lookup of providers that are not configured.
        telemetry={"tracing": False, "metrics": False, "logs": False},
        docs_url=None,
        redoc_url=None,
        dependencies=[Depends(known_query_parameters)],
    )
    app.state.settings = settings
    app.state.engine = engine
    app.state.migration_head = head_revision()
    app.state.metrics = observability.Metrics()
    app.state.revision = RevisionWatch(engine)
    install_problem_handlers(app)
    # Added last runs first: metrics see every answer; security headers go on every answer,
    # cached ones and 304s included; CORS headers go on 304s, 413s and 429s too; the guard
    # refuses oversized bodies before any key is looked at or any body parsed.
    app.add_middleware(ETagMiddleware, max_age=settings.cache_max_age)
    if settings.cache_enabled:
        app.add_middleware(
            ResponseCache,
            watch=app.state.revision,
            max_entries=settings.cache_max_entries,
            max_bytes=settings.cache_max_bytes,
        )
    if settings.throttles_bad_keys:
        app.add_middleware(BadKeyThrottle, settings=settings, counter=counter)
    app.add_middleware(RequestGuard, settings=settings)
    if settings.rate_limit_enabled:
        app.add_middleware(RateLimitMiddleware, settings=settings, counter=counter, engine=engine)
    app.add_middleware(
        Cors,
        allow_origins=settings.cors_origins,
        allow_credentials=settings.cors_allow_credentials,
        allow_methods=["*"],
        allow_headers=["*"],
        expose_headers=EXPOSED_HEADERS,
    )
    app.add_middleware(SecurityHeaders)
    app.add_middleware(observability.MetricsMiddleware, metrics=app.state.metrics)
    app.include_router(observability.router)
    for module in (
        countries,
        dossier,
        treaties,
        visits,
        trade,
        routes,
        organizations,
        memberships,
        people,
        relations,
        figures,
        sources,
        search,
        changes,
        imports,
        explorer,
    ):
        app.include_router(module.router)  # each router carries its full path prefix
    openapi.install_openapi(app)
    docs.install_docs(app)
    return app
