"""The dataset format of ``data/seed.json``: validation, all-or-nothing loading and export.

A dataset is a JSON object with one list per collection. Loading validates the whole file
first (shapes, then references against the file and the database) and reports *every*
problem with a JSON pointer; only a dataset without problems is written, in one
transaction, as upserts: a record that equals what is stored is left alone, so loading the
same file twice changes nothing.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from pydantic import AwareDatetime, TypeAdapter, ValidationError
from sqlalchemy import Connection, Engine, Table, delete, func, insert, select, tuple_, update

from app import models as m
from app.db import write_transaction
from app.models import table
from app.readers import read_collection
from app.records import COLLECTIONS as COLLECTIONS  # re-exported for the CLI
from app.records import (
    ENTITY_TYPE,
    FORMAT,
    MAIN_TABLE,
    Cite,
    Dataset,
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
from app.values import PartialDate, lookup_country


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the input, located by a JSON pointer (RFC 6901)."""

    pointer: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"pointer": self.pointer, "message": self.message}


class DatasetInvalid(Exception):
    """The dataset was rejected; ``problems`` lists every reason."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        super().__init__(f"{len(problems)} problem(s) in the dataset")
        self.problems = list(problems)


@dataclass
class LoadReport:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped: int = 0
    revision: int = 0
    dry_run: bool = False
    by_collection: dict[str, dict[str, int]] = field(default_factory=dict)

    def count(self, collection: str, outcome: str) -> None:
        setattr(self, outcome, getattr(self, outcome) + 1)
        counts = self.by_collection.setdefault(
            collection, {"created": 0, "updated": 0, "unchanged": 0}
        )
        counts[outcome] += 1

    @property
    def changed(self) -> bool:
        return bool(self.created or self.updated)

    def as_dict(self) -> dict[str, Any]:
        return {
            "created": self.created,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "skipped": self.skipped,
            "revision": self.revision,
            "dry_run": self.dry_run,
            "collections": self.by_collection,
        }


def _escape(token: str | int) -> str:
    return str(token).replace("~", "~0").replace("/", "~1")


def pointer(*path: str | int) -> str:
    return "".join(f"/{_escape(p)}" for p in path)


def parse_dataset(
    raw: bytes | str | dict[str, Any],
    connection: Connection | None = None,
    *,
    standalone: bool = False,
) -> Dataset:
    """Validate a dataset; raise :class:`DatasetInvalid` listing every problem it has.

    Shapes, duplicate ids and duplicate pairs are always checked, on every record whatever
    else is wrong with the file. With a ``connection``, references and conflicts with stored
    records are checked too (an id may then be in the file or in the database); with
    ``standalone``, references must resolve within the file. Otherwise they are left to
    :func:`load`, since the database may hold what the file names.
    """
    if not isinstance(raw, dict):
        try:
            raw = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise DatasetInvalid([Problem("", f"not valid JSON: {exc}")]) from None
    if not isinstance(raw, dict):
        raise DatasetInvalid([Problem("", "a dataset is a JSON object")])
    problems: list[Problem] = []
    dataset: Dataset | None = None
    try:
        dataset = Dataset.model_validate(raw)
    except ValidationError as exc:
        problems = _shape_problems(raw, exc)
    # Later checks read the raw file when its shape is wrong, so that one bad record does
    # not hide the problems of the others; they skip what a shape problem already covers.
    data: Dataset | dict[str, Any] = dataset if dataset is not None else raw
    shaped = {p.pointer for p in problems}
    later = list(_duplicates(data))
    if connection is not None or standalone:
        later += check_references(data, connection)
    if connection is not None:
        later += check_conflicts(data, connection)
    problems += [p for p in later if p.pointer not in shaped]
    if problems:
        raise DatasetInvalid(_one_per_pointer(problems))
    assert dataset is not None
    return dataset


def _one_per_pointer(problems: Iterable[Problem]) -> list[Problem]:
    """The first problem found at each place: one fault may break several checks."""
    first: dict[str, Problem] = {}
    for problem in problems:
        first.setdefault(problem.pointer, problem)
    return list(first.values())


def _shape_problems(raw: dict[str, Any], exc: ValidationError) -> list[Problem]:
    # A value that fits no branch of a union fails once per branch: it is reported once.
    return _one_per_pointer(
        Problem(pointer(*_data_path(raw, e["loc"])), e["msg"].removeprefix("Value error, "))
        for e in exc.errors(include_url=False)
    )


def _data_path(raw: Any, loc: Sequence[str | int]) -> list[str | int]:
    """The part of a pydantic error location that names data, not schema branches."""
    path: list[str | int] = []
    node = raw
    for part in loc:
        if isinstance(node, dict) and isinstance(part, str):
            path.append(part)
            node = node.get(part)
        elif isinstance(node, list) and isinstance(part, int):
            path.append(part)
            node = node[part] if 0 <= part < len(node) else None
        # else: a union member ("int", "float") or a validator, not a step into the data
    return path


# Validated records and raw JSON objects are read alike, so the checks below work on a
# file whose shape is wrong too; what is not of the expected type is skipped (the shape
# check has reported it).


def _get(obj: Any, name: str) -> Any:
    return obj.get(name) if isinstance(obj, dict) else getattr(obj, name, None)


def _items(obj: Any, name: str) -> list[tuple[int, Any]]:
    value = _get(obj, name)
    return list(enumerate(value)) if isinstance(value, list | tuple) else []


def _str(obj: Any, name: str) -> str | None:
    value = _get(obj, name)
    return value if isinstance(value, str) else None


def _country(value: Any) -> str | None:
    found = lookup_country(value) if isinstance(value, str) else None
    return str(found.alpha_2) if found is not None else None


def _pair_of(obj: Any) -> tuple[str, str] | None:
    countries = [_country(c) for _, c in _items(obj, "countries")]
    if len(countries) != 2 or None in countries or countries[0] == countries[1]:
        return None
    a, b = sorted(c for c in countries if c is not None)
    return a, b


def _duplicates(data: Dataset | dict[str, Any]) -> Iterator[Problem]:
    """Ids used twice, and records that the database could store only once."""
    seen: dict[tuple[str, Any], str] = {}

    def check(kind: str, key: Any, where: str, message: str) -> Iterator[Problem]:
        if key is None:
            return
        if (kind, key) in seen:
            yield Problem(where, f"{message} (first at {seen[kind, key]})")
        else:
            seen[kind, key] = where

    def check_id(kind: str, obj: Any, *path: str | int) -> Iterator[Problem]:
        id_ = _str(obj, "id")
        yield from check(kind, id_, pointer(*path, "id"), f"duplicate id {id_!r}")

    for collection in COLLECTIONS:
        for i, record in _items(data, collection):
            yield from check_id(collection, record, collection, i)
    for i, person in _items(data, "people"):
        for j, role in _items(person, "roles"):
            yield from check_id("roles", role, "people", i, "roles", j)
    for i, relation in _items(data, "relations"):
        for j, note in _items(relation, "notes"):
            yield from check_id("notes", note, "relations", i, "notes", j)
        pair = _pair_of(relation)
        yield from check(
            "pair", pair, pointer("relations", i, "countries"), "another relation has this pair"
        )
    for i, ms in _items(data, "memberships"):
        key = (_str(ms, "organization"), _country(_get(ms, "country")))
        yield from check(
            "membership",
            key if None not in key else None,
            pointer("memberships", i, "country"),
            "another membership has this organization and country",
        )
    for i, visit in _items(data, "visits"):
        for j, part in _items(visit, "participants"):
            yield from check(
                f"participant {i}",
                _str(part, "person"),
                pointer("visits", i, "participants", j, "person"),
                "this person already takes part in the visit",
            )


# --- references -------------------------------------------------------------------------


def _ids_in_db(connection: Connection | None, collection: str, ids: set[str]) -> set[str]:
    if connection is None or not ids:
        return set()
    id_col = MAIN_TABLE[collection].c.id
    found: set[str] = set()
    chunk = sorted(ids)
    for start in range(0, len(chunk), 500):
        rows = connection.execute(select(id_col).where(id_col.in_(chunk[start : start + 500])))
        found.update(row[0] for row in rows)
    return found


def check_references(
    data: Dataset | dict[str, Any], connection: Connection | None = None
) -> list[Problem]:
    """Every id a record names must exist, in the dataset itself or in the database."""
    wanted: dict[str, list[tuple[str, str]]] = {c: [] for c in COLLECTIONS}

    def want(collection: str, obj: Any, name: str, *path: str | int) -> None:
        id_ = _str(obj, name)
        if id_ is not None:
            wanted[collection].append((id_, pointer(*path, name)))

    def cites(obj: Any, *path: str | int) -> None:
        for k, cite in _items(obj, "sources"):
            want("sources", cite, "source", *path, "sources", k)

    for i, p in _items(data, "people"):
        for j, role in _items(p, "roles"):
            want("organizations", role, "organization", "people", i, "roles", j)
            cites(role, "people", i, "roles", j)
    for i, r in _items(data, "relations"):
        cites(r, "relations", i)
        for j, note in _items(r, "notes"):
            cites(note, "relations", i, "notes", j)
    for i, v in _items(data, "visits"):
        cites(v, "visits", i)
        for j, part in _items(v, "participants"):
            want("people", part, "person", "visits", i, "participants", j)
    for collection in ("treaties", "trade", "routes"):
        for i, record in _items(data, collection):
            cites(record, collection, i)
    for i, ms in _items(data, "memberships"):
        cites(ms, "memberships", i)
        want("organizations", ms, "organization", "memberships", i)
    for i, fg in _items(data, "figures"):
        cites(fg, "figures", i)
        want("routes", fg, "route", "figures", i)

    problems = []
    for collection, refs in wanted.items():
        in_file = {_str(record, "id") for _, record in _items(data, collection)}
        missing = {id_ for id_, _ in refs} - in_file
        missing -= _ids_in_db(connection, collection, missing)
        for id_, where in refs:
            if id_ in missing:
                problems.append(
                    Problem(
                        where,
                        f"no {ENTITY_TYPE[collection]} with id {id_!r} in the "
                        "dataset or the database",
                    )
                )
    return problems


def check_conflicts(data: Dataset | dict[str, Any], connection: Connection) -> list[Problem]:
    """Records whose unique key a stored record of another id already holds."""
    rel, ms = table(m.DiplomaticRelation), table(m.Membership)
    problems = _clashes(
        connection,
        (rel.c.country_a, rel.c.country_b),
        rel.c.id,
        [
            (_pair_of(r), _str(r, "id"), pointer("relations", i, "countries"))
            for i, r in _items(data, "relations")
        ],
        "relation {owner!r} already holds this pair",
    )
    problems += _clashes(
        connection,
        (ms.c.organization_id, ms.c.country),
        ms.c.id,
        [
            (
                (_str(r, "organization"), _country(_get(r, "country"))),
                _str(r, "id"),
                pointer("memberships", i, "country"),
            )
            for i, r in _items(data, "memberships")
        ],
        "membership {owner!r} already has this organization and country",
    )
    # Roles and notes have ids of their own, which another person or relation may hold.
    for collection, child, model, parent in (
        ("people", "roles", m.Role, "person_id"),
        ("relations", "notes", m.RelationNote, "relation_id"),
    ):
        tbl = table(model)
        problems += _clashes(
            connection,
            (tbl.c.id,),
            tbl.c[parent],
            [
                ((_str(nested, "id"),), _str(record, "id"), pointer(collection, i, child, j, "id"))
                for i, record in _items(data, collection)
                for j, nested in _items(record, child)
            ],
            f"this id belongs to {ENTITY_TYPE[collection]} {{owner!r}}",
        )
    return problems


def _clashes(
    connection: Connection,
    key: tuple[Any, ...],
    owner: Any,
    wanted: list[tuple[tuple[Any, ...] | None, str | None, str]],
    message: str,
) -> list[Problem]:
    """``wanted`` holds (key value, owner id, pointer): a problem where the database holds
    the key value under another owner."""
    complete = [w for w in wanted if w[0] is not None and None not in w[0] and w[1] is not None]
    values = sorted({w[0] for w in complete if w[0] is not None})
    stored: dict[tuple[Any, ...], str] = {}
    for start in range(0, len(values), 500):
        chunk = values[start : start + 500]
        where = tuple_(*key).in_(chunk) if len(key) > 1 else key[0].in_([v[0] for v in chunk])
        for row in connection.execute(select(*key, owner).where(where)):
            stored[tuple(row[:-1])] = row[-1]
    return [
        Problem(where, message.format(owner=stored[value]))
        for value, id_, where in complete
        if value is not None and stored.get(value, id_) != id_
    ]


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


# --- revision and change feed ---------------------------------------------------------------


def bump_revision(
    connection: Connection, changes: Iterable[tuple[str, str, str]], seed_digest: str | None = None
) -> int:
    """Advance the dataset revision by one and record ``(action, type, id)`` for each change."""
    state = table(m.DatasetState)
    now = datetime.now(UTC)
    current = connection.execute(select(state.c.revision).where(state.c.id == 1)).scalar()
    values: dict[str, Any] = {"updated_at": now}
    if seed_digest is not None:
        values["seed_digest"] = seed_digest
    if current is None:
        revision = 1
        connection.execute(insert(state).values(id=1, revision=revision, **values))
    else:
        revision = current + 1
        connection.execute(update(state).where(state.c.id == 1).values(revision=revision, **values))
    rows = [
        {"revision": revision, "at": now, "action": action, "entity_type": type_, "entity_id": id_}
        for action, type_, id_ in changes
    ]
    if rows:
        connection.execute(insert(table(m.DatasetChange)), rows)
    return revision


def current_state(connection: Connection) -> tuple[int, str | None]:
    state = table(m.DatasetState)
    row = connection.execute(select(state.c.revision, state.c.seed_digest)).first()
    return (row[0], row[1]) if row else (0, None)


# --- load and export ----------------------------------------------------------------------


class _DryRun(Exception):
    pass


def load(
    engine: Engine,
    data: Dataset | Path | bytes | str | dict[str, Any],
    *,
    dry_run: bool = False,
    seed_digest: str | None = None,
) -> LoadReport:
    """Write a dataset as upserts in one transaction: all of it or none of it.

    ``data`` is a validated :class:`Dataset`, or a file or its content, then validated
    against the database in the same transaction, so that :class:`DatasetInvalid` lists
    every problem at once (shapes, duplicates, references and conflicts).
    """
    report = LoadReport(dry_run=dry_run)
    try:
        with write_transaction(engine) as connection:
            if isinstance(data, Dataset):
                dataset = data
                problems = list(_duplicates(dataset))
                problems += check_references(dataset, connection)
                problems += check_conflicts(dataset, connection)
                if problems:
                    raise DatasetInvalid(_one_per_pointer(problems))
            else:
                raw = _read(data) if isinstance(data, Path) else data
                dataset = parse_dataset(raw, connection)
            stored = _stored_records(connection, dataset)
            changes: list[tuple[str, str, str]] = []
            for collection in COLLECTIONS:
                for record in getattr(dataset, collection):
                    before = stored.get((collection, record.id))
                    if before == _public(collection, record):
                        report.count(collection, "unchanged")
                        continue
                    if before is None:
                        insert_rows(connection, entity_rows(collection, record))
                        report.count(collection, "created")
                        changes.append(("create", ENTITY_TYPE[collection], record.id))
                    else:
                        replace_entity(connection, collection, record)
                        report.count(collection, "updated")
                        changes.append(("update", ENTITY_TYPE[collection], record.id))
            from app import search  # search sits beside dataset; imported late to keep it optional

            search.reindex(connection, changes)
            if changes:
                report.revision = bump_revision(connection, changes, seed_digest)
            else:
                # Nothing was written, so the revision stays: ETags and the change feed
                # must not move. The digest still records which file is loaded.
                if seed_digest is not None:
                    _set_seed_digest(connection, seed_digest)
                report.revision = current_state(connection)[0]
            if dry_run:
                raise _DryRun
    except _DryRun:
        pass
    return report


def _set_seed_digest(connection: Connection, seed_digest: str) -> None:
    state = table(m.DatasetState)
    done = connection.execute(
        update(state).where(state.c.id == 1).values(seed_digest=seed_digest)
    ).rowcount
    if not done:
        connection.execute(insert(state).values(id=1, revision=0, seed_digest=seed_digest))


def _public(collection: str, record: Any) -> dict[str, Any]:
    """A record as export writes it, so that a file record and a stored one compare equal."""
    return _normalize(collection, record.model_dump(mode="json"))


def _normalize(collection: str, data: dict[str, Any]) -> dict[str, Any]:
    if collection == "relations" or (collection == "figures" and data.get("countries")):
        data["countries"] = sorted(data["countries"])
    if collection == "trade" and data["flow"] == "turnover":
        data["reporter"], data["partner"] = sorted((data["reporter"], data["partner"]))
    if collection == "people":
        data["roles"] = sorted(data["roles"], key=lambda role: role["id"])
    if collection in ("treaties", "routes"):
        key = "parties" if collection == "treaties" else "countries"
        data[key] = list(dict.fromkeys(data[key]))
    return data


def _stored_records(connection: Connection, dataset: Dataset) -> dict[tuple[str, str], Any]:
    """The stored versions of the records the dataset names, in export form."""
    wanted = {c: [r.id for r in getattr(dataset, c)] for c in COLLECTIONS}
    found: dict[tuple[str, str], Any] = {}
    for collection, ids in wanted.items():
        for start in range(0, len(ids), 500):
            for record in export_records(connection, collection, ids[start : start + 500]):
                found[collection, record["id"]] = record
    return found


def export_records(
    connection: Connection, collection: str, ids: Sequence[str] | None = None
) -> list[dict[str, Any]]:
    """Stored entities of one collection in the dataset format, ordered by id."""
    return read_collection(connection, collection, ids)


def export_dataset(connection: Connection) -> dict[str, Any]:
    data: dict[str, Any] = {"format": FORMAT}
    for collection in COLLECTIONS:
        data[collection] = export_records(connection, collection)
    return data


def dumps(data: dict[str, Any]) -> bytes:
    """The canonical bytes of a dataset: two-space indent, keys in model order, final newline."""
    return orjson.dumps(data, option=orjson.OPT_INDENT_2) + b"\n"


def file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise DatasetInvalid([Problem("", f"cannot read {path}: {exc.strerror}")]) from None


def read_file(
    path: Path, connection: Connection | None = None, *, standalone: bool = False
) -> Dataset:
    return parse_dataset(_read(path), connection, standalone=standalone)


def check_file(path: Path) -> list[Problem]:
    """Every problem of a file that must stand on its own (``dyad check``)."""
    try:
        read_file(path, standalone=True)
    except DatasetInvalid as exc:
        return exc.problems
    return []


def json_schema() -> str:
    return json.dumps(Dataset.model_json_schema(), indent=2, ensure_ascii=False) + "\n"


def count_rows(connection: Connection, model: type[Any]) -> int:
    return int(connection.execute(select(func.count()).select_from(table(model))).scalar_one())
