"""Pages of lists: parameters, the envelope, ``Link`` headers, sorting and CSV.

(No postponed annotations: :func:`sorted_page` builds its parameters at run time.)

Every list answers ``{"items", "total", "limit", "offset", "next"}``, or CSV when asked
with ``?format=csv`` or ``Accept: text/csv``. CSV flattens nested values the same way for
every list: a country becomes its alpha-3 code, ``sources`` the ``;``-joined source ids
(each once), any other object its ``id``; a top-level object without an id (counts, a
quantity) is spread into ``<field>_<part>`` columns, and an empty page still has its header
row; a cell a spreadsheet would run as a formula is neutralised.
"""

import base64
import csv
import io
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from types import UnionType
from typing import Annotated, Any, Generic, Literal, TypeVar, Union, get_args, get_origin

import orjson
from fastapi import Depends, Query, Request
from pydantic import BaseModel, Field
from sqlalchemy import (
    BigInteger,
    BindParameter,
    Column,
    ColumnElement,
    Connection,
    Float,
    Integer,
    MetaData,
    Select,
    String,
    Table,
    and_,
    bindparam,
    func,
    or_,
    select,
)
from sqlalchemy.types import TypeDecorator, TypeEngine
from starlette.responses import Response

from app.db import fetch, fetch_all
from app.problems import InvalidInput

T = TypeVar("T")
MAX_LIMIT = 500
MAX_OFFSET = 10_000_000
MAX_CURSOR = 600
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
    cursor: str | None = None


CURSOR_DESCRIPTION = (
    "Where the page starts, as set in `next` links (opaque; follow the link rather than build "
    "it). With a cursor a page is read from an index position instead of skipping `offset` "
    "rows, so deep pages cost what the first one does; `offset` must be the one in the link."
)


Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description=f"Items per page, 1 to {MAX_LIMIT}.")]
Offset = Annotated[int, Query(ge=0, le=MAX_OFFSET, description="How many items to skip.")]
Format = Annotated[
    Literal["json", "csv"] | None,
    Query(description="`csv` answers text/csv (as does `Accept: text/csv`)."),
]
Cursor = Annotated[str | None, Query(max_length=MAX_CURSOR, description=CURSOR_DESCRIPTION)]


def sorted_page(fields: Iterable[str], default: str, *, keyset: bool = False) -> Any:
    """Page parameters whose ``sort`` accepts exactly ``fields`` (documented in OpenAPI);
    with ``keyset``, also the ``cursor`` that ``next`` links carry."""
    names = sorted(fields)
    choice = "|".join(re.escape(n) for n in names)
    Sort = Annotated[
        str | None,
        Query(
            max_length=200,
            pattern=rf"^[-+]?({choice})(,[-+]?({choice}))*$",
            description="Comma-separated fields, `-` first for descending; ties are "
            f"broken by `id`. Fields: {', '.join(names)}. Default: `{default}`.",
        ),
    ]

    # One dependency either way: FastAPI's resolution of each costs every request.
    async def offset_page(
        limit: Limit = 50, offset: Offset = 0, sort: Sort = None, format: Format = None
    ) -> PageParams:
        return PageParams(limit=limit, offset=offset, sort=sort, format=format)

    async def keyset_page(
        limit: Limit = 50,
        offset: Offset = 0,
        sort: Sort = None,
        format: Format = None,
        cursor: Cursor = None,
    ) -> PageParams:
        return PageParams(limit=limit, offset=offset, sort=sort, format=format, cursor=cursor)

    return Depends(keyset_page if keyset else offset_page)


async def _fixed_order_page(
    limit: Limit = 50, offset: Offset = 0, format: Format = None, cursor: Cursor = None
) -> PageParams:
    return PageParams(limit=limit, offset=offset, sort=None, format=format, cursor=cursor)


FixedOrderPage = Annotated[PageParams, Depends(_fixed_order_page)]
"""Page parameters of a list in one order, which ``next`` links page through by cursor."""


