"""Diplomatic relations of pairs of countries, by id: ``/v1/relations``.

The dossier of a pair lives under the same prefix, at ``/v1/relations/{a}/{b}``: two path
segments, so the two never collide.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Request
from pydantic import Field
from sqlalchemy import Connection
from starlette.responses import Response

from app import models as m
from app.countries import CountryPublic, with_countries
from app.facts.schemas import Fact
from app.models import table
from app.pagination import (
    CSV_RESPONSE,
    DateSort,
    Page,
    PageParams,
    Where,
    sorted_page,
)
from app.problems import problem_responses
from app.records import RelationRecord
from app.resources import CountryQuery, Pair, PartnerQuery, Record, add_get_route, list_response
from app.values import PartialDate
from app.writes import add_write_routes

RELATION = table(m.DiplomaticRelation)


class RelationNotePublic(Fact):
    """A qualitative statement a source makes about the pair's relations."""

    text: str


class RelationPublic(Fact):
    """The diplomatic relations of a pair: when established, and what the sources say."""

    id: str = Field(examples=["az-kz"])
    countries: list[CountryPublic] = Field(description="The pair, in code order.")
    established: PartialDate | None = Field(examples=["1992"])
    notes: list[RelationNotePublic]


def present(connection: Connection, records: list[Record]) -> list[Record]:
    return [with_countries(connection.engine, r, ["countries"]) for r in records]


router = APIRouter(prefix="/v1/relations", tags=["relations"])
PAIR = Pair(RELATION.c.country_a, RELATION.c.country_b)
SORT_FIELDS: dict[str, Any] = {
    "established": DateSort(RELATION.c.established_start, RELATION.c.established_end),
    "id": RELATION.c.id,
}


@router.get(
    "",
    operation_id="list_relations",
    summary="List diplomatic relations",
    description="The diplomatic relations of pairs, each with its notes and sources (one per "
    "pair). `country` selects that country's; with `partner`, the pair's. The whole dossier "
    "of a pair is at `/v1/relations/{a}/{b}`. Sortable by `established`, `id` (default `id`).",
    response_model=Page[RelationPublic],
    responses={**CSV_RESPONSE, **problem_responses(404, 422)},
)
async def list_relations(
    request: Request,
    page: Annotated[PageParams, sorted_page(SORT_FIELDS, "id", keyset=True)],
    country: CountryQuery,
    partner: PartnerQuery,
) -> Response:
    where = Where()
    PAIR.narrow(where, country, partner)
    return await list_response(request, page, "relations", where, SORT_FIELDS, "id", present)


add_get_route(
    router,
    "relations",
    "get_relation",
    "Get one pair's diplomatic relations",
    RelationPublic,
    present,
)
add_write_routes(
    router,
    "relations",
    RelationRecord,
    RelationPublic,
    present,
    name="relation",
    notes="A pair has one relation: another id for a pair that has one is a 409.",
)
