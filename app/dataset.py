"""Loading and exporting the dataset: all-or-nothing upserts, the revision and the change feed.

A dataset is a JSON object with one list per collection. Loading validates the whole file
first (shapes, then references against the file and the database) and reports *every*
problem with a JSON pointer; only a dataset without problems is written, in one
transaction, as upserts: a record that equals what is stored is left alone, so loading the
same file twice changes nothing.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence
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
    "export_form",
    "load",
    "parse_dataset",
    "pointer",
    "read_file",
    "upsert_records",
]

Change = tuple[str, str, str]  # (action, entity type, id), as the change feed records it
LOAD_CHUNK = 5_000  # records written between two progress reports


@dataclass
class LoadReport:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped: int = 0
    revision: int = 0
    dry_run: bool = False
    by_collection: dict[str, dict[str, int]] = field(default_factory=dict)
    skipped_by: dict[str, int] = field(default_factory=dict)

    def count(self, collection: str, outcome: str) -> None:
        setattr(self, outcome, getattr(self, outcome) + 1)
        counts = self.by_collection.setdefault(
            collection, {"created": 0, "updated": 0, "unchanged": 0}
        )
        counts[outcome] += 1

    def skip(self, reason: str, count: int = 1) -> None:
        """Input left out on purpose (an import's aggregate rows), counted by reason."""
        self.skipped += count
        self.skipped_by[reason] = self.skipped_by.get(reason, 0) + count

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
    connection: Connection, changes: Iterable[Change], seed_digest: str | None = None
) -> int:
    """Advance the dataset revision by one and record ``(action, type, id)`` for each change."""
    now = datetime.now(UTC)
    revision = lock_revision(connection) + 1
    record_changes(connection, revision, changes, now)
    set_revision(connection, revision, now, seed_digest)
    return revision


def lock_revision(connection: Connection) -> int:
    """The current revision, locked until the transaction ends (on PostgreSQL; a SQLite write
    transaction holds the whole database already), so that two writers cannot both make
    the next one."""
    state = table(m.DatasetState)
    query = select(state.c.revision).where(state.c.id == 1).with_for_update()
    return connection.execute(query).scalar() or 0


def record_changes(
    connection: Connection, revision: int, changes: Iterable[Change], at: datetime
) -> None:
    """Append changes to the feed under ``revision``: a large write records them as it goes,
    batch by batch, instead of holding them all until it sets the revision."""
    rows = [
        {"revision": revision, "at": at, "action": action, "entity_type": type_, "entity_id": id_}
        for action, type_, id_ in changes
    ]
    if rows:
        connection.execute(insert(table(m.DatasetChange)), rows)


def set_revision(
    connection: Connection, revision: int, at: datetime, seed_digest: str | None = None
) -> None:
    """Make ``revision`` the dataset's current revision."""
    state = table(m.DatasetState)
    values: dict[str, Any] = {"revision": revision, "updated_at": at}
    if seed_digest is not None:
        values["seed_digest"] = seed_digest
    done = connection.execute(update(state).where(state.c.id == 1).values(values)).rowcount
    if not done:
        connection.execute(insert(state).values(id=1, **values))


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
    progress: Callable[[int], None] | None = None,
) -> LoadReport:
    """Write a dataset as upserts in one transaction: all of it or none of it.

    ``data`` is a validated :class:`Dataset`, or a file or its content, then validated
    against the database in the same transaction, so that :class:`DatasetInvalid` lists
    every problem at once (shapes, duplicates, references and conflicts). ``progress`` is
    told how many records are written so far, every few thousand.
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
            changes: list[Change] = []
            done = 0
            for collection in COLLECTIONS:
                records = getattr(dataset, collection)
                for start in range(0, len(records), LOAD_CHUNK):
                    chunk = records[start : start + LOAD_CHUNK]
                    changes += upsert_records(connection, collection, chunk, report)
                    done += len(chunk)
                    if progress is not None:
                        progress(done)
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


def export_form(collection: str, record: Any) -> dict[str, Any]:
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


def upsert_records(
    connection: Connection, collection: str, records: Sequence[Any], report: LoadReport
) -> list[Change]:
    """Write records of one collection as upserts, counting each outcome in ``report``:
    new ones are inserted together (one executemany per table), changed ones replaced, and
    those equal to what is stored left alone. Returns the changes made, for the feed."""
    stored: dict[str, Any] = {}
    ids = [record.id for record in records]
    for start in range(0, len(ids), 500):
        for found in read_collection(connection, collection, ids[start : start + 500]):
            stored[found["id"]] = found
    changes: list[Change] = []
    new_rows = []
    for record in records:
        before = stored.get(record.id)
        if before is None:
            new_rows += entity_rows(collection, record)
            report.count(collection, "created")
            changes.append(("create", ENTITY_TYPE[collection], record.id))
        elif before == export_form(collection, record):
            report.count(collection, "unchanged")
        else:
            replace_entity(connection, collection, record)
            report.count(collection, "updated")
            changes.append(("update", ENTITY_TYPE[collection], record.id))
    if new_rows:
        insert_rows(connection, new_rows)
    return changes


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
