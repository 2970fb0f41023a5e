"""Loading and exporting the dataset: all-or-nothing upserts, the revision and the change feed.

A dataset is a JSON object with one list per collection. Loading validates the whole file
first (shapes, then references against the file and the database) and reports *every*
problem with a JSON pointer; only a dataset without problems is written, in one
transaction, as upserts: a record that equals what is stored is left alone, so loading the
same file twice changes nothing. Many trade figures citing one source (a Comtrade import)
are upserted in batches by :class:`TradeUpserts`, with set-based SQL.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Engine,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    and_,
    case,
    cast,
    delete,
    exists,
    false,
    func,
    insert,
    literal,
    literal_column,
    select,
    text,
    update,
)
from sqlalchemy.sql.expression import bindparam

from app import models as m
from app import search
from app.db import bulk_insert, is_sqlite, write_transaction
from app.models import table
from app.readers import read_collection
from app.records import (
    COLLECTIONS,
    ENTITY_TYPE,
    FORMAT,
    MAIN_TABLE,
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
    "TradeUpserts",
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

    def count(self, collection: str, outcome: str, number: int = 1) -> None:
        """Records of ``collection`` that were ``created``, ``updated`` or ``unchanged``."""
        setattr(self, outcome, getattr(self, outcome) + number)
        counts = self.by_collection.setdefault(
            collection, {"created": 0, "updated": 0, "unchanged": 0}
        )
        counts[outcome] += number

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
    refresh_statistics(engine, report)
    return report


ANALYZE_AFTER = 10_000


def refresh_statistics(engine: Engine, report: LoadReport) -> None:
    """After a large load, VACUUM (ANALYZE) PostgreSQL's tables at once, not when autovacuum
    gets to them (a minute or more later, or never where it is off).

    Until then the planner believes a freshly loaded table nearly empty (it hashed every
    trade citation to join the ninety of a dossier: 76 ms where the index takes 1 ms), and
    no page is marked all-visible, so an index-only scan reads the table too (the page at
    offset 100,000 of /v1/trade: 950 ms instead of 20). SQLite needs neither.
    """
    if report.dry_run or report.created + report.updated < ANALYZE_AFTER or is_sqlite(engine):
        return
    # VACUUM runs outside a transaction, with no statement timeout (it takes seconds); the
    # connection goes back to the pool with its own timeout again.
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.exec_driver_sql("SET statement_timeout = 0")
        try:
            connection.exec_driver_sql("VACUUM (ANALYZE)")
        finally:
            connection.exec_driver_sql("RESET statement_timeout")


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


# --- many trade figures at once ------------------------------------------------------------

# A trade figure as :class:`TradeUpserts` takes it: its place in the input, id, reporter,
# partner, year, flow, value in whole units of CURRENCY, the quote that cites it, and the
# title and body of its search document (body None: the usual one, see usual_body).
StagedTrade = tuple[int, str, str, str, int, str, int, str, str, str | None]
CURRENCY = "USD"


def _stage_table(name: str, *extra: Column[Any]) -> Table:
    return Table(
        name,
        MetaData(),
        Column("seq", Integer, nullable=False),
        Column("id", String(120), nullable=False),
        Column("reporter", String(2), nullable=False),
        Column("partner", String(2), nullable=False),
        Column("year", Integer, nullable=False),
        Column("flow", String(10), nullable=False),
        Column("value", BigInteger, nullable=False),
        Column("quote", Text, nullable=False),
        Column("title", Text, nullable=False),
        Column("body", Text),
        *extra,
        prefixes=["TEMPORARY"],
    )


# A batch staged in id order is read in that order: its figures are looked up and inserted
# in the order of the indexes of figures, citations and documents, which then take their
# keys page after page.
STAGE = _stage_table(
    "trade_stage",
    Column("action", String(10)),  # create, update, or None for a figure stored as it is
)
STAGE_COLUMNS = [c.name for c in STAGE.c if c.name != "action"]
STAGE_ROWS = 3_000  # rows staged per call: one INSERT on SQLite (30,000 parameters of 32,766)
# SQLite's page caches while TradeUpserts writes (2 MiB each by default): the main one, since
# the indexes take random keys and a page not in the cache is read again; the temporary
# one, to hold a staged batch. Together a third of the 300 MB an import may take.
IMPORT_CACHE_KIB = {"main": 65_536, "temp": 32_768}


def usual_body(value: int, quote: str) -> str:
    """The body of a trade figure's search document, as :func:`app.search.document` makes it
    for one citation whose quote needs no cleaning; the SQL of TradeUpserts makes it alike."""
    return f"{value} {CURRENCY}{search.SEPARATOR}{quote}"


def _trade_upsert_statements(dialect: str) -> dict[str, Any]:
    """The statements of :class:`TradeUpserts` on SQLite or PostgreSQL."""
    store = search.ENTRY if dialect == "sqlite" else search.DOCUMENT
    trade, cite, change = MAIN_TABLE["trade"], table(m.Citation), table(m.DatasetChange)
    s = STAGE.c
    changed = s.action.is_not(None)
    same_figure = exists().where(
        trade.c.id == s.id,
        trade.c.reporter == s.reporter,
        trade.c.partner == s.partner,
        trade.c.year == s.year,
        trade.c.flow == s.flow,
        trade.c.value == s.value,
        trade.c.currency == CURRENCY,
        trade.c.approximate == false(),
    )
    # One citation, of the source, with the quote: its count, and the only source and quote
    # it has as their max (one aggregate over the fact's index; a condition on source_id
    # would let SQLite pick the index of the source, which every imported row shares).
    same_citations = (
        select(
            and_(
                func.count() == 1,
                func.max(cite.c.source_id) == bindparam("source"),
                func.max(cite.c.quote) == s.quote,
            )
        )
        .where(cite.c.fact_type == "trade", cite.c.fact_id == s.id)
        .scalar_subquery()
    )
    figure = {
        "reporter": s.reporter,
        "partner": s.partner,
        "year": s.year,
        "flow": s.flow,
        "value": s.value,
        "currency": literal(CURRENCY),
        "approximate": false(),
    }
    updated = select(s.id).where(s.action == "update")
    # A batch is staged in id order (see TradeUpserts.stage): on SQLite that is the order of
    # its rowids, which a scan reads without a sort.
    by_id = literal_column("trade_stage.rowid") if dialect == "sqlite" else s.id
    body = func.coalesce(
        s.body, cast(s.value, String) + literal(f" {CURRENCY}{search.SEPARATOR}") + s.quote
    )
    return {
        # Only figures that differ from the stored ones are marked: a file imported again
        # costs lookups, no writes.
        "classify": update(STAGE)
        .where(~and_(same_figure, same_citations))
        .values(action=case((~exists().where(trade.c.id == s.id), "create"), else_="update")),
        "counts": select(s.action, func.count()).group_by(s.action),
        "create": insert(trade).from_select(
            ["id", *figure],
            select(s.id, *figure.values()).where(s.action == "create").order_by(by_id),
        ),
        "update": update(trade).where(trade.c.id == s.id, s.action == "update").values(figure),
        "uncite": delete(cite).where(cite.c.fact_type == "trade", cite.c.fact_id.in_(updated)),
        "cite": insert(cite).from_select(
            ["fact_type", "fact_id", "position", "source_id", "quote"],
            select(literal("trade"), s.id, literal(0), bindparam("source"), s.quote)
            .where(changed)
            .order_by(by_id),
        ),
        "feed": insert(change).from_select(
            ["revision", "at", "action", "entity_type", "entity_id"],
            select(
                bindparam("revision", type_=Integer),
                bindparam("at", type_=change.c.at.type),
                s.action,
                literal("trade"),
                s.id,
            )
            .where(changed)
            .order_by(s.seq),
        ),
        "unindex": delete(store).where(store.c.type == "trade", store.c.id.in_(updated)),
        # One statement for the batch: on SQLite, FTS5 flushes its pending terms at the end
        # of every statement that writes it (an executemany of documents writes one each).
        "index": insert(store).from_select(
            ["type", "id", "title", "body"],
            select(literal("trade"), s.id, s.title, body).where(changed).order_by(by_id),
        ),
        # PostgreSQL leaves deleted rows of a temporary table in place (no autovacuum
        # visits it), for every later batch to scan again: truncate instead.
        "clear": delete(STAGE) if dialect == "sqlite" else text("TRUNCATE trade_stage"),
    }


class TradeUpserts:
    """Upserts trade figures that cite one source, in batches of any size, with a dozen
    set-based statements per batch whatever its size.

    A batch goes into a temporary table (:meth:`stage`, a few thousand rows at a time, best
    in id order); :meth:`write` marks each figure there new,
    changed or equal to what is stored (one UPDATE), then writes the figures, their
    citations, the change feed and the search documents with one statement each, as
    :func:`upsert_records`, :func:`record_changes` and :func:`app.search.reindex` would,
    without a query or an object per figure. Larger batches are faster (each statement
    walks the indexes once, in id order). Open it inside a write transaction, which it
    leaves as it found it (the temporary table goes; on SQLite the page caches are larger
    while it is open).
    """

    statements = {
        dialect: _trade_upsert_statements(dialect) for dialect in ("sqlite", "postgresql")
    }

    def __init__(self, connection: Connection, source_id: str, revision: int, at: datetime) -> None:
        self.connection = connection
        self.parameters = {"source": source_id, "revision": revision, "at": at}
        self.sqlite = connection.dialect.name == "sqlite"
        self.cache_sizes: dict[str, int] = {}

    def __enter__(self) -> TradeUpserts:
        if self.sqlite:
            for schema, kib in IMPORT_CACHE_KIB.items():
                self.cache_sizes[schema] = self._pragma(f"{schema}.cache_size")[0]
                self._pragma(f"{schema}.cache_size = {-kib}")
        STAGE.create(self.connection)
        return self

    def __exit__(self, error: type[BaseException] | None, *_: object) -> None:
        if error is None:  # else the rollback takes them away
            STAGE.drop(self.connection)
        for schema, size in self.cache_sizes.items():
            self._pragma(f"{schema}.cache_size = {int(size)}")

    def _pragma(self, text: str) -> Any:
        # On the driver's connection: it answers whatever state the transaction is in.
        driver: Any = self.connection.connection.driver_connection
        return driver.execute(f"PRAGMA {text}").fetchone()

    def stage(self, rows: Sequence[StagedTrade]) -> None:
        """Add figures to the batch (ids unique within it); many calls may make one. A batch
        staged in id order is written fastest."""
        bulk_insert(self.connection, STAGE.name, STAGE_COLUMNS, rows)

    def write(self, report: LoadReport) -> None:
        """Upsert the batch staged so far, counting each outcome in ``report``."""
        run = self.connection.execute
        statements = self.statements["sqlite" if self.sqlite else "postgresql"]
        run(statements["classify"], self.parameters)
        counts = {action: count for action, count in run(statements["counts"])}
        if counts.get("create"):
            run(statements["create"])
        if counts.get("update"):
            run(statements["update"])
            run(statements["uncite"])
            run(statements["unindex"])
        if counts.get("create") or counts.get("update"):
            run(statements["cite"], self.parameters)
            run(statements["feed"], self.parameters)
            run(statements["index"])
        run(statements["clear"])
        for action, outcome in (("create", "created"), ("update", "updated"), (None, "unchanged")):
            report.count("trade", outcome, counts.get(action, 0))


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