@dataclass(frozen=True)
class DateSort:
    """A partial date stored as the interval it covers, sorted as the timeline sorts it.

    Ascending: by first day, and on the same first day the coarser date first (``2005``
    before ``2005-01`` before ``2005-01-01``); descending is the exact reverse.
    """

    start: ColumnElement[Any]
    end: ColumnElement[Any]


SortSpec = list[tuple[ColumnElement[Any] | DateSort, bool]]
"""The fields of an order, each with whether it is descending; the tie-break comes last."""


def sort_spec(
    sort: str | None,
    fields: Mapping[str, ColumnElement[Any] | DateSort],
    default: str,
    tie_break: ColumnElement[Any],
) -> SortSpec:
    """The order a ``sort`` parameter asks for; unknown fields are a 422 problem."""
    spec: SortSpec = []
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
        spec.append((fields[name], descending))
    spec.append((tie_break, False))
    return spec


def order_clauses(spec: SortSpec) -> list[ColumnElement[Any]]:
    clauses: list[ColumnElement[Any]] = []
    for column, descending in spec:
        if isinstance(column, DateSort):
            first, last = (
                (column.start.desc(), column.end.asc())
                if descending
                else (column.start.asc(), column.end.desc())
            )
            clauses += [first.nulls_last(), last.nulls_last()]
        else:
            clause = column.desc() if descending else column.asc()
            # NULLS LAST only where a NULL can be: on a NOT NULL column it would keep the
            # database from reading the order off an index.
            clauses.append(clause.nulls_last() if getattr(column, "nullable", True) else clause)
    return clauses


def order_by(
    sort: str | None,
    fields: Mapping[str, ColumnElement[Any] | DateSort],
    default: str,
    tie_break: ColumnElement[Any],
) -> list[ColumnElement[Any]]:
    """ORDER BY clauses for a ``sort`` parameter; unknown fields are a 422 problem."""
    return order_clauses(sort_spec(sort, fields, default, tie_break))


Code = str | BindParameter[str]
"""A country code, or the parameter of a statement built once and run with many codes."""


def either_way(first: Any, second: Any, x: Code, y: Code) -> ColumnElement[bool]:
    """The pair ``(x, y)`` in two columns, whichever way round it is stored."""
    return or_(and_(first == x, second == y), and_(first == y, second == x))


def contains_text(name: str, *columns: Any) -> ColumnElement[bool]:
    """Any of ``columns`` contains the text given as parameter ``name`` (its value made by
    :func:`text_pattern`), ignoring case (Unicode-aware on both engines)."""
    pattern = bindparam(name, type_=String)
    return or_(*(func.lower(func.coalesce(c, "")).like(pattern, escape="/") for c in columns))


def text_pattern(q: str) -> str:
    """The LIKE pattern of :func:`contains_text` for ``q``: its wildcards are escaped."""
    needle = q.strip().lower().replace("/", "//").replace("%", "/%").replace("_", "/_")
    return f"%{needle}%"


def accepts_csv(accept: str) -> bool:
    """Whether an ``Accept`` header puts CSV before JSON: what a list without ``format``
    answers in (and so what the response cache keys a list's answers by)."""
    return "text/csv" in accept and "application/json" not in accept.split("text/csv")[0]


def wants_csv(request: Request, params: PageParams) -> bool:
    if params.format is not None:
        return params.format == "csv"
    return accepts_csv(request.headers.get("accept", ""))


IDENTITY_KEYS = ("iso3", "source", "id")
"""What a nested object is written as: a country's alpha-3, a citation's source, an id."""


