"""Loading and exporting the dataset: all-or-nothing upserts, the revision and the change feed.

A dataset is a JSON object with one list per collection. Loading validates the whole file
first (shapes, then references against the file and the database) and reports *every*
problem with a JSON pointer; only a dataset without problems is written, in one
transaction, as upserts: a record that equals what is stored is left alone, so loading the
same file twice changes nothing.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import Connection, Engine, insert, select, update

from app import models as m
from app import search
from app.db import write_transaction
from app.models import table
from app.readers import read_collection
from app.records import (
    COLLECTIONS,
    ENTITY_TYPE,
    FORMAT,
    Dataset,
)
from app.validation import (
    DatasetInvalid,
    Problem,
    _read,
    check_file,
    check_references,
    dataset_problems,
    parse_dataset,
    pointer,
    read_file,
)
from app.writers import delete_entity, entity_rows, insert_rows, replace_entity

__all__ = [
    "COLLECTIONS",
    "DatasetInvalid",
    "LoadReport",
    "Problem",
    "check_file",
    "check_references",
    "delete_entity",
    "dumps",
    "export_dataset",
    "load",
    "parse_dataset",
    "pointer",
    "read_file",
]


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
                problems = dataset_problems(dataset, connection)
                if problems:
                    raise DatasetInvalid(problems)
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
            for record in read_collection(connection, collection, ids[start : start + 500]):
                found[collection, record["id"]] = record
    return found


def export_dataset(connection: Connection) -> dict[str, Any]:
    data: dict[str, Any] = {"format": FORMAT}
    for collection in COLLECTIONS:
        data[collection] = read_collection(connection, collection)
    return data


def dumps(data: dict[str, Any]) -> bytes:
    """The canonical bytes of a dataset: two-space indent, keys in model order, final newline."""
    return orjson.dumps(data, option=orjson.OPT_INDENT_2) + b"\n"


def file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
