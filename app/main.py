"""The application factory: settings, engine, middleware, routers and problem handlers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from app import docs, observability, search
from app.db import create_db_engine
from app.problems import install_problem_handlers
from app.settings import Settings, get_settings

DESCRIPTION = """
Sourced facts about the relations between pairs of countries: diplomatic relations,
treaties, official visits, trade figures, transport routes and shared organizations.
Every fact carries `sources`: the source's id and the sentence of it that supports the fact.
"""


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    engine = create_db_engine(settings.database_url, settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        engine.dispose()

    app = FastAPI(
        title="Dyad",
        version="1.0.0",
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.engine = engine
    app.state.migration_head = observability.migration_head(engine)
    install_problem_handlers(app)
    app.include_router(observability.router)
    app.include_router(search.router, prefix="/v1")
    app.include_router(docs.router)
    return app
