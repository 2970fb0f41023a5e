"""Sources and the facts each supports: ``/v1/sources``."""

from __future__ import annotations

from functools import cache
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from pydantic import BaseModel, Field
from sqlalchemy import Connection, Select, String, bindparam, func, select
from starlette.responses import Response

from app import models as m
from app.countries import engine_of
from app.db import any_of, fetch, fetch_all, reading
from app.models import table
from app.pagination import (
    CSV_RESPONSE,
    FixedOrderPage,
    Page,
    PageParams,
    SortSpec,
    Where,
    contains_text,
    order_clauses,
    page_response,
    select_page,
    sorted_page,
    text_pattern,
)
from app.problems import NotFound, problem_responses
from app.readers import read_collection
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


FIRST_FACTS = 100  # listed with a source; the rest are paged through /v1/sources/{id}/facts


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
    facts: list[SupportedFact] = Field(
        description=f"The first {FIRST_FACTS} facts the source supports, by type and id (a "
        "fact it supports with several sentences is listed once for each). "
        "`/v1/sources/{id}/facts` pages through all of them."
    )
    fact_count: int = Field(
        description="How many facts the source supports, counted as `facts` lists them.",
        examples=[31],
    )


FACT_ORDER: SortSpec = [
    (CITATION.c.fact_type, False),
    (CITATION.c.fact_id, False),
    (CITATION.c.position, False),
    (CITATION.c.id, False),
]
SOURCE_ID = bindparam("source", type_=String)
OF_SOURCE = CITATION.c.source_id == SOURCE_ID
FACT_COLUMNS = (
    CITATION.c.fact_type.label("type"),
    CITATION.c.fact_id.label("id"),
    CITATION.c.quote,
)
FIRST_FACTS_OF = (
    select(*FACT_COLUMNS).where(OF_SOURCE).order_by(*order_clauses(FACT_ORDER)).limit(FIRST_FACTS)
)


@cache
def _facts_by_citation(dialect: str) -> Select[Any]:
    return select(CITATION.c.id.label("citation"), *FACT_COLUMNS).where(
        any_of(CITATION.c.id, "ids", dialect)
    )


@cache
def _fact_counts(dialect: str) -> Select[Any]:
    of_sources = any_of(CITATION.c.source_id, "ids", dialect)
    return (
        select(CITATION.c.source_id, func.count().label("fact_count"))
        .where(of_sources)
        .group_by(CITATION.c.source_id)
    )


def present(connection: Connection, records: list[Record]) -> list[Record]:
    """Each source with its first facts and how many it supports in all: bounded, where a
    source imported with a million trade figures answered all of them (some 300 MB). A
    statement per source for its first facts (each reads no more than it lists), one for
    the counts, all sent together (one round trip on PostgreSQL)."""
    if not records:
        return []
    ids = [r["id"] for r in records]
    counted, *firsts = fetch_all(
        connection,
        [
            (_fact_counts(connection.dialect.name), {"ids": ids}),
            *((FIRST_FACTS_OF, {"source": id_}) for id_ in ids),
        ],
    )
    counts = dict(counted)
    return [
        {
            **r,
            "facts": [row._asdict() for row in first],
            "fact_count": counts.get(r["id"], 0),
        }
        for r, first in zip(records, firsts, strict=True)
    ]


router = APIRouter(prefix="/v1/sources", tags=["sources"])
PUBLISHER = func.lower(SOURCE.c.publisher) == bindparam("publisher")
TITLE = contains_text("q", SOURCE.c.title)
SORT_FIELDS = {"published_at": SOURCE.c.published_utc, "title": SOURCE.c.title, "id": SOURCE.c.id}


@router.get(
    "",
    operation_id="list_sources",
    summary="List sources",
    description=f"Sources, each with the first {FIRST_FACTS} facts it supports (type, id and "
    "the supporting sentence) and how many it supports in all. Sortable by `published_at`, "
    "`title`, `id` (default `-published_at`).",
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


@router.get(
    "/{id}/facts",
    operation_id="list_source_facts",
    summary="Page through the facts a source supports",
    description="Every fact the source supports with the sentence that supports it, by "
    "type, then id, then the order of the fact's citations. `next` links carry a cursor, "
    "so a deep page costs what the first does. An unknown source is a 404.",
    response_model=Page[SupportedFact],
    responses={**CSV_RESPONSE, **problem_responses(404, 422)},
)
async def list_source_facts(
    request: Request,
    id: Annotated[str, Path(max_length=120, description="The source's id (a slug).")],
    page: FixedOrderPage,
) -> Response:
    where = Where()
    where.add(OF_SOURCE, source=id)

    def read_page(connection: Connection) -> tuple[list[Record], int, str | None] | None:
        ids, total, next_cursor = select_page(connection, CITATION, where, FACT_ORDER, page)
        if not total and not read_collection(connection, "sources", [id]):
            return None  # a source with facts exists: asked only when none are found
        rows = fetch(connection, _facts_by_citation(connection.dialect.name), ids=ids)
        by_id = {row.citation: {"type": row.type, "id": row.id, "quote": row.quote} for row in rows}
        return [by_id[i] for i in ids], total, next_cursor

    found = await reading(engine_of(request), read_page)
    if found is None:
        raise NotFound(f"There is no source with id {id!r}.")
    items, total, next_cursor = found
    return page_response(request, page, items, total, next_cursor=next_cursor)
