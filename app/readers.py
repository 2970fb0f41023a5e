"""Reading stored entities back in the dataset format, with a fixed number of queries.

One reader per collection turns rows into the records of ``data/seed.json`` (countries as
ISO alpha-2 codes, related entities by id, citations as ``{source, quote}``). Export, the
upsert comparison of imports and every HTTP read use these readers, so they cannot drift
apart. A reader costs one query for the main rows (joined to their citations) plus one per
kind of child row, whatever the number of entities: no query per item. Queries are built
once and run on the driver's cursor (:func:`app.db.fetch_all`).

A reader is a generator (a :data:`Reading`): it yields the queries it needs, all at once,
and is sent their rows. :func:`together` runs several readings in step, so that the queries
of each of their rounds go to the database as one batch, which PostgreSQL answers in one
round trip; :func:`run` runs a reading on a connection.

A reader takes the ids of the entities it reads, or ``None`` for all of them, or a
:class:`Chosen`: the entities a statement picks, in an order it gives, read in the same
round as the statement runs (the dossier's sections, which need no round for their ids).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any, TypeVar

from sqlalchemy import Connection, Select, Table, and_, literal_column, select
from sqlalchemy.sql import ColumnElement

from app import models as m
from app.db import Query, any_of, fetch_all
from app.models import table
from app.values import plain_number

Record = dict[str, Any]
T = TypeVar("T")
Reading = Generator[list[Query], list[list[Any]], T]
"""Yields the queries of a round, is sent their rows (in the same order), returns a value."""


def run(connection: Connection, reading: Reading[T]) -> T:
    """The value of a reading, its queries run on ``connection``."""
    try:
        queries = next(reading)
        while True:
            queries = reading.send(fetch_all(connection, queries))
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]


def together(*readings: Reading[Any]) -> Reading[list[Any]]:
    """Several readings in step: the queries of each round of all of them go out together.
    Returns their values, in order."""
    values: list[Any] = [None] * len(readings)
    waiting: dict[int, list[Query]] = {}

    def advance(index: int, rows: list[list[Any]] | None) -> None:
        try:
            waiting[index] = readings[index].send(rows)  # type: ignore[arg-type]
        except StopIteration as done:
            values[index] = done.value

    for index in range(len(readings)):
        advance(index, None)
    while waiting:
        batch = list(waiting.items())
        waiting.clear()
        rows = iter((yield [query for _, queries in batch for query in queries]))
        for index, queries in batch:
            advance(index, [next(rows) for _ in queries])
    return values


CITATION = table(m.Citation)


@dataclass(frozen=True, eq=False)
class Choice:
    """Which rows of ``main`` a statement picks (``where``, with bind parameters) and in what
    order (columns of ``main``, nulls last; ties by id). Built once: a statement built from
    it is cached by its identity."""

    main: Table
    where: tuple[ColumnElement[bool], ...]
    order: tuple[ColumnElement[Any], ...] = ()

    @property
    def ids(self) -> Select[Any]:
        """The chosen ids, for the rows of other tables that belong to them."""
        return select(self.main.c.id).where(*self.where).correlate(None)


@dataclass(frozen=True, eq=False)
class Chosen:
    """The entities of a :class:`Choice` for some values of its parameters."""

    choice: Choice
    params: dict[str, Any]


Ids = Sequence[str] | Chosen | None
"""The entities to read: these ids (in this order), those a statement picks, or all."""


def _ids(ids: Ids) -> dict[str, Any]:
    if isinstance(ids, Chosen):
        return ids.params
    return {} if ids is None else {"ids": list(ids)}


def _which(ids: Ids) -> Choice | bool:
    """What a statement's ``WHERE`` depends on: the choice, or whether ids are listed."""
    return ids.choice if isinstance(ids, Chosen) else ids is not None


@cache
def _select(
    tbl: Table, key: str, fact_type: str | None, which: Choice | bool, dialect: str
) -> Select[Any]:
    """Rows of ``tbl`` whose ``key`` is one of the ids (all rows without them; the chosen
    ones with a :class:`Choice`), in order, each joined to its citations when
    ``fact_type`` names them (a row per citation). Built once per table: building a
    statement costs more than running it."""
    order: list[ColumnElement[Any]] = [tbl.c[key]]
    if key != "id":  # child rows: in their stated order
        order += [tbl.c[name] for name in ("position", "id") if name in tbl.c]
    elif isinstance(which, Choice):  # the chosen order, ties by id
        order = [*(column.nulls_last() for column in which.order), tbl.c.id]
    query = select(tbl)
    if fact_type is not None:
        cited = and_(
            CITATION.c.fact_type == literal_column(f"'{fact_type}'"),
            CITATION.c.fact_id == tbl.c.id,
        )
        query = select(
            tbl, CITATION.c.source_id.label("cited_source"), CITATION.c.quote.label("cited")
        ).select_from(tbl.outerjoin(CITATION, cited))
        order.append(CITATION.c.position)
    query = query.order_by(*order)
    if isinstance(which, Choice):
        return (
            query.where(*which.where)
            if tbl is which.main
            else query.where(tbl.c[key].in_(which.ids))
        )
    return query.where(any_of(tbl.c[key], "ids", dialect)) if which else query