def _identity(value: Mapping[str, Any]) -> str | None:
    return next((key for key in IDENTITY_KEYS if key in value), None)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, dict):
        key = _identity(value)
        if key is None:  # e.g. a participant {person, role}: its parts, ``:``-joined
            return ":".join(_cell(v) for v in value.values() if v is not None)
        return _cell(value[key])
    if isinstance(value, list):
        cells = [_cell(v) for v in value]
        if value and all(isinstance(v, dict) and _identity(v) == "source" for v in value):
            cells = list(dict.fromkeys(cells))  # two quotes of one source: the source once
        return ";".join(cells)
    text = str(value)
    return "'" + text if text.startswith(FORMULA_PREFIXES) else text


def flatten(item: Mapping[str, Any]) -> dict[str, str]:
    """One CSV row: objects without an identity (quantities, counts) spread into
    ``<field>_<part>`` columns, the rest by :func:`_cell`."""
    row: dict[str, str] = {}
    for key, value in item.items():
        if isinstance(value, dict) and _identity(value) is None:
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


def _model_columns(model: Any) -> list[str]:
    """The CSV header :func:`flatten` gives an item of ``model`` (a Pydantic model)."""
    columns: list[str] = []
    for name, info in getattr(model, "model_fields", {}).items():
        annotation = info.annotation
        options = get_args(annotation) if get_origin(annotation) in (Union, UnionType) else ()
        nested = [t for t in (annotation, *options) if _is_model(t)]  # a model, or one | None
        if nested and _identity(nested[0].model_fields) is None:
            columns += [f"{name}_{part}" for part in nested[0].model_fields]
        else:
            columns.append(name)
    return columns


def _is_model(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def _route_columns(request: Request) -> list[str] | None:
    """The header of an empty page: from the item model the route documents."""
    page_model = getattr(request.scope.get("route"), "response_model", None)
    items = getattr(page_model, "model_fields", {}).get("items")
    if items is None:
        return None
    item_types = [t for t in get_args(items.annotation) if _is_model(t)]
    return _model_columns(item_types[0]) if item_types else None


def page_response(
    request: Request,
    params: PageParams,
    items: Sequence[Mapping[str, Any]],
    total: int,
    *,
    columns: Sequence[str] | None = None,
    extra: Mapping[str, Any] | None = None,
    next_cursor: str | None = None,
) -> Response:
    """The page as JSON (or CSV), with ``Link`` headers to the next and previous pages
    (the next one carrying ``next_cursor`` where the list gives one)."""
    links = []
    next_url = None
    url = request.url.remove_query_params("cursor")
    if params.offset + len(items) < total:
        after = {"cursor": next_cursor} if next_cursor else {}
        next_url = str(url.include_query_params(offset=params.offset + params.limit, **after))
        links.append(f'<{next_url}>; rel="next"')
    if params.offset > 0:
        prev = str(url.include_query_params(offset=max(0, params.offset - params.limit)))
        links.append(f'<{prev}>; rel="prev"')
    # The same URL answers CSV or JSON by Accept: a shared cache must keep them apart.
    headers = {"Vary": "Accept"}
    if links:
        headers["Link"] = ", ".join(links)
    if wants_csv(request, params):
        if columns is None and not items:
            columns = _route_columns(request)
        return Response(to_csv(items, columns), media_type=CSV_MEDIA_TYPE, headers=headers)
    body: dict[str, Any] = dict(extra or {})
    body.update(items=items, total=total, limit=params.limit, offset=params.offset, next=next_url)
    return Response(orjson.dumps(body), media_type=JSON_MEDIA_TYPE, headers=headers)


def json_response(data: Any, status_code: int = 200) -> Response:
    return Response(orjson.dumps(data), status_code=status_code, media_type=JSON_MEDIA_TYPE)


CSV_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/csv": {"schema": {"type": "string"}}}}
}


@dataclass
class Where:
    """A list's filters: conditions each resource builds once, with named parameters, and
    this request's values for them. A page's statements are then compiled once per set of
    filters and order, not built again for every request (which cost more than running
    them)."""

    clauses: list[ColumnElement[bool]] = field(default_factory=list)
    params: dict[str, Any] = field(default_factory=dict)

    def add(self, clause: ColumnElement[bool], **params: Any) -> None:
        self.clauses.append(clause)
        self.params.update(params)


