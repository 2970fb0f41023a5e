"""Treaties and agreements between countries: ``/v1/treaties``."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Request
from pydantic import Field
from sqlalchemy import ColumnElement, Connection, bindparam, select
from starlette.responses import Response

from app import models as m
from app.countries import CountryPublic, with_countries
from app.facts.schemas import Fact
from app.models import table
from app.pagination import (
    CSV_RESPONSE,
    Code,
    DateSort,
    Page,
    PageParams,
    Where,
    contains_text,
    sorted_page,
    text_pattern,
)
from app.problems import problem_responses
from app.records import TreatyRecord
from app.resources import (
    CountryQuery,
    Interval,
    PartnerQuery,
    Record,
    TextQuery,
    add_get_route,
    date_query,
    list_response,
)
from app.values import PartialDate
from app.writes import add_write_routes

TREATY = table(m.Treaty)
PARTY = table(m.TreatyParty)


class TreatyPublic(Fact):
    title: str = Field(examples=["Treaty on Strategic Partnership and Allied Relations"])
    kind: str | None = Field(examples=["treaty"])
    signed: PartialDate | None
    signed_place: str | None = Field(examples=["Baku"])
    parties: list[CountryPublic]
    description: str | None


def present(connection: Connection, records: list[Record]) -> list[Record]:
    engine = connection.engine
    return [with_countries(engine, r, ["parties"]) for r in records]


def party(code: Code) -> ColumnElement[bool]:
    return TREATY.c.id.in_(select(PARTY.c.treaty_id).where(PARTY.c.country == code))


router = APIRouter(prefix="/v1/treaties", tags=["treaties"])
SIGNED = Interval(TREATY.c.signed_start, TREATY.c.signed_end)
COUNTRY_PARTY = party(bindparam("country"))
PARTNER_PARTY = party(bindparam("partner"))
TEXT = contains_text("q", TREATY.c.title, TREATY.c.description)
SORT_FIELDS: dict[str, Any] = {
    "signed": DateSort(TREATY.c.signed_start, TREATY.c.signed_end),
    "title": TREATY.c.title,
    "id": TREATY.c.id,
}


@router.get(
    "",
    operation_id="list_treaties",
    summary="List treaties",
    description="Treaties with their parties and sources. `country` and `partner` select "
    "treaties both are parties to. Sortable by `signed`, `title`, `id` (default `-signed`).",
    response_model=Page[TreatyPublic],
    responses={**CSV_RESPONSE, **problem_responses(404, 422)},
)
async def list_treaties(
    request: Request,
    page: Annotated[PageParams, sorted_page(SORT_FIELDS, "-signed", keyset=True)],
    country: CountryQuery,
    partner: PartnerQuery,
    signed_from: Annotated[
        PartialDate | None, date_query("signed_from", "Signed on or after.")
    ] = None,
    signed_to: Annotated[
        PartialDate | None, date_query("signed_to", "Signed on or before.")
    ] = None,
    q: TextQuery = None,
) -> Response:
    where = Where()
    SIGNED.overlapping(where, signed_from, signed_to)
    if country:
        where.add(COUNTRY_PARTY, country=country)
    if partner:
        where.add(PARTNER_PARTY, partner=partner)
    if q:
        where.add(TEXT, q=text_pattern(q))
    return await list_response(request, page, "treaties", where, SORT_FIELDS, "-signed", present)


add_get_route(router, "treaties", "get_treaty", "Get one treaty", TreatyPublic, present)
add_write_routes(router, "treaties", TreatyRecord, TreatyPublic, present, name="treaty")