def _cited(
    connection: Connection, tbl: Table, fact_type: str | None, ids: Ids, key: str = "id"
) -> Query:
    """Rows joined to their citations (read them with :func:`_with_citations`); with no
    ``fact_type``, the rows alone (see :func:`_rows`)."""
    return _select(tbl, key, fact_type, _which(ids), connection.dialect.name), _ids(ids)


def _rows(connection: Connection, tbl: Table, ids: Ids, key: str = "id") -> Query:
    return _cited(connection, tbl, None, ids, key)


def _with_citations(rows: list[Any]) -> list[tuple[Any, list[Record]]]:
    """Rows with their citations ``[{source, quote}, ...]``."""
    found: list[tuple[Any, list[Record]]] = []
    for row in rows:
        if not found or found[-1][0].id != row.id:
            found.append((row, []))
        if row.cited_source is not None:
            found[-1][1].append({"source": row.cited_source, "quote": row.cited})
    return found


def _cited_with_children(
    connection: Connection,
    tbl: Table,
    fact_type: str,
    ids: Ids,
    children: Table,
    key: str,
) -> Reading[tuple[list[tuple[Any, list[Record]]], dict[str, list[Any]]]]:
    """Rows with their citations, and their child rows (in their order) by parent id, read
    in one round."""
    child_rows, rows = yield [
        _rows(connection, children, ids, key),
        _cited(connection, tbl, fact_type, ids),
    ]
    return _with_citations(rows), _grouped(child_rows, lambda child: getattr(child, key))


def _grouped(items: Sequence[Any], key: Callable[[Any], str]) -> dict[str, list[Any]]:
    grouped: dict[str, list[Any]] = defaultdict(list)
    for item in items:
        grouped[key(item)].append(item)
    return grouped


def _in_order(records: list[Record], ids: Ids) -> list[Record]:
    if ids is None or isinstance(ids, Chosen):  # in the statement's order
        return records
    by_id = {r["id"]: r for r in records}
    return [by_id[i] for i in dict.fromkeys(ids) if i in by_id]


def read_sources(connection: Connection, ids: Ids) -> Reading[list[Record]]:
    (rows,) = yield [_rows(connection, table(m.Source), ids)]
    return [
        {
            "id": r.id,
            "title": r.title,
            "publisher": r.publisher,
            "author": r.author,
            "published_at": r.published_at,
            "url": r.url,
            "language": r.language,
            "notes": r.notes,
        }
        for r in rows
    ]


def read_organizations(connection: Connection, ids: Ids) -> Reading[list[Record]]:
    (rows,) = yield [_rows(connection, table(m.Organization), ids)]
    return [{"id": r.id, "name": r.name, "acronym": r.acronym, "kind": r.kind} for r in rows]


def read_people(connection: Connection, ids: Ids) -> Reading[list[Record]]:
    role_rows, people = yield [
        _cited(connection, table(m.Role), "role", ids, key="person_id"),
        _rows(connection, table(m.Person), ids),
    ]
    roles = _grouped(_with_citations(role_rows), lambda role: role[0].person_id)
    return [
        {
            "id": p.id,
            "name": p.name,
            "roles": [
                {
                    "id": r.id,
                    "title": r.title,
                    "country": r.country,
                    "organization": r.organization_id,
                    "start": r.start,
                    "end": r.end,
                    "as_of": r.as_of,
                    "sources": cites,
                }
                for r, cites in roles.get(p.id, [])  # by id: the query's order
            ],
        }
        for p in people
    ]


def read_relations(connection: Connection, ids: Ids) -> Reading[list[Record]]:
    note_rows, relation_rows = yield [
        _cited(connection, table(m.RelationNote), "relation_note", ids, key="relation_id"),
        _cited(connection, table(m.DiplomaticRelation), "relation", ids),
    ]
    notes = _grouped(_with_citations(note_rows), lambda note: note[0].relation_id)
    return [
        {
            "id": r.id,
            "countries": [r.country_a, r.country_b],
            "established": r.established,
            "notes": [
                {"id": n.id, "text": n.text, "sources": note_cites}
                for n, note_cites in notes.get(r.id, [])
            ],
            "sources": cites,
        }
        for r, cites in _with_citations(relation_rows)
    ]


