"""Pages of lists: parameters, the envelope, ``Link`` headers, sorting and CSV.

(No postponed annotations: :func:`sorted_page` builds its parameters at run time.)

Every list answers ``{"items", "total", "limit", "offset", "next"}``, or CSV when asked
with ``?format=csv`` or ``Accept: text/csv``. CSV flattens nested values the same way for
every list: a country becomes its alpha-3 code, ``sources`` the ``;``-joined source ids,
any other object its ``id``; a cell a spreadsheet would run as a formula is neutralised.
"""

import csv
import io
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Generic, Literal, TypeVar

import orjson
from fastapi import Depends, Query, Request
from pydantic import BaseModel, Field
from sqlalchemy import ColumnElement, Connection, Table, func, select
from starlette.responses import Response

from app.problems import InvalidInput

T = TypeVar("T")
MAX_LIMIT = 500
MAX_OFFSET = 10_000_000
CSV_MEDIA_TYPE = "text/csv; charset=utf-8"
JSON_MEDIA_TYPE = "application/json"
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


class Page(BaseModel, Generic[T]):
    """A page of a list; ``next`` is the URL of the following page, ``null`` on the last."""

    items: list[T]
    total: int = Field(description="How many items match, over all pages.")
    limit: int
    offset: int
    next: str | None = Field(description="URL of the next page, or null on the last page.")


@dataclass(frozen=True)
class PageParams:
    limit: int
    offset: int
    sort: str | None
    format: Literal["json", "csv"] | None


def _page_params(
    limit: Annotated[
        int, Query(ge=1, le=MAX_LIMIT, description=f"Items per page, 1 to {MAX_LIMIT}.")
    ] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET, description="How many items to skip.")] = 0,
    sort: Annotated[
        str | None,
        Query(
            max_length=200,
            description="Comma-separated fields; `-` before a field sorts descending "
            "(e.g. `-signed,title`). Ties are broken by `id`. See each list for its fields.",
        ),
    ] = None,
    format: Annotated[
        Literal["json", "csv"] | None,
        Query(description="`csv` answers text/csv (as does `Accept: text/csv`)."),
    ] = None,
) -> PageParams:
    return PageParams(limit=limit, offset=offset, sort=sort, format=format)


PageDep = Annotated[PageParams, Depends(_page_params)]


def sorted_page(fields: Iterable[str], default: str) -> Any:
    """Page parameters whose ``sort`` accepts exactly ``fields`` (documented in OpenAPI)."""
    names = sorted(fields)
    choice = "|".join(re.escape(n) for n in names)

    def dependency(
        limit: Annotated[
            int, Query(ge=1, le=MAX_LIMIT, description=f"Items per page, 1 to {MAX_LIMIT}.")
        ] = 50,
        offset: Annotated[
            int, Query(ge=0, le=MAX_OFFSET, description="How many items to skip.")
        ] = 0,
        sort: Annotated[
            str | None,
            Query(
                max_length=200,
                pattern=rf"^[-+]?({choice})(,[-+]?({choice}))*$",
                description="Comma-separated fields, `-` first for descending; ties are "
                f"broken by `id`. Fields: {', '.join(names)}. Default: `{default}`.",
            ),
        ] = None,
        format: Annotated[
            Literal["json", "csv"] | None,
            Query(description="`csv` answers text/csv (as does `Accept: text/csv`)."),
        ] = None,
    ) -> PageParams:
        return PageParams(limit=limit, offset=offset, sort=sort, format=format)

    return Depends(dependency)


def order_by(
    sort: str | None,
    fields: Mapping[str, ColumnElement[Any]],
    default: str,
    tie_break: ColumnElement[Any],
) -> list[ColumnElement[Any]]:
    """ORDER BY clauses for a ``sort`` parameter; unknown fields are a 422 problem."""
    clauses: list[ColumnElement[Any]] = []
    for raw in (sort or default).split(","):
        name = raw.strip()
        descending = name.startswith("-")
        name = name.lstrip("-+")
        if name not in fields:
            allowed = ", ".join(sorted(fields))
            raise InvalidInput(
                f"Cannot sort by {name!r}. Sortable fields: {allowed}.",
                errors=[{"param": "sort", "message": f"unknown sort field {name!r}"}],
            )
        column = fields[name]
        clauses.append((column.desc() if descending else column.asc()).nulls_last())
    clauses.append(tie_break.asc())
    return clauses


def wants_csv(request: Request, params: PageParams) -> bool:
    if params.format is not None:
        return params.format == "csv"
    accept = request.headers.get("accept", "")
    return "text/csv" in accept and "application/json" not in accept.split("text/csv")[0]


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, dict):
        key = "iso3" if "iso3" in value else "source" if "source" in value else "id"
        return _cell(value.get(key, ""))
    if isinstance(value, list):
        return ";".join(_cell(v) for v in value)
    text = str(value)
    return "'" + text if text.startswith(FORMULA_PREFIXES) else text


def flatten(item: Mapping[str, Any]) -> dict[str, str]:
    """One CSV row: quantities spread into ``<field>_value`` etc., the rest by :func:`_cell`."""
    row: dict[str, str] = {}
    for key, value in item.items():
        if isinstance(value, dict) and "value" in value and "id" not in value:
            for sub, sub_value in value.items():
                row[f"{key}_{sub}"] = _cell(sub_value)
        else:
            row[key] = _cell(value)
    return row


def to_csv(items: Sequence[Mapping[str, Any]], columns: Sequence[str] | None = None) -> bytes:
    rows = [flatten(item) for item in items]
    header = list(columns or (rows[0].keys() if rows else []))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=header, extrasaction="ignore", lineterminator="\r\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue().encode()


def page_response(
    request: Request,
    params: PageParams,
    items: Sequence[Mapping[str, Any]],
    total: int,
    *,
    columns: Sequence[str] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> Response:
    """The page as JSON (or CSV), with ``Link`` headers to the next and previous pages."""
    links = []
    next_url = None
    if params.offset + len(items) < total:
        next_url = str(request.url.include_query_params(offset=params.offset + params.limit))
        links.append(f'<{next_url}>; rel="next"')
    if params.offset > 0:
        prev = str(request.url.include_query_params(offset=max(0, params.offset - params.limit)))
        links.append(f'<{prev}>; rel="prev"')
    headers = {"Link": ", ".join(links)} if links else {}
    if wants_csv(request, params):
        return Response(to_csv(items, columns), media_type=CSV_MEDIA_TYPE, headers=headers)
    body: dict[str, Any] = dict(extra or {})
    body.update(items=items, total=total, limit=params.limit, offset=params.offset, next=next_url)
    return Response(orjson.dumps(body), media_type=JSON_MEDIA_TYPE, headers=headers)


def json_response(data: Any, status_code: int = 200) -> Response:
    return Response(orjson.dumps(data), status_code=status_code, media_type=JSON_MEDIA_TYPE)


CSV_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/csv": {"schema": {"type": "string"}}}}
}

Flattener = Callable[[Mapping[str, Any]], dict[str, str]]


def select_page(
    connection: Connection,
    main: Table,
    where: Sequence[ColumnElement[bool]],
    order: Sequence[ColumnElement[Any]],
    params: PageParams,
) -> tuple[list[str], int]:
    """The ids of one page of ``main`` and the total count, in two indexed queries."""
    total = connection.execute(select(func.count()).select_from(main).where(*where)).scalar_one()
    query = select(main.c.id).where(*where).order_by(*order)
    ids = connection.scalars(query.limit(params.limit).offset(params.offset))
    return list(ids), int(total)
