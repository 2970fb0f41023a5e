"""The pair dossier and timeline: everything that ties two countries, in one answer.

The dossier is assembled read-only with a fixed number of queries in two rounds (each
section's records in bulk; the sources cited), whatever the number of facts; the queries
of a round go to the database together. It is symmetric: the pair is put in canonical
order before any query, so ``KZ/AZ`` and ``AZ/KZ`` hold the same facts; only ``countries``
keeps the order that was asked.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from functools import lru_cache
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request
from pydantic import BaseModel, Field
from sqlalchemy import (
    Connection,
    String,
    bindparam,
)
from starlette.responses import Response

from app import models as m
from app.countries import CountryPublic, country_index, engine_of, resolve
from app.db import generic_plans, reading
from app.facts import organizations, routes, trade, treaties, visits
from app.facts.routes import RoutePublic
from app.facts.schemas import Citation, Fact
from app.facts.trade import TradePublic
from app.facts.treaties import TreatyPublic
from app.facts.visits import VisitPublic
from app.models import table
from app.pagination import (
    CSV_RESPONSE,
    Page,
    PageParams,
    either_way,
    json_response,
    page_response,
    sorted_page,
)
from app.problems import InvalidInput, problem_responses
from app.readers import Choice, Chosen, Reading, collection_reading, run, together
from app.values import PartialDate

Record = dict[str, Any]
RELATION = table(m.DiplomaticRelation)
FIGURE = table(m.Figure)
TRADE = table(m.TradeFigure)
VISIT = table(m.Visit)
MEMBERSHIP = table(m.Membership)
ORGANIZATION = table(m.Organization)


class RelationNote(Fact):
    text: str


class DiplomaticRelation(Fact):
    established: PartialDate | None = Field(examples=["1992"])
    notes: list[RelationNote] = Field(
        description="Qualitative statements the sources make about the pair."
    )


class PairFigure(Fact):
    metric: str = Field(examples=["bilateral_agreements"])
    value: float | int = Field(examples=[90])
    unit: str = Field(examples=["agreements"])
    approximate: bool
    as_of: PartialDate | None
    description: str | None


class SharedOrganization(BaseModel):
    id: str
    name: str
    acronym: str | None
    kind: str | None
    members: list[organizations.Member] = Field(description="The pair's two memberships.")


class SourceSummary(BaseModel):
    id: str
    title: str
    publisher: str | None
    author: str | None
    published_at: str | None
    url: str | None
    language: str | None
    notes: str | None


class Dossier(BaseModel):
    """Every fact of a pair, each with its sources, and every source cited once."""

    countries: list[CountryPublic] = Field(description="The two countries, in the order asked.")
    diplomatic_relations: list[DiplomaticRelation]
    treaties: list[TreatyPublic]
    visits: list[VisitPublic]
    trade: list[TradePublic]
    figures: list[PairFigure]
    shared_organizations: list[SharedOrganization]
    routes: list[RoutePublic]
    sources: list[SourceSummary]


class TimelineEntry(BaseModel):
    date: PartialDate
    type: str = Field(examples=["treaty"])
    id: str
    title: str
    sources: list[Citation]


async def _pair_path(
    request: Request,
    a: Annotated[str, Path(max_length=16, description="A country, any ISO code form.")],
    b: Annotated[str, Path(max_length=16, description="The other country.")],
) -> tuple[str, str]:
    engine = engine_of(request)
    first, second = resolve(engine, a), resolve(engine, b)
    if first == second:
        raise InvalidInput(
            f"A pair needs two different countries; {a!r} and {b!r} both name {first}.",
            errors=[{"param": "b", "message": "must differ from a"}],
        )
    return first, second


PairPath = Annotated[tuple[str, str], Depends(_pair_path)]


X, Y = bindparam("x", type_=String), bindparam("y", type_=String)  # the pair, sorted
SECTIONS = {
    # Each section's facts of the pair, in their order in the dossier (undated last, ties by
    # id), picked by the statements that read them and their children: no statement and
    # round (on PostgreSQL a round trip) for the ids first.
    "relations": Choice(RELATION, (RELATION.c.country_a == X, RELATION.c.country_b == Y)),
    "treaties": Choice(
        treaties.TREATY, (treaties.party(X), treaties.party(Y)), (treaties.TREATY.c.signed_start,)
    ),
    "visits": Choice(
        VISIT, (either_way(VISIT.c.guest, VISIT.c.host, X, Y),), (VISIT.c.date_start,)
    ),
    "trade": Choice(
        TRADE,
        (either_way(TRADE.c.reporter, TRADE.c.partner, X, Y),),
        (TRADE.c.year, TRADE.c.flow),
    ),
    "figures": Choice(
        FIGURE, (FIGURE.c.country_a == X, FIGURE.c.country_b == Y), (FIGURE.c.metric,)
    ),
    "organizations": Choice(
        ORGANIZATION,
        (organizations.member(X), organizations.member(Y)),
        (ORGANIZATION.c.name,),
    ),
    "routes": Choice(routes.ROUTE, (routes.through(X), routes.through(Y)), (routes.ROUTE.c.name,)),
}


def build_dossier(connection: Connection, a: str, b: str, *, whole: bool = True) -> Record:
    """The dossier of a pair, with a number of queries that does not depend on the data.

    ``whole=False`` reads only what the timeline shows: no routes, no records of the
    sources (citations keep their source's id and quote) and no names of the people in
    the visits; five statements and, on PostgreSQL, a round trip fewer.
    """
    generic_plans(connection)  # lookups by the pair and by ids: the plan never changes
    return run(connection, _dossier(connection, a, b, whole))


def _dossier(connection: Connection, a: str, b: str, whole: bool) -> Reading[Record]:
    """In two rounds of queries (which PostgreSQL answers in two round trips): every
    section's records; the sources they cite and the names of the people in the visits."""
    x, y = sorted((a, b))
    index = country_index(connection.engine)
    pair = {"x": x, "y": y}
    chosen = {section: Chosen(choice, pair) for section, choice in SECTIONS.items()}

    def read(section: str) -> Reading[list[Record]]:
        return collection_reading(connection, section, chosen[section])

    sections = yield from together(
        read("relations"),
        read("figures"),
        organizations.presented_reading(connection, chosen["organizations"]),
        read("treaties"),
        read("visits"),
        read("trade"),
        routes.presented_reading(connection, chosen["routes"] if whole else []),
    )
    relations, figures, shared, treaty_list, visit_list, trade_list, route_list = sections
    for figure in figures:
        del figure["countries"], figure["route"]
    for org in shared:
        org["members"] = [ms for ms in org["members"] if ms["country"]["iso2"] in (x, y)]
    dossier: Record = {
        "countries": [index[a], index[b]],
        "diplomatic_relations": [
            {k: v for k, v in r.items() if k != "countries"} for r in relations
        ],
        "treaties": treaties.present(connection, treaty_list),
        "visits": visit_list,
        "trade": trade.present(connection, trade_list),
        "figures": figures,
        "shared_organizations": shared,
        "routes": route_list,
    }
    if not whole:
        dossier["visits"] = yield from visits.present_reading(connection, visit_list, named=False)
        return dossier
    cited = sorted(set(_cited(dossier)))
    dossier["visits"], dossier["sources"] = yield from together(
        visits.present_reading(connection, visit_list),
        collection_reading(connection, "sources", cited),
    )
    return dossier


# Where a dossier's citations are: a section, then the lists within its items that hold
# cited things. (tests/test_dossier.py checks this against a walk of the whole answer.)
CITING = (
    ("diplomatic_relations",),
    ("diplomatic_relations", "notes"),
    ("treaties",),
    ("visits",),
    ("trade",),
    ("figures",),
    ("shared_organizations", "members"),
    ("routes",),
    ("routes", "figures"),
)


def _cited(dossier: Record) -> Iterator[str]:
    """The source of every citation in the dossier's sections (15 µs for the benchmark pair,
    where a walk of the whole nested answer took 360 µs)."""
    for section, *within in CITING:
        items = dossier[section]
        for key in within:
            items = [child for item in items for child in item[key]]
        for item in items:
            for citation in item["sources"]:
                yield citation["source"]


def _amount(value: float | int, approximate: bool) -> str:
    return ("about " if approximate else "") + f"{value:,}"


def timeline(dossier: Record) -> list[Record]:
    """Every dated fact of the dossier, oldest first (see ``TIMELINE_ORDER``)."""
    entries: list[Record] = []

    def add(when: str | None, type_: str, id_: str, title: str, sources: list[Record]) -> None:
        if when:
            entries.append(
                {"date": when, "type": type_, "id": id_, "title": title, "sources": sources}
            )

    # In the pair's canonical order, not the order asked: {a}/{b} and {b}/{a} say the same.
    names = [c["name"] for c in sorted(dossier["countries"], key=lambda c: c["iso2"])]
    for r in dossier["diplomatic_relations"]:
        add(
            r["established"],
            "relation",
            r["id"],
            f"Diplomatic relations established between {names[0]} and {names[1]}",
            r["sources"],
        )
    for t in dossier["treaties"]:
        add(t["signed"], "treaty", t["id"], f"{t['title']} signed", t["sources"])
    for v in dossier["visits"]:
        kind = f"{v['kind'].capitalize()} visit" if v["kind"] else "Visit"
        place = f" ({v['place']})" if v["place"] else ""
        add(
            v["date"],
            "visit",
            v["id"],
            f"{kind} of {v['guest']['name']} to {v['host']['name']}{place}",
            v["sources"],
        )
    for tr in dossier["trade"]:
        who = (
            f"{tr['reporter']['name']} - {tr['partner']['name']}"
            if tr["flow"] == "turnover"
            else f"{tr['reporter']['name']} {tr['flow']}s with {tr['partner']['name']}"
        )
        add(
            str(tr["year"]),
            "trade",
            tr["id"],
            f"Trade {who}: {_amount(tr['value'], tr['approximate'])} {tr['currency']}",
            tr["sources"],
        )
    for f in dossier["figures"]:
        add(
            f["as_of"],
            "figure",
            f["id"],
            f"{f['metric'].replace('_', ' ').capitalize()}: "
            f"{_amount(f['value'], f['approximate'])} {f['unit']}",
            f["sources"],
        )
    for org in dossier["shared_organizations"]:
        for ms in org["members"]:
            add(
                ms["since"],
                "membership",
                ms["id"],
                f"{ms['country']['name']} member of {org['name']}",
                ms["sources"],
            )
    return sorted(entries, key=_timeline_key)


TYPE_ORDER = {"relation": 0, "treaty": 1, "membership": 2, "visit": 3, "trade": 4, "figure": 5}


def _timeline_key(entry: Record) -> tuple[date, int, int, str]:
    return (*_date_order(entry["date"]), TYPE_ORDER[entry["type"]], entry["id"])


@lru_cache(maxsize=4096)
def _date_order(text: str) -> tuple[date, int]:
    """:meth:`PartialDate.sort_key` of a date's text, parsed once: a timeline repeats few
    dates (a trade figure's is its year) over many entries."""
    return PartialDate.parse(text).sort_key()


TIMELINE_ORDER = (
    "Entries are ordered by the first day their date covers; on the same first day the "
    "coarser date comes first (`2005` before `2005-01` before `2005-01-01`, and `2005` before "
    "`2005-03-01` because it starts earlier); then by kind (relation, treaty, membership, "
    "visit, trade, figure) and id. Trade figures are dated by their year."
)


async def read_dossier(request: Request, pair: tuple[str, str], *, whole: bool = True) -> Record:
    return await reading(
        engine_of(request), lambda connection: build_dossier(connection, *pair, whole=whole)
    )


router = APIRouter(prefix="/v1/relations", tags=["relations"])


@router.get(
    "/{a}/{b}",
    operation_id="get_relation_dossier",
    summary="The dossier of a pair of countries",
    description="Everything that ties two countries: diplomatic relations (with the "
    "qualitative notes of the sources), treaties both are parties to, visits either way, "
    "trade figures, pair figures, shared organizations, routes through both, and every "
    "source cited. `{a}/{b}` and `{b}/{a}` hold the same facts. A pair with no facts is a "
    "200 with empty lists; the same country twice is a 422.",
    response_model=Dossier,
    responses=problem_responses(404, 422),
)
async def get_relation_dossier(request: Request, pair: PairPath) -> Response:
    return json_response(await read_dossier(request, pair))


@router.get(
    "/{a}/{b}/timeline",
    operation_id="get_relation_timeline",
    summary="Every dated fact of a pair, in order",
    description="One chronological list of the pair's dated facts: relations established, "
    "treaties signed, visits, memberships, trade years and figures with `as_of`. " + TIMELINE_ORDER,
    response_model=Page[TimelineEntry],
    responses={**CSV_RESPONSE, **problem_responses(404, 422)},
)
async def get_relation_timeline(
    request: Request,
    pair: PairPath,
    page: Annotated[PageParams, sorted_page(["date"], "date")],
) -> Response:
    if page.sort not in (None, "date", "-date"):
        raise InvalidInput(
            "The timeline sorts only by `date` (oldest first) or `-date` (newest first).",
            errors=[{"param": "sort", "message": f"unknown sort field {page.sort!r}"}],
        )
    entries = timeline(await read_dossier(request, pair, whole=False))
    if page.sort == "-date":
        entries.reverse()
    window = entries[page.offset : page.offset + page.limit]
    return page_response(request, page, window, len(entries))
