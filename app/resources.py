"""The one list/get path every resource uses: filter, sort, page, read, present.

No ``from __future__ import annotations`` here: the query-parameter factories build their
annotations at run time, and FastAPI must see them evaluated.

Read handlers are ``async def``: their queries are indexed and take well under a
millisecond, so running them on the event loop saves a hop through the thread pool for the
handler and each dependency (the hop cost more than the query). Reads that can scan (search,
export, a country's partners) and every write stay ``def``, in the thread pool.

A resource module supplies its filters (SQL conditions on its main table), its sortable
fields and a ``present`` function that turns dataset records into public objects (codes
into country objects, ids into named references); everything else is done here once.
"""

from collections.abc import Awaitable, Callable, Mapping
from datetime import date
from functools import cache
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import BaseModel
from sqlalchemy import (
    Column,
    ColumnElement,
    Connection,
    Date,
    Engine,
    Select,
    String,
    bindparam,
    or_,
    select,
)
from starlette.responses import Response

from app.countries import engine_of, resolve
from app.db import any_of, reading
from app.pagination import (
    DateSort,
    PageParams,
    Where,
    either_way,
    json_response,
    page_response,
    select_page,
    sort_spec,
)
from app.problems import InvalidInput, NotFound, problem_responses
from app.readers import Reading, read_collection, run
from app.records import ENTITY_TYPE, MAIN_TABLE
from app.values import PartialDate

Record = dict[str, Any]
Present = Callable[[Connection, list[Record]], list[Record]]


async def list_response(
    request: Request,
    params: PageParams,
    collection: str,
    where: Where,
    sort_fields: Mapping[str, ColumnElement[Any] | DateSort],
    default_sort: str,
    present: Present,
) -> Response:
    """A page of one collection: ids by SQL (filtered, sorted), then records in bulk.

    The engine is the app's (:func:`app.countries.engine_of`)."""
    main = MAIN_TABLE[collection]
    spec = sort_spec(params.sort, sort_fields, default_sort, main.c.id)

    def read_page(connection: Connection) -> tuple[list[Record], int, str | None]:
        ids, total, next_cursor = select_page(connection, main, where, spec, params)
        return present(connection, read_collection(connection, collection, ids)), total, next_cursor

    items, total, next_cursor = await reading(engine_of(request), read_page)
    return page_response(request, params, items, total, next_cursor=next_cursor)


async def get_response(engine: Engine, collection: str, id_: str, present: Present) -> Response:
    """One entity by id, or a 404 problem naming what was asked for."""

    def read_one(connection: Connection) -> list[Record]:
        records = read_collection(connection, collection, [id_])
        return present(connection, records) if records else []

    found = await reading(engine, read_one)
    if not found:
        raise NotFound(f"There is no {ENTITY_TYPE[collection]} with id {id_!r}.")
    return json_response(found[0])


def add_get_route(
    router: APIRouter,
    collection: str,
    operation_id: str,
    summary: str,
    response_model: type[BaseModel],
    present: Present,
) -> None:
    """``GET {prefix}/{id}``: one entity of ``collection``, or a 404 problem."""

    async def handler(
        request: Request,
        id: Annotated[str, Path(max_length=120, description="The entity's id (a slug).")],
    ) -> Response:
        return await get_response(engine_of(request), collection, id, present)

    handler.__name__ = operation_id
    router.get(
        "/{id}",
        operation_id=operation_id,
        summary=summary,
        response_model=response_model,
        responses=problem_responses(404, 422),
    )(handler)


class Pair:
    """The ``country`` and ``partner`` filters of facts between two country columns, built
    once: with both, the pair (either way round, unless ``pair`` gives the condition); with
    one, that country on either side."""

    def __init__(self, first: Any, second: Any, pair: ColumnElement[bool] | None = None) -> None:
        country, partner = bindparam("country", type_=String), bindparam("partner", type_=String)
        self.pair = either_way(first, second, country, partner) if pair is None else pair
        self.either_side = or_(first == country, second == country)

    def narrow(self, where: Where, country: str | None, partner: str | None) -> None:
        if country and partner:
            where.add(self.pair, country=country, partner=partner)
        elif country or partner:
            where.add(self.either_side, country=country or partner)


