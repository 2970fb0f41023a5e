"""People and the titles sources give them: ``/v1/people``."""

from __future__ import annotations

from typing import Annotated

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
    Page,
    PageParams,
    Where,
    contains_text,
    sorted_page,
    text_pattern,
)
from app.problems import problem_responses
from app.records import PersonRecord
from app.resources import CountryQuery, Record, add_get_route, list_response, names
from app.values import PartialDate
from app.writes import add_write_routes

PERSON = table(m.Person)
ROLE = table(m.Role)
ORGANIZATION = table(m.Organization)


class RolePublic(Fact):
    title: str = Field(examples=["President"])
    country: CountryPublic | None
    organization: Ref | None
    start: PartialDate | None
    end: PartialDate | None
    as_of: PartialDate | None = Field(description="When the source gives the title.")


class PersonPublic(BaseModel):
    id: str = Field(examples=["kassym-jomart-tokayev"])
    name: str = Field(examples=["Kassym-Jomart Tokayev"])
    roles: list[RolePublic]


def present(connection: Connection, records: list[Record]) -> list[Record]:
    orgs = {r["organization"] for p in records for r in p["roles"] if r["organization"]}
    org_names = names(connection, ORGANIZATION.c.id, ORGANIZATION.c.name, orgs)
    out = []
    for person in records:
        roles = []
        for role in person["roles"]:
            role = with_countries(connection.engine, role, ["country"])
            org = role["organization"]
            role["organization"] = {"id": org, "name": org_names[org]} if org else None
            roles.append(role)
        out.append({**person, "roles": roles})
    return out


router = APIRouter(prefix="/v1/people", tags=["people"])
ROLE_IN_COUNTRY = PERSON.c.id.in_(
    select(ROLE.c.person_id).where(ROLE.c.country == bindparam("country"))
)
ROLE_IN_ORGANIZATION = PERSON.c.id.in_(
    select(ROLE.c.person_id).where(ROLE.c.organization_id == bindparam("organization"))
)
NAME = contains_text("q", PERSON.c.name)
SORT_FIELDS = {"name": PERSON.c.name, "id": PERSON.c.id}


@router.get(
    "",
    operation_id="list_people",
    summary="List people",
    description="People with the roles sources give them. `country` selects people with a "
    "role in that country; `organization` with a role in that organization. Sortable by "
    "`name`, `id`.",
    response_model=Page[PersonPublic],
    responses={**CSV_RESPONSE, **problem_responses(404, 422)},
)
async def list_people(
    request: Request,
    page: Annotated[PageParams, sorted_page(SORT_FIELDS, "name", keyset=True)],
    country: CountryQuery,
    organization: Annotated[str | None, Query(max_length=120)] = None,
    q: Annotated[str | None, Query(max_length=200, description="Part of the name.")] = None,
) -> Response:
    where = Where()
    if country:
        where.add(ROLE_IN_COUNTRY, country=country)
    if organization:
        where.add(ROLE_IN_ORGANIZATION, organization=organization)
    if q:
        where.add(NAME, q=text_pattern(q))
    return await list_response(request, page, "people", where, SORT_FIELDS, "name", present)


add_get_route(router, "people", "get_person", "Get one person", PersonPublic, present)
add_write_routes(router, "people", PersonRecord, PersonPublic, present, name="person")
