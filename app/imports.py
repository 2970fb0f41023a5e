"""Bulk imports, all or nothing: ``POST /v1/imports`` and ``dyad import``.

A dataset in the seed format goes through :func:`app.dataset.load`. A UN Comtrade CSV
(:mod:`app.comtrade`) is read once, as a stream, and written in one transaction,
:data:`BATCH_SIZE` figures at a time (:class:`app.dataset.TradeUpserts`: a dozen set-based
statements per batch), each batch's changes going to the feed under the revision the import
makes at the end; a thread of its own reads and sorts the next batch while one is written.
From the first problem on nothing more is written, but the file is read to its end so that
every problem is listed; then the transaction rolls back. So a million rows never sit in
memory together, and a failure anywhere leaves the database as it was. A dry run does all
the writing and then rolls back, so its counts are exactly those of the real import.
"""

from __future__ import annotations

import re
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from itertools import islice
from operator import itemgetter
from queue import Full, Queue
from typing import IO, Annotated, Any, Literal, TypeVar

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import Connection, Engine, select
from starlette.concurrency import run_in_threadpool

from app import dataset, search
from app import models as m
from app.api_keys import ImportKey
from app.comtrade import SKIP_REASONS, ComtradeFile, Figure
from app.countries import EngineDep
from app.dataset import DatasetInvalid, LoadReport, StagedTrade
from app.db import write_transaction
from app.models import table
from app.problems import InvalidInput, Problem, problem_responses
from app.readers import read_collection
from app.records import COLLECTIONS, SourceRecord
from app.validation import parse_dataset

Format = Literal["seed", "comtrade"]
BATCH_SIZE = 50_000  # figures per set-based round; staged a few thousand at a time
SPOOL_BYTES = 1 << 20  # an upload past this size waits on disk, not in memory
# Told (phase, completed, total, rows), phase "write" (a CSV is read and written in one
# pass); completed and total count bytes for a CSV, records for a dataset.
Progress = Callable[[str, int, int, int], None]
# Called inside the transaction after each batch with the rows written so far: a test
# raises from it to show that a failure half way leaves the database as it was.
after_batch: Callable[[int], None] | None = None

T = TypeVar("T")
_BY_ID = itemgetter(1)  # of a StagedTrade


@dataclass(frozen=True)
class SourceSpec:
    """The source that imported Comtrade rows cite: an existing one, or one to create."""

    id: str | None = None
    title: str | None = None
    publisher: str | None = None
    url: str | None = None
    published_at: str | None = None

    def given(self) -> dict[str, str]:
        return {f.name: v for f in fields(self) if (v := getattr(self, f.name)) is not None}


class SourceInvalid(Exception):
    """The source options are wrong; ``errors`` holds ``(parameter, message)`` pairs."""

    def __init__(self, errors: list[tuple[str, str]]) -> None:
        super().__init__("; ".join(message for _, message in errors))
        self.errors = errors


class _DryRun(Exception):
    pass


# --- the source of imported rows -------------------------------------------------------------


def source_to_create(connection: Connection, spec: SourceSpec) -> SourceRecord | None:
    """The source record to create for the import, or None when it is stored already.

    A stored source is cited as it is: options that disagree with it are refused rather
    than silently rewriting a source that other facts cite too.
    """
    if spec.id is None:
        raise SourceInvalid(
            [
                (
                    "source_id",
                    "a Comtrade import needs source_id: the id of the source its rows come "
                    "from (with source_title to create it when it does not exist yet)",
                )
            ]
        )
    given = spec.given()
    stored = read_collection(connection, "sources", [spec.id])
    if stored:
        record = _source_record({**stored[0], **given})
        public = dataset.export_form("sources", record)
        differ = [name for name in given if public[name] != stored[0][name]]
        if differ:
            raise SourceInvalid(
                [
                    (
                        f"source_{name}",
                        f"source {spec.id!r} is stored with {name} {stored[0][name]!r}: leave "
                        f"source_{name} out to cite the source as it is",
                    )
                    for name in differ
                ]
            )
        return None
    if spec.title is None:
        raise SourceInvalid(
            [
                (
                    "source_title",
                    f"there is no source {spec.id!r}: give source_title (and source_publisher, "
                    "source_url and source_published_at when known) to create it",
                )
            ]
        )
    return _source_record(given)