def read_treaties(connection: Connection, ids: Ids) -> Reading[list[Record]]:
    treaties, parties = yield from _cited_with_children(
        connection, table(m.Treaty), "treaty", ids, table(m.TreatyParty), "treaty_id"
    )
    return [
        {
            "id": t.id,
            "title": t.title,
            "kind": t.kind,
            "signed": t.signed,
            "signed_place": t.signed_place,
            "parties": [p.country for p in parties.get(t.id, [])],
            "description": t.description,
            "sources": cites,
        }
        for t, cites in treaties
    ]


def read_visits(connection: Connection, ids: Ids) -> Reading[list[Record]]:
    visits, participants = yield from _cited_with_children(
        connection, table(m.Visit), "visit", ids, table(m.VisitParticipant), "visit_id"
    )
    return [
        {
            "id": v.id,
            "date": v.date,
            "kind": v.kind,
            "guest": v.guest,
            "host": v.host,
            "place": v.place,
            "description": v.description,
            "participants": [
                {"person": p.person_id, "role": p.role} for p in participants.get(v.id, [])
            ],
            "sources": cites,
        }
        for v, cites in visits
    ]


def read_trade(connection: Connection, ids: Ids) -> Reading[list[Record]]:
    (rows,) = yield [_cited(connection, table(m.TradeFigure), "trade", ids)]
    return [
        {
            "id": t.id,
            "reporter": t.reporter,
            "partner": t.partner,
            "year": t.year,
            "flow": t.flow,
            "value": t.value,
            "currency": t.currency,
            "approximate": bool(t.approximate),
            "sources": cites,
        }
        for t, cites in _with_citations(rows)
    ]


def read_routes(connection: Connection, ids: Ids) -> Reading[list[Record]]:
    routes, countries = yield from _cited_with_children(
        connection, table(m.TransportRoute), "route", ids, table(m.RouteCountry), "route_id"
    )
    return [
        {
            "id": r.id,
            "name": r.name,
            "acronym": r.acronym,
            "description": r.description,
            "countries": [c.country for c in countries.get(r.id, [])],
            "sources": cites,
        }
        for r, cites in routes
    ]


def read_memberships(connection: Connection, ids: Ids, key: str = "id") -> Reading[list[Record]]:
    """Memberships by id, or (``key="organization_id"``) those of the organizations ``ids``."""
    (rows,) = yield [_cited(connection, table(m.Membership), "membership", ids, key)]
    return [
        {
            "id": r.id,
            "organization": r.organization_id,
            "country": r.country,
            "since": r.since,
            "sources": cites,
        }
        for r, cites in _with_citations(rows)
    ]


def read_figures(connection: Connection, ids: Ids, key: str = "id") -> Reading[list[Record]]:
    """Figures by id, or (``key="route_id"``) those of the routes ``ids``, by route then id."""
    (rows,) = yield [_cited(connection, table(m.Figure), "figure", ids, key)]
    return [
        {
            "id": f.id,
            "metric": f.metric,
            "value": plain_number(f.value),
            "unit": f.unit,
            "approximate": bool(f.approximate),
            "as_of": f.as_of,
            "countries": [f.country_a, f.country_b] if f.country_a else None,
            "route": f.route_id,
            "description": f.description,
            "sources": cites,
        }
        for f, cites in _with_citations(rows)
    ]


READERS: dict[str, Callable[[Connection, Ids], Reading[list[Record]]]] = {
    "sources": read_sources,
    "organizations": read_organizations,
    "people": read_people,
    "relations": read_relations,
    "treaties": read_treaties,
    "visits": read_visits,
    "trade": read_trade,
    "routes": read_routes,
    "memberships": read_memberships,
    "figures": read_figures,
}


def collection_reading(
    connection: Connection, collection: str, ids: Ids = None
) -> Reading[list[Record]]:
    """The reading of :func:`read_collection`, to run together with others."""
    if ids is not None and not ids:
        return []
    return _in_order((yield from READERS[collection](connection, ids)), ids)


def read_collection(
    connection: Connection, collection: str, ids: Sequence[str] | None = None
) -> list[Record]:
    """Records of one collection: all of them by id, or those of ``ids`` in that order."""
    return run(connection, collection_reading(connection, collection, ids))