class Interval:
    """The days a fact covers (two date columns), for filters by a range of partial dates:
    the conditions are built once, with parameters ``since`` and ``until``."""

    def __init__(
        self, start: Column[date] | ColumnElement[date], end: Column[date] | ColumnElement[date]
    ) -> None:
        self.since = end >= bindparam("since", type_=Date)
        self.until = start <= bindparam("until", type_=Date)

    def overlapping(
        self, where: Where, first: PartialDate | None, last: PartialDate | None
    ) -> None:
        """Keep the facts whose interval overlaps ``[first, last]`` (each end partial)."""
        if first is not None:
            where.add(self.since, since=first.start)
        if last is not None:
            where.add(self.until, until=last.end)


@cache
def _select_names(column_id: Any, column_name: Any, dialect: str) -> Select[Any]:
    return select(column_id, column_name).where(any_of(column_id, "ids", dialect))


def names(
    connection: Connection, column_id: Any, column_name: Any, ids: set[str]
) -> dict[str, str]:
    """``{id: name}`` for a set of ids, in one query (built once per pair of columns)."""
    return run(connection, names_reading(connection, column_id, column_name, ids))


def names_reading(
    connection: Connection, column_id: Any, column_name: Any, ids: set[str]
) -> Reading[dict[str, str]]:
    if not ids:
        return {}
    query = _select_names(column_id, column_name, connection.dialect.name)
    (rows,) = yield [(query, {"ids": sorted(ids)})]
    return {row[0]: row[1] for row in rows}


def _country_query(name: str, description: str) -> Callable[..., Awaitable[str | None]]:
    async def dependency(
        request: Request,
        code: Annotated[
            str | None, Query(alias=name, max_length=16, description=description)
        ] = None,
    ) -> str | None:
        return resolve(engine_of(request), code) if code is not None else None

    return dependency


CountryQuery = Annotated[
    str | None,
    Depends(_country_query("country", "Facts involving this country (any ISO code form).")),
]
PartnerQuery = Annotated[
    str | None,
    Depends(
        _country_query(
            "partner",
            "With `country`: facts between the two, either way round where the fact is symmetric.",
        )
    ),
]
HostQuery = Annotated[str | None, Depends(_country_query("host", "Host country of the visit."))]
GuestQuery = Annotated[str | None, Depends(_country_query("guest", "Guest country of the visit."))]

DATE_RULE = (
    "Dates are partial (`YYYY`, `YYYY-MM` or `YYYY-MM-DD`) and stand for every day they cover; "
    "a range matches a fact whose covered interval overlaps it, so `from=2022-08` matches "
    "`2022-08-24` and `2022`."
)


_YEAR = r"([1-9][0-9]{3}|0[1-9][0-9]{2}|00[1-9][0-9]|000[1-9])"
# A calendar date, or a year or year-month: exactly what PartialDate accepts.
QUERY_DATE_FORMS = [
    {"type": "string", "format": "date"},
    {"type": "string", "pattern": rf"^{_YEAR}(-(0[1-9]|1[0-2]))?$"},
]


def _date_query(name: str, description: str) -> Callable[..., Awaitable[PartialDate | None]]:
    async def dependency(
        value: Annotated[
            str | None,
            Query(
                alias=name,
                max_length=10,
                description=f"{description} {DATE_RULE}",
                json_schema_extra={"anyOf": QUERY_DATE_FORMS},
                examples=["2022-08"],
            ),
        ] = None,
    ) -> PartialDate | None:
        if value is None:
            return None
        try:
            return PartialDate.parse(value)
        except ValueError as exc:
            raise InvalidInput(
                f"{name}: {exc}. {DATE_RULE}", errors=[{"param": name, "message": str(exc)}]
            ) from None

    return dependency


def date_query(name: str, description: str) -> Any:
    """A partial-date query parameter, parsed, or a 422 problem naming it."""
    return Depends(_date_query(name, description))


TextQuery = Annotated[
    str | None, Query(max_length=200, description="Words in the title or description (any case).")
]