def _source_record(data: dict[str, Any]) -> SourceRecord:
    try:
        return SourceRecord.model_validate(data)
    except ValidationError as exc:
        errors = [
            (f"source_{e['loc'][0]}", e["msg"].removeprefix("Value error, "))
            for e in exc.errors(include_url=False)
        ]
        raise SourceInvalid(errors) from None


# --- importing -------------------------------------------------------------------------------


def run_import(
    engine: Engine,
    stream: IO[bytes],
    format_: Format,
    source: SourceSpec,
    *,
    dry_run: bool = False,
    progress: Progress | None = None,
) -> LoadReport:
    """Import a seekable file; raise :class:`DatasetInvalid` or :class:`SourceInvalid`."""
    if format_ == "comtrade":
        return import_comtrade(engine, stream, source, dry_run=dry_run, progress=progress)
    if source.given():
        raise SourceInvalid(
            [
                (
                    f"source_{name}",
                    "applies to format=comtrade only: a dataset in the seed format names the "
                    "sources of its facts itself",
                )
                for name in source.given()
            ]
        )
    return import_seed(engine, stream.read(), dry_run=dry_run, progress=progress)


def import_seed(
    engine: Engine, raw: bytes, *, dry_run: bool = False, progress: Progress | None = None
) -> LoadReport:
    try:
        parsed = parse_dataset(raw)
    except DatasetInvalid:
        # Checked again with the database, so that references are listed too.
        return dataset.load(engine, raw, dry_run=dry_run)
    total = sum(len(getattr(parsed, c)) for c in COLLECTIONS)

    def written(done: int) -> None:
        if progress is not None:
            progress("write", done, total, done)

    return dataset.load(engine, parsed, dry_run=dry_run, progress=written)


def import_comtrade(
    engine: Engine,
    stream: IO[bytes],
    source: SourceSpec,
    *,
    dry_run: bool = False,
    batch_size: int | None = None,
    progress: Progress | None = None,
) -> LoadReport:
    """Import a Comtrade CSV from a seekable binary file, citing ``source``, writing
    ``batch_size`` figures (default :data:`BATCH_SIZE`) at a time."""
    with engine.connect() as connection:
        source_to_create(connection, source)  # refuse bad options before reading anything
    assert source.id is not None
    size = stream.seek(0, 2)
    stream.seek(0)

    def told(done: int, rows: int) -> None:
        if progress is not None:
            progress("write", done, size, rows)

    rows = ComtradeFile(stream, source.id, progress=told)
    report = LoadReport(dry_run=dry_run)
    try:
        with write_transaction(engine) as connection:
            revision = dataset.lock_revision(connection) + 1
            at = datetime.now(UTC)
            new_source = source_to_create(connection, source)
            if new_source is not None:
                changes = dataset.upsert_records(connection, "sources", [new_source], report)
                dataset.record_changes(connection, revision, changes, at)
                search.reindex(connection, changes)
            staged = _staged(rows.figures(), _country_names(connection), source.id)
            batches = _chunks(staged, batch_size or BATCH_SIZE, rows)
            with (
                _read_ahead(batches) as chunks,
                dataset.TradeUpserts(connection, source.id, revision, at) as upserts,
            ):
                written = batch = 0
                for chunk, failed in chunks:
                    if failed:
                        continue  # the import fails: read on only to list every problem
                    if chunk is not None:
                        upserts.stage(chunk)
                        batch += len(chunk)
                        continue
                    upserts.write(report)
                    written, batch = written + batch, 0
                    if after_batch is not None:
                        after_batch(written)
            if rows.problem_count:
                raise DatasetInvalid(rows.all_problems())
            for reason, count in sorted(rows.skipped.items()):
                report.skip(reason, count)
            if report.changed:
                dataset.set_revision(connection, revision, at)
                report.revision = revision
            else:
                report.revision = revision - 1  # nothing written: the revision stays
            if dry_run:
                raise _DryRun
    except _DryRun:
        pass
    dataset.refresh_statistics(engine, report)
    return report


