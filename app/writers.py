"""Writing records: the rows that store each one, and replacing or deleting an entity.

The mirror of :mod:`app.readers`: a record becomes its main row, its child rows and its
citations; an update rewrites children and citations but keeps the main row, which other
entities refer to.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import AwareDatetime, TypeAdapter
from sqlalchemy import Connection, Table, delete, insert, select, update

from app import models as m
from app.models import table
from app.records import (
    ENTITY_TYPE,
    MAIN_TABLE,
    Cite,
    FigureRecord,
    MembershipRecord,
    PersonRecord,
    RelationRecord,
    RouteRecord,
    SourceRecord,
    TradeRecord,
    TreatyRecord,
    VisitRecord,
)
from app.values import PartialDate

# --- rows -------------------------------------------------------------------------------

Rows = list[tuple[Table, dict[str, Any]]]
_DATETIME: TypeAdapter[datetime] = TypeAdapter(AwareDatetime)


def _dates(name: str, value: PartialDate | None) -> dict[str, Any]:
    if value is None:
        return {name: None, f"{name}_start": None, f"{name}_end": None}
    return {name: str(value), f"{name}_start": value.start, f"{name}_end": value.end}


def _citations(fact_type: str, fact_id: str, sources: list[Cite]) -> Rows:
    return [
        (
            table(m.Citation),
            {
                "fact_type": fact_type,
                "fact_id": fact_id,
                "position": k,
                "source_id": c.source,
                "quote": c.quote,
            },
        )
        for k, c in enumerate(sources)
    ]


def _pair(a: str, b: str) -> tuple[str, str]:
    return (a, b) if a < b else (b, a)


def entity_rows(collection: str, record: Any) -> Rows:
    """The rows that store one record: its main row, its children and its citations."""
    if collection == "sources":
        r: SourceRecord = record
        return [
            (
                table(m.Source),
                {
                    "id": r.id,
                    "title": r.title,
                    "publisher": r.publisher,
                    "author": r.author,
                    # The text export gives back, so that a reload compares equal.
                    "published_at": _DATETIME.dump_python(r.published_at, mode="json")
                    if r.published_at
                    else None,
                    "published_utc": r.published_at.astimezone(UTC) if r.published_at else None,
                    "url": r.url,
                    "language": r.language,
                    "notes": r.notes,
                },
            )
        ]
    if collection == "organizations":
        return [(table(m.Organization), record.model_dump())]
    if collection == "people":
        p: PersonRecord = record
        rows: Rows = [(table(m.Person), {"id": p.id, "name": p.name})]
        for role in p.roles:
            rows.append(
                (
                    table(m.Role),
                    {
                        "id": role.id,
                        "person_id": p.id,
                        "title": role.title,
                        "country": role.country,
                        "organization_id": role.organization,
                        **_dates("start", role.start),
                        **_dates("end", role.end),
                        **_dates("as_of", role.as_of),
                    },
                )
            )
            rows += _citations("role", role.id, role.sources)
        return rows
    if collection == "relations":
        rel: RelationRecord = record
        a, b = _pair(*rel.countries)
        rows = [
            (
                table(m.DiplomaticRelation),
                {
                    "id": rel.id,
                    "country_a": a,
                    "country_b": b,
                    **_dates("established", rel.established),
                },
            )
        ]
        rows += _citations("relation", rel.id, rel.sources)
        for k, note in enumerate(rel.notes):
            rows.append(
                (
                    table(m.RelationNote),
                    {"id": note.id, "relation_id": rel.id, "text": note.text, "position": k},
                )
            )
            rows += _citations("relation_note", note.id, note.sources)
        return rows
    if collection == "treaties":
        t: TreatyRecord = record
        rows = [
            (
                table(m.Treaty),
                {
                    "id": t.id,
                    "title": t.title,
                    "kind": t.kind,
                    **_dates("signed", t.signed),
                    "signed_place": t.signed_place,
                    "description": t.description,
                },
            )
        ]
        rows += [
            (table(m.TreatyParty), {"treaty_id": t.id, "country": c, "position": k})
            for k, c in enumerate(dict.fromkeys(t.parties))
        ]
        return rows + _citations("treaty", t.id, t.sources)
    if collection == "visits":
        v: VisitRecord = record
        rows = [
            (
                table(m.Visit),
                {
                    "id": v.id,
                    **_dates("date", v.date),
                    "kind": v.kind,
                    "guest": v.guest,
                    "host": v.host,
                    "place": v.place,
                    "description": v.description,
                },
            )
        ]
        rows += [
            (
                table(m.VisitParticipant),
                {"visit_id": v.id, "person_id": p_.person, "role": p_.role, "position": k},
            )
            for k, p_ in enumerate(v.participants)
        ]
        return rows + _citations("visit", v.id, v.sources)
    if collection == "trade":
        tr: TradeRecord = record
        reporter, partner = tr.reporter, tr.partner
        if tr.flow == "turnover":  # symmetric: stored once, in canonical order
            reporter, partner = _pair(reporter, partner)
        return [
            (
                table(m.TradeFigure),
                {
                    "id": tr.id,
                    "reporter": reporter,
                    "partner": partner,
                    "year": tr.year,
                    "flow": tr.flow,
                    "value": tr.value,
                    "currency": tr.currency,
                    "approximate": tr.approximate,
                },
            ),
            *_citations("trade", tr.id, tr.sources),
        ]
    if collection == "routes":
        ro: RouteRecord = record
        rows = [
            (
                table(m.TransportRoute),
                {
                    "id": ro.id,
                    "name": ro.name,
                    "acronym": ro.acronym,
                    "description": ro.description,
                },
            )
        ]
        rows += [
            (table(m.RouteCountry), {"route_id": ro.id, "country": c, "position": k})
            for k, c in enumerate(dict.fromkeys(ro.countries))
        ]
        return rows + _citations("route", ro.id, ro.sources)
    if collection == "memberships":
        ms: MembershipRecord = record
        return [
            (
                table(m.Membership),
                {
                    "id": ms.id,
                    "organization_id": ms.organization,
                    "country": ms.country,
                    **_dates("since", ms.since),
                },
            ),
            *_citations("membership", ms.id, ms.sources),
        ]
    if collection == "figures":
        fg: FigureRecord = record
        a_, b_ = _pair(*fg.countries) if fg.countries else (None, None)
        return [
            (
                table(m.Figure),
                {
                    "id": fg.id,
                    "metric": fg.metric,
                    "value": fg.value,
                    "unit": fg.unit,
                    "approximate": fg.approximate,
                    **_dates("as_of", fg.as_of),
                    "country_a": a_,
                    "country_b": b_,
                    "route_id": fg.route,
                    "description": fg.description,
                },
            ),
            *_citations("figure", fg.id, fg.sources),
        ]
    raise KeyError(collection)


# Facts nested inside an entity, whose citations go when the entity goes.
NESTED_FACTS: dict[str, tuple[str, type[Any], str]] = {
    "people": ("role", m.Role, "person_id"),
    "relations": ("relation_note", m.RelationNote, "relation_id"),
}
# Facts of their own that ON DELETE CASCADE removes with an entity: their citations too.
CASCADED_FACTS: dict[str, tuple[str, type[Any], str]] = {
    "organizations": ("membership", m.Membership, "organization_id"),
    "routes": ("figure", m.Figure, "route_id"),
}
# Rows that belong to one entity and are rewritten with it.
CHILD_TABLES: dict[str, tuple[type[Any], str]] = {
    "people": (m.Role, "person_id"),
    "relations": (m.RelationNote, "relation_id"),
    "treaties": (m.TreatyParty, "treaty_id"),
    "visits": (m.VisitParticipant, "visit_id"),
    "routes": (m.RouteCountry, "route_id"),
}


def _delete_citations(
    connection: Connection, collection: str, id_: str, facts: dict[str, tuple[str, type[Any], str]]
) -> None:
    cit = table(m.Citation)
    if collection in facts:
        fact_type, model, parent = facts[collection]
        ids = select(table(model).c.id).where(table(model).c[parent] == id_)
        connection.execute(delete(cit).where(cit.c.fact_type == fact_type, cit.c.fact_id.in_(ids)))
    connection.execute(
        delete(cit).where(cit.c.fact_type == ENTITY_TYPE[collection], cit.c.fact_id == id_)
    )


def delete_entity(connection: Connection, collection: str, id_: str) -> None:
    """Remove an entity with its children and every citation of it, of its nested facts and
    of the facts that go with it (a route's figures, an organization's memberships)."""
    _delete_citations(connection, collection, id_, NESTED_FACTS)
    _delete_citations(connection, collection, id_, CASCADED_FACTS)
    # Child rows go with their parent through ON DELETE CASCADE (foreign_keys=ON on SQLite).
    main = MAIN_TABLE[collection]
    connection.execute(delete(main).where(main.c.id == id_))


def replace_entity(connection: Connection, collection: str, record: Any) -> None:
    """Store a new version of an entity in place.

    The main row is updated, never deleted: rows of other entities refer to it (citations
    to a source, visits to a person, figures to a route) and would block the delete or,
    worse, go with it. Children and citations are rewritten.
    """
    _delete_citations(connection, collection, record.id, NESTED_FACTS)
    if collection in CHILD_TABLES:
        model, parent = CHILD_TABLES[collection]
        connection.execute(delete(table(model)).where(table(model).c[parent] == record.id))
    main = MAIN_TABLE[collection]
    rows = entity_rows(collection, record)
    for tbl, row in rows:
        if tbl is main:
            values = {k: v for k, v in row.items() if k != "id"}
            connection.execute(update(main).where(main.c.id == record.id).values(values))
    insert_rows(connection, [(tbl, row) for tbl, row in rows if tbl is not main])


def insert_rows(connection: Connection, rows: Rows) -> None:
    """Insert rows grouped by table, preserving order within a table (executemany)."""
    grouped: dict[Table, list[dict[str, Any]]] = {}
    for tbl, row in rows:
        grouped.setdefault(tbl, []).append(row)
    order = [t for t in m.metadata.sorted_tables if t in grouped]
    for tbl in order:
        connection.execute(insert(tbl), grouped[tbl])
