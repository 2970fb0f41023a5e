"""Countries' memberships of organizations, one cited fact each: ``/v1/memberships``."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import Field
from sqlalchemy import Connection, bindparam
from starlette.responses import Response

from app import models as m
from app.countries import CountryPublic, with_countries
from app.facts.schemas import Fact, Ref
from app.models import table
from app.pagination import CSV_RESPONSE, DateSort, Page, PageParams, Where, sorted_page
from app.problems import problem_responses
from app.records import MembershipRecord
from app.resources import CountryQuery, Record, add_get_route, list_response, names
from app.values import PartialDate
from app.writes import add_write_routes

MEMBERSHIP = table(m.Membership)
ORGANIZATION = table(m.Organization)


class MembershipPublic(Fact):
    """A country's membership of an organization, with the sources that state it."""

    id: str = Field(examples=["kz-un"])
    organization: Ref
    country: CountryPublic
    since: PartialDate | None = Field(description="When the country joined, if a source says.")


def present(connection: Connection, records: list[Record]) -> list[Record]:
    orgs = {r["organization"] for r in records}
    org_names = names(connection, ORGANIZATION.c.id, ORGANIZATION.c.name, orgs)
    return [
        {
            **with_countries(connection.engine, r, ["country"]),
            "organization": {"id": r["organization"], "name": org_names[r["organization"]]},
        }
        for r in records
    ]


router = APIRouter(prefix="/v1/memberships", tags=["memberships"])
OF_COUNTRY = MEMBERSHIP.c.country == bindparam("country")
OF_ORGANIZATION = MEMBERSHIP.c.organization_id == bindparam("organization")
SORT_FIELDS: dict[str, Any] = {
    "organization": MEMBERSHIP.c.organization_id,
    "country": MEMBERSHIP.c.country,
    "since": DateSort(MEMBERSHIP.c.since_start, MEMBERSHIP.c.since_end),
    "id": MEMBERSHIP.c.id,
}


@router.get(
    "",
    operation_id="list_memberships",
    summary="List memberships",
    description="Memberships of countries in organizations, each with its sources. "
    "`country` selects a country's memberships, `organization` an organization's. Sortable "
    "by `organization`, `country`, `since`, `id` (default `organization`).",
    response_model=Page[MembershipPublic],
    responses={**CSV_RESPONSE, **problem_responses(404, 422)},
)
async def list_memberships(
    request: Request,
    page: Annotated[PageParams, sorted_page(SORT_FIELDS, "organization", keyset=True)],
    country: CountryQuery,
    organization: Annotated[
        str | None, Query(max_length=120, description="Id of the organization.")
    ] = None,
) -> Response:
    where = Where()
    if country:
        where.add(OF_COUNTRY, country=country)
    if organization:
        where.add(OF_ORGANIZATION, organization=organization)
    return await list_response(
        request, page, "memberships", where, SORT_FIELDS, "organization", present
    )


add_get_route(
    router, "memberships", "get_membership", "Get one membership", MembershipPublic, present
)
add_write_routes(
    router, "memberships", MembershipRecord, MembershipPublic, present, name="membership"
)