def _chunks(
    staged: Iterator[StagedTrade], size: int, rows: ComtradeFile
) -> Iterator[tuple[list[StagedTrade] | None, bool]]:
    """Batches of ``size`` figures sorted by id (see TradeUpserts.stage), each cut into
    chunks of ``STAGE_ROWS`` and ended by None; with each, whether the file had a problem
    once the batch was read."""
    while True:
        batch = sorted(islice(staged, size), key=_BY_ID)
        if not batch:
            return
        failed = bool(rows.problem_count)
        step = dataset.STAGE_ROWS
        chunks = [batch[start : start + step] for start in range(0, len(batch), step)]
        chunks.reverse()
        del batch  # each chunk goes once staged, while the next batch is read
        while chunks:
            yield chunks.pop(), failed
        yield None, failed


@contextmanager
def _read_ahead(items: Iterator[T], depth: int = 2) -> Iterator[Iterator[T]]:
    """``items`` made in a thread of their own, up to ``depth`` ahead: the database drivers
    let go of the GIL while a statement runs, so the next batch is read and parsed on the
    other core while one is written. The thread's error is raised here; leaving the block
    stops the thread."""
    queue: Queue[tuple[bool, Any]] = Queue(maxsize=depth)
    stop = threading.Event()

    def hand_over(item: tuple[bool, Any]) -> bool:
        while not stop.is_set():
            try:
                queue.put(item, timeout=0.1)
                return True
            except Full:
                pass
        return False

    def produce() -> None:
        try:
            for item in items:
                if not hand_over((False, item)):
                    return
            hand_over((True, None))
        except BaseException as exc:  # raised again where the items are used
            hand_over((True, exc))

    def consume() -> Iterator[T]:
        while True:
            done, item = queue.get()
            if done:
                if item is not None:
                    raise item
                return
            yield item

    thread = threading.Thread(target=produce, name="dyad-import-reader", daemon=True)
    thread.start()
    try:
        yield consume()
    finally:
        stop.set()
        thread.join()


def _country_names(connection: Connection) -> search.Names:
    country = table(m.Country)
    names = connection.execute(select(country.c.iso2, country.c.name))
    return search.Names(country={iso2: name for iso2, name in names})


def _staged(
    figures: Iterable[Figure], names: search.Names, source_id: str
) -> Iterator[StagedTrade]:
    """Figures as TradeUpserts takes them, with their search documents as :mod:`app.search`
    makes them: the title from :func:`app.search.trade_title`; a title and quote in ASCII
    without highlight marks need no cleaning, and the body is then the usual one (anything
    else takes search's own way, which cleans it)."""
    title_of = search.trade_title
    for seq, (id_, reporter, partner, year, flow, value, quote) in enumerate(figures):
        title = title_of(names, reporter, partner, flow, year)
        body = None
        if not (title.isascii() and quote.isascii() and _unmarked(quote)):
            record = {
                "id": id_,
                "reporter": reporter,
                "partner": partner,
                "year": year,
                "flow": flow,
                "value": value,
                "currency": dataset.CURRENCY,
                "sources": [{"source": source_id, "quote": quote}],
            }
            document = search.document_row("trade", record, names)
            title, body = document["title"], document["body"]
            if body == dataset.usual_body(value, quote):
                body = None
        yield seq, id_, reporter, partner, year, flow, value, quote, title, body


def _unmarked(text: str) -> bool:
    return search.MARK not in text and search.UNMARK not in text


