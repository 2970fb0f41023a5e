"""Countries: ISO code resolution (any form in, all three out) and ``/v1/countries``.

Countries are reference data loaded by the first migration, so the table is read once per
process and kept in memory: turning codes into country objects never costs a query.
"""

from __future__ import annotations

import gettext
import re
from collections.abc import Iterable, Mapping
from functools import lru_cache
from pathlib import Path as FilePath
from typing import Annotated, Any

import pycountry
from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import BaseModel, Field
from sqlalchemy import Connection, Engine, and_, func, literal, or_, select, union_all
from starlette.responses import Response

from app import models as m
from app.db import read_connection, reading
from app.models import table
from app.pagination import (
    CSV_RESPONSE,
    Page,
    PageParams,
    contains_text,
    json_response,
    order_by,
    page_response,
    sorted_page,
    text_pattern,
)
from app.problems import InvalidInput, UnknownCountry, problem_responses
from app.values import lookup_country

COUNTRY = table(m.Country)
Country = dict[str, Any]


class CountryPublic(BaseModel):
    """A country as every answer shows it."""

    iso2: str = Field(examples=["KZ"])
    iso3: str = Field(examples=["KAZ"])
    numeric: str = Field(examples=["398"], description="ISO 3166-1 numeric, 3 digits.")
    name: str = Field(examples=["Kazakhstan"])
    official_name: str | None = Field(default=None, examples=["Republic of Kazakhstan"])
    local_name: str | None = Field(
        default=None, description="The name in the language asked with `lang`.", examples=[None]
    )


class PartnerCounts(BaseModel):
    relations: int = 0
    treaties: int = 0
    visits: int = 0
    trade: int = 0
    figures: int = 0
    routes: int = 0
    organizations: int = 0
    total: int = 0


class Partner(BaseModel):
    """A country that shares facts with the one asked about, with how many of each kind."""

    country: CountryPublic
    counts: PartnerCounts


@lru_cache(maxsize=8)
def country_index(engine: Engine) -> dict[str, Country]:
    """``{iso2: country object}`` for every country, read once per engine."""
    with read_connection(engine) as connection:
        rows = connection.execute(select(COUNTRY).order_by(COUNTRY.c.iso2)).mappings()
        return {
            row["iso2"]: {
                "iso2": row["iso2"],
                "iso3": row["iso3"],
                "numeric": row["numeric"],
                "name": row["name"],
                "official_name": row["official_name"],
            }
            for row in rows
        }


def resolve(engine: Engine, code: str) -> str:
    """The alpha-2 code of a country given in any ISO form; unknown codes are a 404."""
    found = lookup_country(code)
    if found is None or found.alpha_2 not in country_index(engine):
        raise UnknownCountry(code)
    return str(found.alpha_2)


@lru_cache(maxsize=64)
def _translation(lang: str) -> gettext.NullTranslations | None:
    try:
        return gettext.translation("iso3166-1", pycountry.LOCALES_DIR, languages=[lang])
    except OSError:
        return None


def localize(items: Iterable[Country], lang: str | None) -> list[Country]:
    """Country objects with ``local_name`` in ``lang`` (a locale pycountry ships)."""
    if lang is None:
        return list(items)
    translation = _translation(lang)
    if translation is None:
        raise InvalidInput(
            f"No country names in language {lang!r}. Use a locale such as de, fr, ru, kk or az.",
            errors=[{"param": "lang", "message": f"unknown locale {lang!r}"}],
        )
    return [{**c, "local_name": translation.gettext(c["name"])} for c in items]


def engine_of(request: Request) -> Engine:
    """The app's engine. Read handlers take it from the request rather than as a dependency
    (:data:`EngineDep`): FastAPI's resolution of each dependency costs every request about as
    much as an indexed query."""
    return request.app.state.engine  # type: ignore[no-any-return]


async def _engine(request: Request) -> Engine:
    return engine_of(request)


EngineDep = Annotated[Engine, Depends(_engine)]


async def _code_path(
    request: Request,
    code: Annotated[
        str, Path(max_length=16, description="ISO 3166-1 alpha-2, alpha-3 or numeric.")
    ],
) -> str:
    return resolve(engine_of(request), code)


CountryPath = Annotated[str, Depends(_code_path)]
"""A ``{code}`` path parameter resolved to alpha-2, or a 404 problem."""

LOCALES = sorted(
    p.parent.parent.name for p in FilePath(pycountry.LOCALES_DIR).glob("*/LC_MESSAGES/iso3166-1.mo")
)
LangQuery = Annotated[
    str | None,
    Query(
        max_length=20,
        pattern="^(" + "|".join(re.escape(locale) for locale in LOCALES) + ")$",
        description="Add `local_name` in this language (any locale pycountry ships: de, fr, ru…).",
    ),
]

router = APIRouter(prefix="/v1/countries", tags=["countries"])

SORT_FIELDS = {
    "name": COUNTRY.c.name,
    "iso2": COUNTRY.c.iso2,
    "iso3": COUNTRY.c.iso3,
    "numeric": COUNTRY.c.numeric,
}


NAMED = contains_text("q", COUNTRY.c.name, COUNTRY.c.official_name)


