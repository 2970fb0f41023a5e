"""Operations endpoints: liveness, readiness (database reachable and migrated)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from app.dataset import current_state
from app.migrate import current_revision, head_revision
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
    with engine.connect() as connection:
        return current_state(connection)[0]


def migration_head(engine: Engine) -> str | None:
    return head_revision(engine.url.render_as_string(hide_password=False))