ROW_COUNT = Table(
    "row_count",
    MetaData(),
    Column("table_name", String, primary_key=True),
    Column("total", BigInteger, nullable=False),
)
"""PostgreSQL only: the rows of each listed table, kept by triggers (migration df077c91318b)."""


@dataclass(frozen=True)
class _PageStatements:
    count: Select[Any]
    page: Select[Any]
    keys: list[tuple[ColumnElement[Any], bool]] | None


@lru_cache(maxsize=256)
def _page_statements(
    main: Table,
    clauses: tuple[ColumnElement[bool], ...],
    spec: tuple[tuple[ColumnElement[Any] | DateSort, bool], ...],
    after_cursor: bool,
    dialect: str,
) -> _PageStatements:
    """The count and page statements of one set of filters and one order; the page starts
    at parameter ``page_offset`` or, after a cursor, past ``cursor_0``, ``cursor_1``, …"""
    if clauses or dialect != "postgresql":
        count = select(func.count().label("total")).select_from(main).where(*clauses)
    else:  # PostgreSQL counts by reading every row; its triggers keep the count instead
        count = select(ROW_COUNT.c.total).where(ROW_COUNT.c.table_name == main.name)
    keys = _keyset(list(spec))
    # With keyset, the sort fields are selected (the cursor holds them); the last is the id.
    query = select(*(column for column, _ in keys) if keys else [main.c.id]).where(*clauses)
    if after_cursor and keys is not None:
        bounds = [bindparam(f"cursor_{i}", type_=column.type) for i, (column, _) in enumerate(keys)]
        query = query.where(_after(keys, bounds))
    else:
        query = query.offset(bindparam("page_offset", type_=Integer))
    query = query.order_by(*order_clauses(list(spec))).limit(bindparam("page_limit", type_=Integer))
    return _PageStatements(count, query, keys)


def select_page(
    connection: Connection,
    main: Table,
    where: Where,
    spec: SortSpec,
    params: PageParams,
) -> tuple[list[str], int, str | None]:
    """The ids of one page of ``main``, the total count and the cursor of the next page.

    Where every sort field is a NOT NULL column, the page after a cursor is read from the
    index position of the cursor's last row (keyset pagination), so a deep page followed by
    ``next`` links costs what the first does; otherwise (and for a bare ``offset``) rows are
    skipped. ``next`` cursors are given only where keyset pagination applies.
    """
    cursor = params.cursor
    statements = _page_statements(
        main, tuple(where.clauses), tuple(spec), cursor is not None, connection.dialect.name
    )
    keys = statements.keys
    sort = params.sort or ""
    values = dict(where.params, page_limit=params.limit)
    if cursor is not None:
        if keys is None:
            raise InvalidCursor("This order has no cursor; page with `offset` alone.")
        key = decode_cursor(cursor, params.offset, sort, keys)
        values.update((f"cursor_{i}", value) for i, value in enumerate(key))
    else:
        values["page_offset"] = params.offset
    if where.clauses or connection.dialect.name != "sqlite":  # one round trip for both
        counted, rows = fetch_all(
            connection, [(statements.count, where.params), (statements.page, values)]
        )
        total = int(counted[0].total)
    else:
        total = _unfiltered_sqlite_total(connection, main, statements.count)
        rows = fetch(connection, statements.page, **values)
    next_cursor = None
    if keys is not None and len(rows) == params.limit:
        next_cursor = encode_cursor(params.offset + params.limit, sort, list(rows[-1]))
    return [row[-1] for row in rows], total, next_cursor


