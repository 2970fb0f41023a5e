"""Transport routes, the countries on them and their figures: ``/v1/routes``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Request
from pydantic import Field
from sqlalchemy import ColumnElement, Connection, bindparam, select
from starlette.responses import Response

from app import models as m
from app.countries import CountryPublic, with_countries
from app.facts.schemas import Fact
from app.models import table
from app.pagination import CSV_RESPONSE, Code, Page, PageParams, Where, sorted_page
from app.problems import problem_responses
from app.readers import Ids, Reading, collection_reading, read_figures, run, together
from app.records import RouteRecord
from app.resources import CountryQuery, Record, add_get_route, list_response
from app.values import PartialDate
from app.writes import add_write_routes

ROUTE = table(m.TransportRoute)
ROUTE_COUNTRY = table(m.RouteCountry)
FIGURE = table(m.Figure)


class RouteFigure(Fact):
    metric: str = Field(examples=["throughput"])
    value: float | int = Field(examples=[6000000])
    unit: str = Field(examples=["t/year"])
    approximate: bool
    as_of: PartialDate | None
    description: str | None


class RoutePublic(Fact):
    name: str = Field(examples=["Trans-Caspian International Transport Route"])
    acronym: str | None = Field(examples=["TITR"])
    description: str | None
    countries: list[CountryPublic] = Field(description="In the order the route runs.")
    figures: list[RouteFigure]


def route_figures(connection: Connection, route_ids: list[str]) -> dict[str, list[Record]]:
    """The figures of each route, by id, read in one query."""
    return run(connection, route_figures_reading(connection, route_ids))


def route_figures_reading(
    connection: Connection, route_ids: Ids
) -> Reading[dict[str, list[Record]]]:
    grouped: dict[str, list[Record]] = {}
    found = (yield from read_figures(connection, route_ids, key="route_id")) if route_ids else []
    for figure in found:
        route = figure.pop("route")
        figure.pop("countries")
        grouped.setdefault(route, []).append(figure)
    return grouped


def _with_figures(
    connection: Connection, records: list[Record], figures: dict[str, list[Record]]
) -> list[Record]:
    return [
        {**with_countries(connection.engine, r, ["countries"]), "figures": figures.get(r["id"], [])}
        for r in records
    ]


def present(connection: Connection, records: list[Record]) -> list[Record]:
    return _with_figures(connection, records, route_figures(connection, [r["id"] for r in records]))


def presented_reading(connection: Connection, ids: Ids) -> Reading[list[Record]]:
    """The routes ``ids`` as :func:`present` makes them, their figures read in the same
    round as they are."""
    records, figures = yield from together(
        collection_reading(connection, "routes", ids), route_figures_reading(connection, ids)
    )
    return _with_figures(connection, records, figures)


def through(code: Code) -> ColumnElement[bool]:
    return ROUTE.c.id.in_(select(ROUTE_COUNTRY.c.route_id).where(ROUTE_COUNTRY.c.country == code))


router = APIRouter(prefix="/v1/routes", tags=["routes"])
THROUGH_COUNTRY = through(bindparam("country"))
SORT_FIELDS = {"name": ROUTE.c.name, "id": ROUTE.c.id}


@router.get(
    "",
    operation_id="list_routes",
    summary="List transport routes",
    description="Routes with the countries on them (in order), their figures and sources. "
    "`country` selects routes through that country. Sortable by `name`, `id`.",
    response_model=Page[RoutePublic],
    responses={**CSV_RESPONSE, **problem_responses(404, 422)},
)
async def list_routes(
    request: Request,
    page: Annotated[PageParams, sorted_page(SORT_FIELDS, "name", keyset=True)],
    country: CountryQuery,
) -> Response:
    where = Where()
    if country:
        where.add(THROUGH_COUNTRY, country=country)
    return await list_response(request, page, "routes", where, SORT_FIELDS, "name", present)


add_get_route(router, "routes", "get_route", "Get one transport route", RoutePublic, present)
add_write_routes(router, "routes", RouteRecord, RoutePublic, present, name="route")
