"""Official visits between countries: ``/v1/visits``."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field
from sqlalchemy import Connection, bindparam, select
from starlette.responses import Response

from app import models as m
from app.countries import CountryPublic, with_countries
from app.facts.schemas import Fact, Ref
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
from app.readers import Reading, run
from app.records import VisitRecord
from app.resources import (
    CountryQuery,
    GuestQuery,
    HostQuery,
    Interval,
    Pair,
    PartnerQuery,
    Record,
    add_get_route,
    date_query,
    list_response,
    names_reading,
)
from app.values import PartialDate
from app.writes import add_write_routes

VISIT = table(m.Visit)
PARTICIPANT = table(m.VisitParticipant)
PERSON = table(m.Person)


class Participant(BaseModel):
    person: Ref
    role: str = Field(examples=["guest_leader", "welcomed_by"])


class VisitPublic(Fact):
    date: PartialDate
    kind: str | None = Field(examples=["official"])
    guest: CountryPublic
    host: CountryPublic
    place: str | None = Field(examples=["Baku"])
    description: str | None
    participants: list[Participant]


def present(connection: Connection, records: list[Record]) -> list[Record]:
    return run(connection, present_reading(connection, records))


def present_reading(
    connection: Connection, records: list[Record], *, named: bool = True
) -> Reading[list[Record]]:
    """Visits as the API shows them: countries as objects, participants named (one query;
    ``named=False``: none, the participants left as ids, for the timeline)."""
    engine = connection.engine
    people = {p["person"] for r in records for p in r["participants"]} if named else set()
    person_names = yield from names_reading(connection, PERSON.c.id, PERSON.c.name, people)
    out = []
    for record in records:
        visit = with_countries(engine, record, ["guest", "host"])
        if named:
            visit["participants"] = [
                {
                    "person": {"id": p["person"], "name": person_names[p["person"]]},
                    "role": p["role"],
                }
                for p in record["participants"]
            ]
        out.append(visit)
    return out


router = APIRouter(prefix="/v1/visits", tags=["visits"])
DATE = Interval(VISIT.c.date_start, VISIT.c.date_end)
PAIR = Pair(VISIT.c.guest, VISIT.c.host)
HOST = VISIT.c.host == bindparam("host")
GUEST = VISIT.c.guest == bindparam("guest")
PERSON_TAKING_PART = VISIT.c.id.in_(
    select(PARTICIPANT.c.visit_id).where(PARTICIPANT.c.person_id == bindparam("person"))
)
SORT_FIELDS: dict[str, Any] = {
    "date": DateSort(VISIT.c.date_start, VISIT.c.date_end),
    "id": VISIT.c.id,
    "place": VISIT.c.place,
}


@router.get(
    "",
    operation_id="list_visits",
    summary="List visits",
    description="Visits with their guest and host countries, participants and sources. "
    "`country` matches the guest or the host; with `partner`, visits between the two in "
    "either direction. Sortable by `date`, `place`, `id` (default `-date`).",
    response_model=Page[VisitPublic],
    responses={**CSV_RESPONSE, **problem_responses(404, 422)},
)
async def list_visits(
    request: Request,
    page: Annotated[PageParams, sorted_page(SORT_FIELDS, "-date", keyset=True)],
    country: CountryQuery,
    partner: PartnerQuery,
    host: HostQuery,
    guest: GuestQuery,
    person: Annotated[
        str | None, Query(max_length=120, description="Id of a person taking part.")
    ] = None,
    date_from: Annotated[PartialDate | None, date_query("from", "On or after.")] = None,
    date_to: Annotated[PartialDate | None, date_query("to", "On or before.")] = None,
) -> Response:
    where = Where()
    DATE.overlapping(where, date_from, date_to)
    PAIR.narrow(where, country, partner)
    if host:
        where.add(HOST, host=host)
    if guest:
        where.add(GUEST, guest=guest)
    if person:
        where.add(PERSON_TAKING_PART, person=person)
    return await list_response(request, page, "visits", where, SORT_FIELDS, "-date", present)


add_get_route(router, "visits", "get_visit", "Get one visit", VisitPublic, present)
add_write_routes(router, "visits", VisitRecord, VisitPublic, present, name="visit")
