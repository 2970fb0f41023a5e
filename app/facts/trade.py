"""Yearly trade figures between countries: ``/v1/trade``."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request
from pydantic import Field
from sqlalchemy import Connection, and_, bindparam, or_
from starlette.responses import Response

from app import models as m
from app.countries import CountryPublic, with_countries
from app.facts.schemas import Fact
from app.models import table
from app.pagination import CSV_RESPONSE, Page, PageParams, Where, sorted_page
from app.problems import problem_responses
from app.records import TradeRecord
from app.resources import (
    CountryQuery,
    Pair,
    PartnerQuery,
    Record,
    add_get_route,
    list_response,
)
from app.writes import add_write_routes

TRADE = table(m.TradeFigure)


class TradePublic(Fact):
    reporter: CountryPublic
    partner: CountryPublic
    year: int = Field(examples=[2021])
    flow: Literal["turnover", "export", "import"] = Field(
        description="`turnover` is the pair's total (symmetric); `export`/`import` are as "
        "reported by `reporter`."
    )
    value: int = Field(examples=[332200000], description="Whole units of `currency`.")
    currency: str = Field(examples=["USD"])
    approximate: bool


def present(connection: Connection, records: list[Record]) -> list[Record]:
    return [with_countries(connection.engine, r, ["reporter", "partner"]) for r in records]


router = APIRouter(prefix="/v1/trade", tags=["trade"])
# The pair: what ``country`` reports about ``partner``, and the turnover either way round.
PAIR = Pair(
    TRADE.c.reporter,
    TRADE.c.partner,
    pair=or_(
        and_(TRADE.c.reporter == bindparam("country"), TRADE.c.partner == bindparam("partner")),
        and_(
            TRADE.c.flow == "turnover",
            TRADE.c.reporter == bindparam("partner"),
            TRADE.c.partner == bindparam("country"),
        ),
    ),
)
FLOW = TRADE.c.flow == bindparam("flow")
FROM_YEAR = TRADE.c.year >= bindparam("year_from")
TO_YEAR = TRADE.c.year <= bindparam("year_to")
SORT_FIELDS = {"year": TRADE.c.year, "value": TRADE.c.value, "flow": TRADE.c.flow, "id": TRADE.c.id}


@router.get(
    "",
    operation_id="list_trade",
    summary="List trade figures",
    description="Trade figures with their sources. `country` matches the reporter or the "
    "partner. With `partner`: the figures `country` reports about `partner`, plus the "
    "pair's turnover whichever way round it is stored. Two sources that disagree are two "
    "figures. Sortable by `year`, `value`, `flow`, `id` (default `-year`).",
    response_model=Page[TradePublic],
    responses={**CSV_RESPONSE, **problem_responses(404, 422)},
)
async def list_trade(
    request: Request,
    page: Annotated[PageParams, sorted_page(SORT_FIELDS, "-year", keyset=True)],
    country: CountryQuery,
    partner: PartnerQuery,
    flow: Annotated[Literal["turnover", "export", "import"] | None, Query()] = None,
    year_from: Annotated[int | None, Query(ge=1800, le=2200)] = None,
    year_to: Annotated[int | None, Query(ge=1800, le=2200)] = None,
) -> Response:
    where = Where()
    PAIR.narrow(where, country, partner)
    if flow:
        where.add(FLOW, flow=flow)
    if year_from is not None:
        where.add(FROM_YEAR, year_from=year_from)
    if year_to is not None:
        where.add(TO_YEAR, year_to=year_to)
    return await list_response(request, page, "trade", where, SORT_FIELDS, "-year", present)


add_get_route(router, "trade", "get_trade_figure", "Get one trade figure", TradePublic, present)
add_write_routes(
    router,
    "trade",
    TradeRecord,
    TradePublic,
    present,
    name="trade_figure",
    notes="Sources that disagree are each stored as their own claim: a second source giving "
    "another value for the same pair, flow and year is POSTed as another trade figure, with "
    "an id of its own (e.g. `az-kz-2021-turnover-<source>`) and its own `sources`. Nothing "
    "is overwritten: `/v1/trade` and the dossier list both figures, each with the source "
    "that gives it. Sources that agree are cited together in one figure's `sources`.",
)