# --- HTTP ------------------------------------------------------------------------------------


class UnsupportedMediaType(Problem):
    status = 415
    slug = "unsupported-media-type"


REPORT_EXAMPLE: dict[str, Any] = {
    "format": "comtrade",
    "dry_run": False,
    "created": 1841,
    "updated": 12,
    "unchanged": 40210,
    "skipped": {"world": 122, "flow": 96},
    "revision": 7,
    "collections": {
        "sources": {"created": 1, "updated": 0, "unchanged": 0},
        "trade": {"created": 1840, "updated": 12, "unchanged": 40210},
    },
}
CSV_EXAMPLE = (
    "typeCode,freqCode,refYear,period,reporterCode,reporterISO,reporterDesc,flowCode,"
    "partnerCode,partnerISO,partnerDesc,cmdCode,primaryValue\n"
    "C,A,2021,2021,398,KAZ,Kazakhstan,X,31,AZE,Azerbaijan,TOTAL,231512345.21\n"
    "C,A,2021,2021,398,KAZ,Kazakhstan,X,0,W00,World,TOTAL,60321450000.5\n"
)
MEDIA_TYPES: dict[Format, str] = {"seed": "application/json", "comtrade": "text/csv"}


class ImportReport(BaseModel):
    """What an import wrote or, for a dry run, would write."""

    model_config = ConfigDict(json_schema_extra={"examples": [REPORT_EXAMPLE]})

    format: Format
    dry_run: bool
    created: int = Field(description="Records that were not stored (the source included).")
    updated: int = Field(description="Stored records that the import changed.")
    unchanged: int = Field(description="Records equal to what is stored: left alone.")
    skipped: dict[str, int] = Field(
        description="CSV rows left out on purpose, by reason: "
        + "; ".join(f"`{reason}`: {text}" for reason, text in SKIP_REASONS.items())
        + "."
    )
    revision: int = Field(
        description="The dataset revision after the import (for a dry run, the one it would "
        "make). An import that changes nothing leaves it as it was."
    )
    collections: dict[str, dict[str, int]] = Field(
        description="`created`, `updated` and `unchanged` per collection."
    )

    @classmethod
    def of(cls, format_: Format, report: LoadReport) -> ImportReport:
        return cls(
            format=format_,
            dry_run=report.dry_run,
            created=report.created,
            updated=report.updated,
            unchanged=report.unchanged,
            skipped=report.skipped_by,
            revision=report.revision,
            collections=report.by_collection,
        )


router = APIRouter(prefix="/v1", tags=["imports"])

DESCRIPTION = """
Imports a dataset **all or nothing**: when any record is wrong the import is refused with
every problem listed, and nothing is written. Records are upserts by `id`: one equal to the
stored record is left alone, so importing the same file again changes nothing and keeps the
revision. Everything an import changes makes one revision of the change feed.

- `format=seed` (the default): a dataset in the format of `data/seed.json` and
  `GET /v1/export`, sent as `application/json`.
- `format=comtrade`: a UN Comtrade CSV as its download tool writes it, sent as `text/csv`
  (UTF-8). The columns read are `refYear` (or `period`), `reporterISO` (or `reporterCode`,
  Comtrade's numeric code), `partnerISO` (or `partnerCode`), `flowCode` (`X` export, `M`
  import) and `primaryValue` (US dollars, rounded half to even); other columns are ignored.
  Rows for the partner World, Comtrade areas that are no country, other flows (re-exports,
  re-imports) and breakdowns of a total are skipped and counted in `skipped`. Each row
  becomes the trade figure `comtrade-<reporter>-<partner>-<year>-<flow>`, citing the source
  `source_id` with the row as the file has it. A source that does not exist yet is created
  from `source_title` and the other `source_` parameters.

Problems are in the `errors` of a `422` answer. Each has a `pointer`: a JSON pointer into
the dataset (`/treaties/3/signed`), or for a CSV `/line/<n>/<column>` (`n` the line of the
file, the header being line 1; the column as the header names it; `/line/<n>` for the whole
line); parameters are named by `param`. `dry_run=true` checks and counts exactly as the
import would, and writes nothing.
"""


