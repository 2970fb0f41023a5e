"""Reading stored entities back in the dataset format, with a fixed number of queries.

One reader per collection turns rows into the records of ``data/seed.json`` (countries as
ISO alpha-2 codes, related entities by id, citations as ``{source, quote}``). Export, the
upsert comparison of imports and every HTTP read use these readers, so they cannot drift
apart. A reader costs one query for the main rows plus one per kind of child row, whatever
the number of entities: no query per item.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from functools import cache
from typing import Any

from sqlalchemy import Connection, Select, Table, bindparam, select

from app import models as m
from app.db import any_of, fetch
from app.models import table
from app.values import plain_number

Record = dict[str, Any]


CITATION = table(m.Citation)


def _ids(ids: Sequence[str] | None) -> dict[str, Any]:
    return {} if ids is None else {"ids": list(ids)}


@cache
def _select_rows(tbl: Table, by_id: bool, dialect: str) -> Select[Any]:
    """Built once per table: building a statement costs more than running it."""
    query = select(tbl).order_by(tbl.c.id)
    return query.where(any_of(tbl.c.id, "ids", dialect)) if by_id else query


def _rows(connection: Connection, tbl: Table, ids: Sequence[str] | None) -> list[Any]:
    query = _select_rows(tbl, ids is not None, connection.dialect.name)
    return fetch(connection, query, **_ids(ids))


@cache
def _select_children(tbl: Table, key: str, by_id: bool, dialect: str) -> Select[Any]:
    query = select(tbl).order_by(tbl.c[key], *([tbl.c.position] if "position" in tbl.c else []))
    return query.where(any_of(tbl.c[key], "ids", dialect)) if by_id else query


def _children(
    connection: Connection, tbl: Table, key: str, ids: Sequence[str] | None
) -> dict[str, list[Any]]:
    grouped: dict[str, list[Any]] = defaultdict(list)
    query = _select_children(tbl, key, ids is not None, connection.dialect.name)
    for row in fetch(connection, query, **_ids(ids)):
        grouped[getattr(row, key)].append(row)
    return grouped


@cache
def _select_citations(by_id: bool, dialect: str) -> Select[Any]:
    query = (
        select(CITATION.c.fact_id, CITATION.c.source_id, CITATION.c.quote)
        .where(CITATION.c.fact_type == bindparam("fact_type"))
        .order_by(CITATION.c.fact_id, CITATION.c.position)
    )
    return query.where(any_of(CITATION.c.fact_id, "ids", dialect)) if by_id else query


def citations(
    connection: Connection, fact_type: str, ids: Sequence[str] | None
) -> dict[str, list[Record]]:
    """``{fact_id: [{source, quote}, ...]}`` for one kind of fact, in citation order."""
    grouped: dict[str, list[Record]] = defaultdict(list)
    query = _select_citations(ids is not None, connection.dialect.name)
    for fact_id, source_id, quote in fetch(connection, query, fact_type=fact_type, **_ids(ids)):
        grouped[fact_id].append({"source": source_id, "quote": quote})
    return grouped


def _in_order(records: list[Record], ids: Sequence[str] | None) -> list[Record]:
    if ids is None:
        return records
    by_id = {r["id"]: r for r in records}
    return [by_id[i] for i in dict.fromkeys(ids) if i in by_id]


def read_sources(connection: Connection, ids: Sequence[str] | None) -> list[Record]:
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
        for r in _rows(connection, table(m.Source), ids)
    ]


def read_organizations(connection: Connection, ids: Sequence[str] | None) -> list[Record]:
    return [
        {"id": r.id, "name": r.name, "acronym": r.acronym, "kind": r.kind}
        for r in _rows(connection, table(m.Organization), ids)
    ]


def read_people(connection: Connection, ids: Sequence[str] | None) -> list[Record]:
    roles = _children(connection, table(m.Role), "person_id", ids)
    role_ids = [role.id for group in roles.values() for role in group]
    cites = citations(connection, "role", role_ids if ids is not None else None)
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
                    "sources": cites.get(r.id, []),
                }
                for r in sorted(roles.get(p.id, []), key=lambda r: r.id)
            ],
        }
        for p in _rows(connection, table(m.Person), ids)
    ]


def read_relations(connection: Connection, ids: Sequence[str] | None) -> list[Record]:
    notes = _children(connection, table(m.RelationNote), "relation_id", ids)
    note_ids = [n.id for group in notes.values() for n in group]
    note_cites = citations(connection, "relation_note", note_ids if ids is not None else None)
    cites = citations(connection, "relation", ids)
    return [
        {
            "id": r.id,
            "countries": [r.country_a, r.country_b],
            "established": r.established,
            "notes": [
                {"id": n.id, "text": n.text, "sources": note_cites.get(n.id, [])}
                for n in notes.get(r.id, [])
            ],
            "sources": cites.get(r.id, []),
        }
        for r in _rows(connection, table(m.DiplomaticRelation), ids)
    ]


def read_treaties(connection: Connection, ids: Sequence[str] | None) -> list[Record]:
    parties = _children(connection, table(m.TreatyParty), "treaty_id", ids)
    cites = citations(connection, "treaty", ids)
    return [
        {
            "id": t.id,
            "title": t.title,
            "kind": t.kind,
            "signed": t.signed,
            "signed_place": t.signed_place,
            "parties": [p.country for p in parties.get(t.id, [])],
            "description": t.description,
            "sources": cites.get(t.id, []),
        }
        for t in _rows(connection, table(m.Treaty), ids)
    ]


def read_visits(connection: Connection, ids: Sequence[str] | None) -> list[Record]:
    participants = _children(connection, table(m.VisitParticipant), "visit_id", ids)
    cites = citations(connection, "visit", ids)
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
            "sources": cites.get(v.id, []),
        }
        for v in _rows(connection, table(m.Visit), ids)
    ]


def read_trade(connection: Connection, ids: Sequence[str] | None) -> list[Record]:
    cites = citations(connection, "trade", ids)
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
            "sources": cites.get(t.id, []),
        }
        for t in _rows(connection, table(m.TradeFigure), ids)
    ]


def read_routes(connection: Connection, ids: Sequence[str] | None) -> list[Record]:
    countries = _children(connection, table(m.RouteCountry), "route_id", ids)
    cites = citations(connection, "route", ids)
    return [
        {
            "id": r.id,
            "name": r.name,
            "acronym": r.acronym,
            "description": r.description,
            "countries": [c.country for c in countries.get(r.id, [])],
            "sources": cites.get(r.id, []),
        }
        for r in _rows(connection, table(m.TransportRoute), ids)
    ]


def read_memberships(connection: Connection, ids: Sequence[str] | None) -> list[Record]:
    cites = citations(connection, "membership", ids)
    return [
        {
            "id": r.id,
            "organization": r.organization_id,
            "country": r.country,
            "since": r.since,
            "sources": cites.get(r.id, []),
        }
        for r in _rows(connection, table(m.Membership), ids)
    ]


def read_figures(connection: Connection, ids: Sequence[str] | None) -> list[Record]:
    cites = citations(connection, "figure", ids)
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
            "sources": cites.get(f.id, []),
        }
        for f in _rows(connection, table(m.Figure), ids)
    ]


READERS: dict[str, Callable[[Connection, Sequence[str] | None], list[Record]]] = {
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


def read_collection(
    connection: Connection, collection: str, ids: Sequence[str] | None = None
) -> list[Record]:
    """Records of one collection: all of them by id, or those of ``ids`` in that order."""
    if ids is not None and not ids:
        return []
    return _in_order(READERS[collection](connection, ids), ids)
