"""Sources and the facts each supports: ``/v1/sources``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field
from sqlalchemy import Connection, bindparam, func, select
from starlette.responses import Response

from app import models as m
from app.models import table
from app.pagination import (
    CSV_RESPONSE,
    Page,
    PageParams,
    Where,
    contains_text,
    sorted_page,
    text_pattern,
)
from app.problems import problem_responses
from app.records import SourceRecord
from app.resources import Record, add_get_route, list_response
from app.writes import add_write_routes

SOURCE = table(m.Source)
CITATION = table(m.Citation)


class SupportedFact(BaseModel):
    """A fact the source supports, and the sentence that supports it."""

    type: str = Field(examples=["trade"])
    id: str = Field(examples=["az-kz-2021-turnover-azernews"])
    quote: str


class SourcePublic(BaseModel):
    id: str = Field(examples=["azernews-2022-08-24-tokayev-baku"])
    title: str
    publisher: str | None = Field(examples=["Azernews"])
    author: str | None = Field(examples=["Vugar Khalilov"])
    published_at: str | None = Field(
        examples=["2022-08-24T11:00:00+04:00"],
        description="ISO 8601 date and time with the UTC offset the source printed.",
    )
    url: str | None
    language: str | None = Field(examples=["en"])
    notes: str | None
    facts: list[SupportedFact]


def present(connection: Connection, records: list[Record]) -> list[Record]:
    facts: dict[str, list[Record]] = {r["id"]: [] for r in records}
    rows = connection.execute(
        select(CITATION.c.source_id, CITATION.c.fact_type, CITATION.c.fact_id, CITATION.c.quote)
        .where(CITATION.c.source_id.in_(list(facts)))
        .order_by(
            CITATION.c.source_id, CITATION.c.fact_type, CITATION.c.fact_id, CITATION.c.position
        )
    )
    for source_id, fact_type, fact_id, quote in rows:
        facts[source_id].append({"type": fact_type, "id": fact_id, "quote": quote})
    return [{**r, "facts": facts[r["id"]]} for r in records]


router = APIRouter(prefix="/v1/sources", tags=["sources"])
PUBLISHER = func.lower(SOURCE.c.publisher) == bindparam("publisher")
TITLE = contains_text("q", SOURCE.c.title)
SORT_FIELDS = {"published_at": SOURCE.c.published_utc, "title": SOURCE.c.title, "id": SOURCE.c.id}


@router.get(
    "",
    operation_id="list_sources",
    summary="List sources",
    description="Sources with every fact each supports (type, id and the supporting "
    "sentence). Sortable by `published_at`, `title`, `id` (default `-published_at`).",
    response_model=Page[SourcePublic],
    responses={**CSV_RESPONSE, **problem_responses(422)},
)
async def list_sources(
    request: Request,
    page: Annotated[PageParams, sorted_page(SORT_FIELDS, "-published_at", keyset=True)],
    publisher: Annotated[str | None, Query(max_length=200)] = None,
    q: Annotated[str | None, Query(max_length=200, description="Part of the title.")] = None,
) -> Response:
    where = Where()
    if publisher:
        where.add(PUBLISHER, publisher=publisher.lower())
    if q:
        where.add(TITLE, q=text_pattern(q))
    return await list_response(
        request, page, "sources", where, SORT_FIELDS, "-published_at", present
    )


add_get_route(
    router,
    "sources",
    "get_source",
    "Get one source and the facts it supports",
    SourcePublic,
    present,
)
add_write_routes(router, "sources", SourceRecord, SourcePublic, present, name="source")
