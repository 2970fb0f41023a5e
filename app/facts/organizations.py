"""Organizations and the countries that belong to them: ``/v1/organizations``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field
from sqlalchemy import ColumnElement, Connection, bindparam, select
from starlette.responses import Response

from app import models as m
from app.countries import CountryPublic, with_countries
from app.facts.schemas import Citation
from app.models import table
from app.pagination import (
    CSV_RESPONSE,
    Code,
    Page,
    PageParams,
    Where,
    contains_text,
    sorted_page,
    text_pattern,
)
from app.problems import problem_responses
from app.readers import Ids, Reading, collection_reading, read_memberships, run, together
from app.records import OrganizationRecord
from app.resources import (
    CountryQuery,
    Record,
    TextQuery,
    add_get_route,
    list_response,
)
from app.values import PartialDate
from app.writes import add_write_routes

ORGANIZATION = table(m.Organization)
MEMBERSHIP = table(m.Membership)


class Member(BaseModel):
    """A country's membership, with the sources that state it."""

    id: str = Field(examples=["kz-un"])
    country: CountryPublic
    since: PartialDate | None
    sources: list[Citation]


class OrganizationPublic(BaseModel):
    id: str = Field(examples=["un"])
    name: str = Field(examples=["United Nations"])
    acronym: str | None = Field(examples=["UN"])
    kind: str | None
    members: list[Member]


def members(connection: Connection, org_ids: list[str]) -> dict[str, list[Record]]:
    """The memberships of each organization, by country, read in one query."""
    return run(connection, members_reading(connection, org_ids))


def members_reading(connection: Connection, org_ids: Ids) -> Reading[dict[str, list[Record]]]:
    found = (
        (yield from read_memberships(connection, org_ids, key="organization_id")) if org_ids else []
    )
    grouped: dict[str, list[Record]] = {}
    for ms in sorted(found, key=lambda ms: ms["country"]):  # stable: ties stay by id
        org = ms.pop("organization")
        grouped.setdefault(org, []).append(with_countries(connection.engine, ms, ["country"]))
    return grouped


def _with_members(records: list[Record], found: dict[str, list[Record]]) -> list[Record]:
    return [{**r, "members": found.get(r["id"], [])} for r in records]


def present(connection: Connection, records: list[Record]) -> list[Record]:
    return _with_members(records, members(connection, [r["id"] for r in records]))


def presented_reading(connection: Connection, ids: Ids) -> Reading[list[Record]]:
    """The organizations ``ids`` as :func:`present` makes them, their memberships read in
    the same round as they are."""
    records, found = yield from together(
        collection_reading(connection, "organizations", ids), members_reading(connection, ids)
    )
    return _with_members(records, found)


def member(code: Code) -> ColumnElement[bool]:
    return ORGANIZATION.c.id.in_(
        select(MEMBERSHIP.c.organization_id).where(MEMBERSHIP.c.country == code)
    )


router = APIRouter(prefix="/v1/organizations", tags=["organizations"])
MEMBER = member(bindparam("country"))
TEXT = contains_text("q", ORGANIZATION.c.name, ORGANIZATION.c.acronym)
SORT_FIELDS = {
    "name": ORGANIZATION.c.name,
    "acronym": ORGANIZATION.c.acronym,
    "id": ORGANIZATION.c.id,
}


@router.get(
    "",
    operation_id="list_organizations",
    summary="List organizations",
    description="Organizations with their member countries; each membership carries its "
    "sources. `country` selects organizations it belongs to. Sortable by `name`, `acronym`, "
    "`id`.",
    response_model=Page[OrganizationPublic],
    responses={**CSV_RESPONSE, **problem_responses(404, 422)},
)
async def list_organizations(
    request: Request,
    page: Annotated[PageParams, sorted_page(SORT_FIELDS, "name", keyset=True)],
    country: CountryQuery,
    q: TextQuery = None,
) -> Response:
    where = Where()
    if country:
        where.add(MEMBER, country=country)
    if q:
        where.add(TEXT, q=text_pattern(q))
    return await list_response(request, page, "organizations", where, SORT_FIELDS, "name", present)


add_get_route(
    router, "organizations", "get_organization", "Get one organization", OrganizationPublic, present
)
add_write_routes(
    router, "organizations", OrganizationRecord, OrganizationPublic, present, name="organization"
)