def _unfiltered_sqlite_total(connection: Connection, main: Table, count: Select[Any]) -> int:
    """How many rows ``main`` has, without reading them all on every request. (PostgreSQL's
    ``count`` of a whole table reads ``row_count``.) SQLite counts a table by reading a whole
    index (0.2 ms at 1M rows, more once the index outgrows the page cache), so it counts
    again only when the rows may have changed. A connection keeps the count it read while no
    other connection has committed (``PRAGMA data_version``, read as the transaction's first
    statement, so that it dates the snapshot) and it has changed no row itself
    (``total_changes``).
    """
    if not connection.in_transaction():
        connection.begin()
    driver: Any = connection.connection.driver_connection
    version = (driver.execute("PRAGMA data_version").fetchone()[0], driver.total_changes)
    kept: dict[str, tuple[Any, int]] = connection.info.setdefault("dyad_totals", {})
    if main.name not in kept or kept[main.name][0] != version:
        kept[main.name] = (version, int(fetch(connection, count)[0].total))
    return kept[main.name][1]


class InvalidCursor(InvalidInput):
    def __init__(self, detail: str) -> None:
        super().__init__(detail, errors=[{"param": "cursor", "message": detail}])


def _keyset(spec: SortSpec) -> list[tuple[ColumnElement[Any], bool]] | None:
    """The order as plain NOT NULL columns (what keyset pagination needs), or None."""
    keys: list[tuple[ColumnElement[Any], bool]] = []
    for column, descending in spec:
        if isinstance(column, DateSort) or getattr(column, "nullable", True):
            return None
        keys.append((column, descending))
    return keys


def _after(keys: list[tuple[ColumnElement[Any], bool]], values: list[Any]) -> ColumnElement[bool]:
    """Rows after ``values`` in the order of ``keys``: a tie on the first fields, then one
    field past its value (the expanded form, since directions may differ per field). The
    bound on the first field is what lets the database start from the index position
    instead of scanning the index (10 ms against 0.5 ms at 100k rows on SQLite)."""
    branches = []
    for i, (column, descending) in enumerate(keys):
        past = column < values[i] if descending else column > values[i]
        branches.append(
            and_(*(c == v for (c, _), v in zip(keys[:i], values[:i], strict=True)), past)
        )
    first, descending = keys[0]
    bound = first <= values[0] if descending else first >= values[0]
    return and_(bound, or_(*branches))


def encode_cursor(offset: int, sort: str, key: list[Any]) -> str:
    """An opaque token: the next offset, the order it belongs to and the last row's key."""
    raw = orjson.dumps({"o": offset, "s": sort, "k": key})
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(
    token: str, offset: int, sort: str, keys: list[tuple[ColumnElement[Any], bool]]
) -> list[Any]:
    """The key a cursor holds, one value of each key column's type; a 422 problem if the
    cursor is malformed or belongs to another page."""
    try:
        data = orjson.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        key, ok = data["k"], data["o"] == offset and data["s"] == sort
    except (ValueError, TypeError, KeyError):
        raise InvalidCursor("The cursor is not one this API gave; follow a `next` link.") from None
    if not ok or not isinstance(key, list) or len(key) != len(keys):
        raise InvalidCursor(
            "The cursor belongs to another page: keep the `offset` and `sort` of its link."
        )
    for value, (column, _) in zip(key, keys, strict=True):
        if not _fits(value, column.type):
            raise InvalidCursor("The cursor is not one this API gave; follow a `next` link.")
    return key


def _fits(value: Any, column_type: TypeEngine[Any]) -> bool:
    """Whether a cursor value can be compared with a column of ``column_type`` on every engine
    (a string against an integer column is an error on PostgreSQL, not a 500 to give)."""
    if isinstance(column_type, TypeDecorator):  # e.g. SQLModel's AutoString
        column_type = column_type.impl_instance
    if isinstance(column_type, String):
        return type(value) is str
    if isinstance(column_type, Integer):
        return type(value) is int and -(2**63) <= value < 2**63
    if isinstance(column_type, Float):
        return type(value) in (int, float)
    return False
