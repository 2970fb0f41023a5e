"""Quantities about a pair of countries or a route, one cited fact each: ``/v1/figures``."""

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
from app.pagination import (
    CSV_RESPONSE,
    DateSort,
    Page,
    PageParams,
    Where,
    sorted_page,
)
from app.problems import problem_responses
from app.records import FigureRecord
from app.resources import (
    CountryQuery,
    Pair,
    PartnerQuery,
    Record,
    add_get_route,
    list_response,
    names,
)
from app.values import PartialDate
from app.writes import add_write_routes

FIGURE = table(m.Figure)
ROUTE = table(m.TransportRoute)


class FigurePublic(Fact):
    """A quantity a source gives about a pair of countries or a route."""

    id: str = Field(examples=["az-kz-bilateral-agreements-2022"])
    metric: str = Field(examples=["bilateral_agreements"])
    value: float | int = Field(examples=[90])
    unit: str = Field(examples=["agreements"])
    approximate: bool = Field(description='The source hedges ("about", "around").')
    as_of: PartialDate | None
    countries: list[CountryPublic] | None = Field(
        description="The pair the figure is about (in code order), or null for a route's."
    )
    route: Ref | None = Field(description="The route the figure is about, or null for a pair's.")
    description: str | None


def present(connection: Connection, records: list[Record]) -> list[Record]:
    routes = {r["route"] for r in records if r["route"]}
    route_names = names(connection, ROUTE.c.id, ROUTE.c.name, routes)
    return [
        {
            **with_countries(connection.engine, r, ["countries"]),
            "route": {"id": r["route"], "name": route_names[r["route"]]} if r["route"] else None,
        }
        for r in records
    ]


router = APIRouter(prefix="/v1/figures", tags=["figures"])
PAIR = Pair(FIGURE.c.country_a, FIGURE.c.country_b)
ROUTE_FIGURES = FIGURE.c.route_id == bindparam("route")
METRIC = FIGURE.c.metric == bindparam("metric")
SORT_FIELDS: dict[str, Any] = {
    "metric": FIGURE.c.metric,
    "as_of": DateSort(FIGURE.c.as_of_start, FIGURE.c.as_of_end),
    "value": FIGURE.c.value,
    "id": FIGURE.c.id,
}


@router.get(
    "",
    operation_id="list_figures",
    summary="List figures",
    description="Figures about pairs of countries (such as the number of bilateral "
    "agreements) and about routes (such as throughput), each with its sources. `country` "
    "selects the pair figures of that country; with `partner`, those of the pair. `route` "
    "selects a route's figures, `metric` one metric's. Two sources that disagree are two "
    "figures. Sortable by `metric`, `as_of`, `value`, `id` (default `metric`).",
    response_model=Page[FigurePublic],
    responses={**CSV_RESPONSE, **problem_responses(404, 422)},
)
async def list_figures(
    request: Request,
    page: Annotated[PageParams, sorted_page(SORT_FIELDS, "metric", keyset=True)],
    country: CountryQuery,
    partner: PartnerQuery,
    route: Annotated[str | None, Query(max_length=120, description="Id of the route.")] = None,
    metric: Annotated[
        str | None, Query(max_length=80, description="The metric, e.g. `bilateral_agreements`.")
    ] = None,
) -> Response:
    where = Where()
    PAIR.narrow(where, country, partner)
    if route:
        where.add(ROUTE_FIGURES, route=route)
    if metric:
        where.add(METRIC, metric=metric)
    return await list_response(request, page, "figures", where, SORT_FIELDS, "metric", present)


add_get_route(router, "figures", "get_figure", "Get one figure", FigurePublic, present)
add_write_routes(
    router,
    "figures",
    FigureRecord,
    FigurePublic,
    present,
    name="figure",
    notes="A figure is about either a pair of `countries` or a `route`. A source that gives "
    "another value for the same metric is another figure, with an id of its own and its own "
    "`sources`: nothing is overwritten, and both are listed.",
)
