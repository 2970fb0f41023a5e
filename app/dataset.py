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
from pydantic import ValidationError
from sqlalchemy import Connection, Engine, Table, delete, func, insert, select, update

from app import models as m
from app.db import write_transaction
from app.models import table
from app.readers import read_collection
from app.records import (
    COLLECTIONS,
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
from app.values import PartialDate


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


def parse_dataset(raw: bytes | str | dict[str, Any]) -> Dataset:
    """Validate the shape of a dataset; raise :class:`DatasetInvalid` with every problem."""
    if not isinstance(raw, dict):
        try:
            raw = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise DatasetInvalid([Problem("", f"not valid JSON: {exc}")]) from None
    if not isinstance(raw, dict):
        raise DatasetInvalid([Problem("", "a dataset is a JSON object")])
    try:
        dataset = Dataset.model_validate(raw)
    except ValidationError as exc:
        raise DatasetInvalid(
            [
                Problem(
                    pointer(*(p for p in e["loc"] if not str(p).startswith("function-"))),
                    e["msg"].removeprefix("Value error, "),
                )
                for e in exc.errors(include_url=False)
            ]
        ) from None
    problems = list(_duplicate_ids(dataset))
    if problems:
        raise DatasetInvalid(problems)
    return dataset


def _duplicate_ids(dataset: Dataset) -> Iterator[Problem]:
    seen: dict[tuple[str, str], str] = {}

    def check(kind: str, id_: str, where: str) -> Iterator[Problem]:
        if (kind, id_) in seen:
            yield Problem(where, f"duplicate id {id_!r} (first at {seen[kind, id_]})")
        else:
            seen[kind, id_] = where

    for collection in COLLECTIONS:
        for i, record in enumerate(getattr(dataset, collection)):
            yield from check(collection, record.id, pointer(collection, i, "id"))
    for i, person in enumerate(dataset.people):
        for j, role in enumerate(person.roles):
            yield from check("roles", role.id, pointer("people", i, "roles", j, "id"))
    for i, relation in enumerate(dataset.relations):
        for j, note in enumerate(relation.notes):
            yield from check("notes", note.id, pointer("relations", i, "notes", j, "id"))


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


def check_references(dataset: Dataset, connection: Connection | None = None) -> list[Problem]:
    """Every id a record names must exist, in the dataset itself or in the database."""
    wanted: dict[str, list[tuple[str, str]]] = {c: [] for c in COLLECTIONS}

    def want(collection: str, id_: str | None, where: str) -> None:
        if id_ is not None:
            wanted[collection].append((id_, where))

    def cites(path: tuple[str | int, ...], sources: list[Cite]) -> None:
        for k, cite in enumerate(sources):
            want("sources", cite.source, pointer(*path, "sources", k, "source"))

    for i, p in enumerate(dataset.people):
        for j, role in enumerate(p.roles):
            want(
                "organizations", role.organization, pointer("people", i, "roles", j, "organization")
            )
            cites(("people", i, "roles", j), role.sources)
    for i, r in enumerate(dataset.relations):
        cites(("relations", i), r.sources)
        for j, note in enumerate(r.notes):
            cites(("relations", i, "notes", j), note.sources)
    for i, t in enumerate(dataset.treaties):
        cites(("treaties", i), t.sources)
    for i, v in enumerate(dataset.visits):
        cites(("visits", i), v.sources)
        for j, part in enumerate(v.participants):
            want("people", part.person, pointer("visits", i, "participants", j, "person"))
    for i, tr in enumerate(dataset.trade):
        cites(("trade", i), tr.sources)
    for i, ro in enumerate(dataset.routes):
        cites(("routes", i), ro.sources)
    for i, ms in enumerate(dataset.memberships):
        cites(("memberships", i), ms.sources)
        want("organizations", ms.organization, pointer("memberships", i, "organization"))
    for i, fg in enumerate(dataset.figures):
        cites(("figures", i), fg.sources)
        want("routes", fg.route, pointer("figures", i, "route"))

    problems = []
    for collection, refs in wanted.items():
        in_file = {record.id for record in getattr(dataset, collection)}
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


# --- rows -------------------------------------------------------------------------------

Rows = list[tuple[Table, dict[str, Any]]]


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
                    "published_at": r.published_at.isoformat() if r.published_at else None,
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


def delete_entity(connection: Connection, collection: str, id_: str) -> None:
    """Remove an entity with its children and every citation of it and of its nested facts."""
    cit = table(m.Citation)
    if collection in NESTED_FACTS:
        fact_type, model, parent = NESTED_FACTS[collection]
        nested_ids = select(table(model).c.id).where(table(model).c[parent] == id_)
        connection.execute(
            delete(cit).where(cit.c.fact_type == fact_type, cit.c.fact_id.in_(nested_ids))
        )
    connection.execute(
        delete(cit).where(cit.c.fact_type == ENTITY_TYPE[collection], cit.c.fact_id == id_)
    )
    # Child rows go with their parent through ON DELETE CASCADE (foreign_keys=ON on SQLite).
    main = MAIN_TABLE[collection]
    connection.execute(delete(main).where(main.c.id == id_))


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
    dataset: Dataset,
    *,
    dry_run: bool = False,
    seed_digest: str | None = None,
) -> LoadReport:
    """Write a validated dataset as upserts in one transaction: all of it or none of it."""
    report = LoadReport(dry_run=dry_run)
    try:
        with write_transaction(engine) as connection:
            problems = check_references(dataset, connection)
            if problems:
                raise DatasetInvalid(problems)
            stored = _stored_records(connection, dataset)
            changes: list[tuple[str, str, str]] = []
            for collection in COLLECTIONS:
                for record in getattr(dataset, collection):
                    before = stored.get((collection, record.id))
                    after = _public(collection, record)
                    if before == after:
                        report.count(collection, "unchanged")
                        continue
                    if before is not None:
                        delete_entity(connection, collection, record.id)
                    insert_rows(connection, entity_rows(collection, record))
                    action = "update" if before is not None else "create"
                    report.count(collection, "updated" if before is not None else "created")
                    changes.append((action, ENTITY_TYPE[collection], record.id))
            from app import search  # search sits beside dataset; imported late to keep it optional

            search.reindex(connection, changes)
            if changes or seed_digest is not None:
                report.revision = bump_revision(connection, changes, seed_digest)
            else:
                report.revision = current_state(connection)[0]
            if dry_run:
                raise _DryRun
    except _DryRun:
        pass
    return report


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


def read_file(path: Path) -> Dataset:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DatasetInvalid([Problem("", f"cannot read {path}: {exc.strerror}")]) from None
    return parse_dataset(raw)


def json_schema() -> str:
    return json.dumps(Dataset.model_json_schema(), indent=2, ensure_ascii=False) + "\n"


def count_rows(connection: Connection, model: type[Any]) -> int:
    return int(connection.execute(select(func.count()).select_from(table(model))).scalar_one())