@router.post(
    "/imports",
    operation_id="import_dataset",
    summary="Import a dataset or a UN Comtrade CSV, all or nothing",
    description=DESCRIPTION,
    response_model=ImportReport,
    responses={
        200: {
            "description": "The import was written (or, for a dry run, would be).",
            "content": {"application/json": {"example": REPORT_EXAMPLE}},
        },
        **problem_responses(401, 403, 415, 422),
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "description": "The dataset (`format=seed`) or the CSV (`format=comtrade`).",
            "content": {
                "application/json": {"schema": {"$ref": "#/components/schemas/Dataset"}},
                "text/csv": {"schema": {"type": "string"}, "example": CSV_EXAMPLE},
            },
        }
    },
)
async def import_dataset(
    request: Request,
    key: ImportKey,
    engine: EngineDep,
    format_: Annotated[
        Format, Query(alias="format", description="`seed` (JSON) or `comtrade` (CSV).")
    ] = "seed",
    dry_run: Annotated[
        bool, Query(description="Check and count as the import would; write nothing.")
    ] = False,
    source_id: Annotated[
        str | None,
        Query(max_length=120, description="comtrade: the id of the source the rows cite."),
    ] = None,
    source_title: Annotated[
        str | None,
        Query(max_length=300, description="comtrade: the title of a source to create."),
    ] = None,
    source_publisher: Annotated[
        str | None, Query(max_length=200, description="comtrade: its publisher.")
    ] = None,
    source_url: Annotated[
        str | None, Query(max_length=2000, description="comtrade: its URL.")
    ] = None,
    source_published_at: Annotated[
        str | None,
        Query(max_length=40, description="comtrade: when it was published (ISO 8601)."),
    ] = None,
) -> ImportReport:
    _check_media_type(request, format_)
    # The body's size is app.guard's to limit (DYAD_MAX_IMPORT_BYTES): it counts what arrives.
    source = SourceSpec(source_id, source_title, source_publisher, source_url, source_published_at)
    with tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES) as body:
        async for chunk in request.stream():
            body.write(chunk)
        body.seek(0)
        try:
            report = await run_in_threadpool(
                run_import, engine, body, format_, source, dry_run=dry_run
            )
        except SourceInvalid as exc:
            raise InvalidInput(
                f"The import was refused: {exc}.",
                errors=[{"param": param, "message": message} for param, message in exc.errors],
            ) from None
        except DatasetInvalid as exc:
            raise InvalidInput(
                f"The import was refused and nothing was written: {len(exc.problems)} "
                "problem(s), each listed with where it is.",
                errors=[problem.as_dict() for problem in exc.problems],
            ) from None
    return ImportReport.of(format_, report)


_CHARSET = re.compile(r"charset\s*=\s*\"?([^\s\";]+)", re.IGNORECASE)


def _check_media_type(request: Request, format_: Format) -> None:
    header = request.headers.get("content-type", "")
    media_type, _, parameters = header.partition(";")
    media_type = media_type.strip().lower()
    wanted = MEDIA_TYPES[format_]
    accepted = media_type == wanted or (format_ == "seed" and media_type.endswith("+json"))
    charset = _CHARSET.search(parameters)
    if accepted and (charset is None or charset.group(1).lower() in ("utf-8", "utf8")):
        return
    other: Format = "comtrade" if format_ == "seed" else "seed"
    detail = (
        f"format={format_} takes a body of type {wanted} in UTF-8, not {header or 'none'!r}; "
        f"format={other} takes {MEDIA_TYPES[other]}."
    )
    raise UnsupportedMediaType(
        detail, errors=[{"param": "Content-Type", "message": f"expected {wanted}"}]
    )
