"""The change feed ``/v1/changes`` and the whole-dataset export ``/v1/export``."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field
from sqlalchemy import Connection, func, select
from starlette.responses import Response

from app import models as m
from app.countries import EngineDep, engine_of
from app.dataset import current_state, dumps, export_dataset
from app.db import read_connection, reading
from app.models import table
from app.pagination import CSV_RESPONSE, Page, PageParams, page_response, sorted_page
from app.problems import problem_responses
from app.records import Dataset

CHANGE = table(m.DatasetChange)


class Change(BaseModel):
    revision: int = Field(description="The dataset revision the write made.")
    at: datetime
    action: Literal["create", "update", "delete"]
    type: str = Field(examples=["treaty"])
    id: str


class ChangePage(Page[Change]):
    revision: int = Field(description="The current dataset revision.")


router = APIRouter(prefix="/v1", tags=["changes"])


@router.get(
    "/changes",
    operation_id="list_changes",
    summary="The change feed",
    description="Every write after revision `since`, oldest first; each change names the "
    "revision it made. A mirror stores the top-level `revision` and asks again with "
    "`since=<that revision>` to stay in sync. A write that touches several entities (an "
    "import) makes one revision with several changes.",
    response_model=ChangePage,
    responses={**CSV_RESPONSE, **problem_responses(422)},
)
async def list_changes(
    request: Request,
    page: Annotated[PageParams, sorted_page(["revision"], "revision")],
    since: Annotated[int, Query(ge=0, le=2**31 - 1, description="Revision already seen.")] = 0,
) -> Response:
    where = [CHANGE.c.revision > since]

    def read_changes(connection: Connection) -> tuple[int, int, list[dict[str, Any]]]:
        revision = current_state(connection)[0]
        total = connection.execute(
            select(func.count()).select_from(CHANGE).where(*where)
        ).scalar_one()
        rows = connection.execute(
            select(CHANGE)
            .where(*where)
            .order_by(CHANGE.c.seq)
            .limit(page.limit)
            .offset(page.offset)
        ).mappings()
        items = [
            {
                "revision": r["revision"],
                "at": r["at"].isoformat(),
                "action": r["action"],
                "type": r["entity_type"],
                "id": r["entity_id"],
            }
            for r in rows
        ]
        return revision, total, items

    revision, total, items = await reading(engine_of(request), read_changes)
    return page_response(request, page, items, total, extra={"revision": revision})


@router.get(
    "/export",
    operation_id="export_dataset",
    summary="The whole dataset, in the format of data/seed.json",
    description="Every entity in a deterministic order (collections in loading order, "
    "records by id). Loading the export into an empty database and exporting again gives "
    "the same bytes.",
    response_model=Dataset,
)
def export(engine: EngineDep) -> Response:
    with read_connection(engine) as connection:
        body = dumps(export_dataset(connection))
    return Response(body, media_type="application/json")