@router.get(
    "",
    operation_id="list_countries",
    summary="List countries",
    description="All 249 ISO 3166-1 countries. `q` matches names (any part, any case) and "
    "codes in any ISO form. Sortable by `name`, `iso2`, `iso3`, `numeric`.",
    response_model=Page[CountryPublic],
    responses={**CSV_RESPONSE, **problem_responses(422)},
)
async def list_countries(
    request: Request,
    page: Annotated[PageParams, sorted_page(SORT_FIELDS, "name")],
    q: Annotated[str | None, Query(max_length=200, description="Name or code.")] = None,
    lang: LangQuery = None,
) -> Response:
    where = []
    if q:
        clauses = [NAMED]
        code = lookup_country(q.strip())
        if code is not None:
            clauses.append(COUNTRY.c.iso2 == code.alpha_2)
        where.append(or_(*clauses))
    order = order_by(page.sort, SORT_FIELDS, "name", COUNTRY.c.iso2)
    values = {"q": text_pattern(q)} if q else {}

    def read_codes(connection: Connection) -> tuple[int, list[str]]:
        total = connection.execute(
            select(func.count()).select_from(COUNTRY).where(*where), values
        ).scalar_one()
        codes = connection.scalars(
            select(COUNTRY.c.iso2)
            .where(*where)
            .order_by(*order)
            .limit(page.limit)
            .offset(page.offset),
            values,
        ).all()
        return total, list(codes)

    engine = engine_of(request)
    total, codes = await reading(engine, read_codes)
    items = localize((country_index(engine)[c] for c in codes), lang)
    return page_response(request, page, items, total)


@router.get(
    "/{code}",
    operation_id="get_country",
    summary="Get one country",
    description="A country by any ISO 3166-1 code, in any case: `KZ`, `kaz`, `398`.",
    response_model=CountryPublic,
    responses=problem_responses(404, 422),
)
async def get_country(request: Request, code: CountryPath, lang: LangQuery = None) -> Response:
    return json_response(localize([country_index(engine_of(request))[code]], lang)[0])


def _partner_facts(code: str) -> Any:
    """``(partner, kind, fact id)`` for every fact the country shares with another."""
    rel = table(m.DiplomaticRelation)
    fig = table(m.Figure)
    visit = table(m.Visit)
    trade = table(m.TradeFigure)
    tp1, tp2 = table(m.TreatyParty).alias("p1"), table(m.TreatyParty).alias("p2")
    rc1, rc2 = table(m.RouteCountry).alias("r1"), table(m.RouteCountry).alias("r2")
    ms1, ms2 = table(m.Membership).alias("m1"), table(m.Membership).alias("m2")

    def pair(tbl: Any, a: str, b: str, kind: str) -> list[Any]:
        return [
            select(
                tbl.c[b].label("partner"), literal(kind).label("kind"), tbl.c.id.label("fact")
            ).where(tbl.c[a] == code),
            select(
                tbl.c[a].label("partner"), literal(kind).label("kind"), tbl.c.id.label("fact")
            ).where(tbl.c[b] == code),
        ]

    def shared(t1: Any, t2: Any, key: str, kind: str) -> Any:
        return (
            select(
                t2.c.country.label("partner"), literal(kind).label("kind"), t1.c[key].label("fact")
            )
            .select_from(t1.join(t2, and_(t1.c[key] == t2.c[key], t2.c.country != t1.c.country)))
            .where(t1.c.country == code)
        )

    parts = [
        *pair(rel, "country_a", "country_b", "relations"),
        *pair(fig.alias("f"), "country_a", "country_b", "figures"),
        *pair(visit, "guest", "host", "visits"),
        *pair(trade, "reporter", "partner", "trade"),
        shared(tp1, tp2, "treaty_id", "treaties"),
        shared(rc1, rc2, "route_id", "routes"),
        shared(ms1, ms2, "organization_id", "organizations"),
    ]
    facts = union_all(*parts).subquery()
    return (
        select(facts.c.partner, facts.c.kind, func.count(func.distinct(facts.c.fact)))
        .where(facts.c.partner.is_not(None))
        .group_by(facts.c.partner, facts.c.kind)
    )


PARTNER_SORT = [*PartnerCounts.model_fields, "name"]


@router.get(
    "/{code}/partners",
    operation_id="list_country_partners",
    summary="Countries that share facts with this one",
    description="Every country with at least one fact in common with this one (a relation, "
    "treaty, visit, trade figure, pair figure, route or organization), with the number of "
    "facts of each kind. Ordered by total, then name.",
    response_model=Page[Partner],
    responses={**CSV_RESPONSE, **problem_responses(404, 422)},
)
def list_country_partners(
    request: Request,
    engine: EngineDep,
    code: CountryPath,
    page: Annotated[PageParams, sorted_page(PARTNER_SORT, "-total")],
    lang: LangQuery = None,
) -> Response:
    counts: dict[str, dict[str, int]] = {}
    with read_connection(engine) as connection:
        for partner, kind, n in connection.execute(_partner_facts(code)):
            counts.setdefault(partner, dict.fromkeys(PartnerCounts.model_fields, 0))[kind] = n
    for c in counts.values():
        c["total"] = sum(v for k, v in c.items() if k != "total")
    index = country_index(engine)
    by_name = sorted(counts, key=lambda p: index[p]["name"])
    ranked = by_name
    for field in reversed((page.sort or "-total").split(",")):
        key = field.lstrip("+-")
        ranked = sorted(
            ranked,
            key=(lambda p, k=key: index[p]["name"] if k == "name" else counts[p][k]),  # type: ignore[misc]
            reverse=field.startswith("-"),
        )
    window = ranked[page.offset : page.offset + page.limit]
    localized = localize((index[p] for p in window), lang)
    items = [{"country": c, "counts": counts[c["iso2"]]} for c in localized]
    return page_response(request, page, items, len(ranked))


def with_countries(
    engine: Engine, record: Mapping[str, Any], fields: Iterable[str]
) -> dict[str, Any]:
    """A record with the codes in ``fields`` (a code or a list of codes) made country objects."""
    index = country_index(engine)
    out = dict(record)
    for name in fields:
        value = out.get(name)
        if isinstance(value, list):
            out[name] = [index[c] for c in value]
        elif value is not None:
            out[name] = index[value]
    return out
