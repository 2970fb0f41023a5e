"""The dataset format: the seed loads, exports byte for byte, and bad files change nothing."""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from conftest import SEED, SOURCES_DIR, Postgres, copy_database, count_rows
from sqlalchemy import Engine, func, select

from app import dataset
from app import models as m
from app import records as r
from app.db import create_db_engine, write_transaction
from app.models import table
from app.values import PARTIAL_DATE_PATTERN

SEED_BYTES = SEED.read_bytes()
SEED_JSON: dict[str, Any] = json.loads(SEED_BYTES)
SOURCE_ID = "azernews-2022-08-24-tokayev-baku"
EXPECTED_COUNTS = {
    "sources": 1,
    "organizations": 6,
    "people": 4,
    "relations": 1,
    "treaties": 1,
    "visits": 1,
    "trade": 1,
    "routes": 1,
    "memberships": 10,
    "figures": 3,
}


@pytest.fixture
def empty(fresh_url: str) -> Iterator[Engine]:
    engine = create_db_engine(fresh_url)
    yield engine
    engine.dispose()


@pytest.fixture
def seeded(seeded_url: str) -> Iterator[Engine]:
    engine = create_db_engine(seeded_url)
    yield engine
    engine.dispose()


@pytest.fixture
def other_empty(
    template_url: str, engine_kind: str, postgres: Postgres | None, tmp_path: Path
) -> Iterator[Engine]:
    """A second migrated, empty database, for tests that move data between two."""
    url = copy_database(template_url, engine_kind, postgres, tmp_path)
    engine = create_db_engine(url)
    yield engine
    engine.dispose()
    if postgres is not None and engine_kind == "postgresql":
        postgres.drop(url)


def export_bytes(engine: Engine) -> bytes:
    with engine.connect() as connection:
        return dataset.dumps(dataset.export_dataset(connection))


def snapshot(engine: Engine) -> tuple[bytes, int, str | None, list[tuple[Any, ...]]]:
    """Everything a load could change: the data, the revision, the digest, the change feed."""
    changes = table(m.DatasetChange)
    with engine.connect() as connection:
        revision, digest = dataset.current_state(connection)
        feed = connection.execute(
            select(
                changes.c.revision, changes.c.action, changes.c.entity_type, changes.c.entity_id
            ).order_by(changes.c.seq)
        ).all()
    return export_bytes(engine), revision, digest, [tuple(row) for row in feed]


def citations_in(data: Any) -> Iterator[dict[str, str]]:
    """Every ``{source, quote}`` object anywhere in a dataset."""
    if isinstance(data, dict):
        if set(data) == {"source", "quote"}:
            yield data
        for value in data.values():
            yield from citations_in(value)
    elif isinstance(data, list):
        for value in data:
            yield from citations_in(value)


def modified(**changes: Any) -> dict[str, Any]:
    """The seed with ``collection=[(index, field, value), ...]`` applied."""
    raw = copy.deepcopy(SEED_JSON)
    for collection, edits in changes.items():
        for index, field, value in edits:
            raw[collection][index][field] = value
    return raw


# --- the seed -------------------------------------------------------------------------------


def test_seed_file_holds_the_expected_records() -> None:
    assert {c: len(SEED_JSON[c]) for c in r.COLLECTIONS} == EXPECTED_COUNTS
    assert SEED_JSON["format"] == r.FORMAT
    assert list(SEED_JSON) == ["format", *r.COLLECTIONS]


def test_seed_loads(empty: Engine) -> None:
    report = dataset.load(empty, dataset.read_file(SEED))

    assert report.by_collection == {
        c: {"created": n, "updated": 0, "unchanged": 0} for c, n in EXPECTED_COUNTS.items()
    }
    assert (report.created, report.updated, report.unchanged) == (29, 0, 0)
    assert report.changed and report.revision == 1
    with empty.connect() as connection:
        exported = dataset.export_dataset(connection)
        assert {c: len(exported[c]) for c in r.COLLECTIONS} == EXPECTED_COUNTS
        rows = {model.__name__: count_rows(connection, model) for model in (
            m.Country, m.Role, m.RelationNote, m.TreatyParty, m.VisitParticipant,
            m.RouteCountry, m.Citation, m.DatasetChange,
        )}  # fmt: skip
    assert rows == {
        "Country": 249,
        "Role": 4,
        "RelationNote": 7,
        "TreatyParty": 2,
        "VisitParticipant": 3,
        "RouteCountry": 2,
        "Citation": len(list(citations_in(SEED_JSON))),
        "DatasetChange": 29,
    }


def test_loading_the_seed_again_changes_nothing(seeded: Engine) -> None:
    before = snapshot(seeded)
    report = dataset.load(seeded, dataset.read_file(SEED))
    assert not report.changed
    assert (report.created, report.updated, report.unchanged) == (0, 0, 29)
    assert report.revision == before[1] == 1
    assert snapshot(seeded) == before


def test_loading_the_same_file_with_its_digest_keeps_the_revision(seeded: Engine) -> None:
    data, revision, _, feed = snapshot(seeded)
    report = dataset.load(seeded, dataset.read_file(SEED), seed_digest=dataset.file_digest(SEED))
    assert not report.changed
    # Nothing was written, so ETags and the change feed must not move; the digest is noted.
    assert snapshot(seeded) == (data, revision, dataset.file_digest(SEED), feed)


def test_export_of_the_seeded_database_is_the_seed_file(seeded: Engine) -> None:
    assert export_bytes(seeded) == SEED_BYTES


def test_export_loads_into_an_empty_database_unchanged(seeded: Engine, other_empty: Engine) -> None:
    exported = export_bytes(seeded)
    report = dataset.load(other_empty, exported)
    assert (report.created, report.updated) == (29, 0)
    assert export_bytes(other_empty) == exported == SEED_BYTES


def test_every_quote_is_verbatim_in_its_source() -> None:
    if not SOURCES_DIR.is_dir():
        pytest.skip(f"the source texts are not here ({SOURCES_DIR})")
    cites = list(citations_in(SEED_JSON))
    assert len(cites) >= 30
    assert {c["source"] for c in cites} == {s["id"] for s in SEED_JSON["sources"]}
    texts = {s["id"]: (SOURCES_DIR / f"{s['id']}.txt").read_text() for s in SEED_JSON["sources"]}
    missing = [c for c in cites if c["quote"] not in texts[c["source"]]]
    assert missing == []


def test_dates_keep_the_precision_of_the_source(seeded: Engine) -> None:
    with seeded.connect() as connection:
        exported = dataset.export_dataset(connection)
        rel, treaty, visit = table(m.DiplomaticRelation), table(m.Treaty), table(m.Visit)
        intervals = [
            connection.execute(select(rel.c.established_start, rel.c.established_end)).one(),
            connection.execute(select(treaty.c.signed_start, treaty.c.signed_end)).one(),
            connection.execute(select(visit.c.date_start, visit.c.date_end)).one(),
        ]
    assert exported["relations"][0]["established"] == "1992"
    assert exported["treaties"][0]["signed"] == "2005"
    assert exported["visits"][0]["date"] == "2022-08-24"
    assert [tuple(i) for i in intervals] == [
        (date(1992, 1, 1), date(1992, 12, 31)),
        (date(2005, 1, 1), date(2005, 12, 31)),
        (date(2022, 8, 24), date(2022, 8, 24)),
    ]


HEDGE = re.compile(r"\b(about|around)\b", re.IGNORECASE)


def test_hedged_figures_are_approximate(seeded: Engine) -> None:
    with seeded.connect() as connection:
        exported = dataset.export_dataset(connection)
    seen = set()
    for collection in ("figures", "trade"):
        for record in exported[collection]:
            hedged = any(HEDGE.search(c["quote"]) for c in record["sources"])
            assert record["approximate"] is hedged, record["id"]
            seen.add(hedged)
    assert seen == {True, False}


def test_source_keeps_its_printed_time_and_offset(seeded: Engine) -> None:
    source = table(m.Source)
    with seeded.connect() as connection:
        exported = dataset.export_dataset(connection)
        utc = connection.execute(select(source.c.published_utc)).scalar_one()
    assert exported["sources"][0]["published_at"] == "2022-08-24T11:00:00+04:00"
    assert utc.replace(tzinfo=utc.tzinfo or UTC) == datetime(2022, 8, 24, 7, tzinfo=UTC)


def test_utc_times_load_twice_without_a_change(seeded: Engine) -> None:
    raw = modified(sources=[(0, "published_at", "2022-08-24T07:00:00Z")])
    assert dataset.load(seeded, raw).updated == 1
    before = snapshot(seeded)
    assert not dataset.load(seeded, raw).changed
    assert snapshot(seeded) == before
    assert json.loads(before[0])["sources"][0]["published_at"] == "2022-08-24T07:00:00Z"


def test_schema_file_is_generated_from_the_records() -> None:
    path = SEED.parent / "seed.schema.json"
    assert path.read_text() == r.json_schema(), (
        "data/seed.schema.json is stale; regenerate it with: .venv/bin/python -c "
        '"from pathlib import Path; from app import records; '
        "Path('data/seed.schema.json').write_text(records.json_schema())\""
    )


RECORD_TABLES = [
    (r.SourceRecord, m.Source),
    (r.OrganizationRecord, m.Organization),
    (r.PersonRecord, m.Person),
    (r.RoleRecord, m.Role),
    (r.NoteRecord, m.RelationNote),
    (r.TreatyRecord, m.Treaty),
    (r.VisitRecord, m.Visit),
    (r.ParticipantRecord, m.VisitParticipant),
    (r.TradeRecord, m.TradeFigure),
    (r.RouteRecord, m.TransportRoute),
    (r.MembershipRecord, m.Membership),
    (r.FigureRecord, m.Figure),
]


@pytest.mark.parametrize(("record", "model"), RECORD_TABLES, ids=lambda x: x.__name__)
def test_every_string_a_record_accepts_fits_its_column(record: Any, model: Any) -> None:
    """PostgreSQL refuses what is longer than a VARCHAR; SQLite would store it silently."""
    too_long, checked = [], []
    for name, prop in record.model_json_schema()["properties"].items():
        column = table(model).c.get(name)
        length = getattr(column.type, "length", None) if column is not None else None
        if not length:
            continue
        checked.append(name)
        for variant in prop.get("anyOf", [prop]):
            if variant.get("type") != "string" or "ISO 3166-1" in variant.get("description", ""):
                continue  # country codes are stored as their alpha-2 form
            if variant.get("pattern") == PARTIAL_DATE_PATTERN or variant.get("format"):
                continue  # partial dates (10) and datetimes (32) have a bounded form
            longest = max(map(len, variant["enum"])) if "enum" in variant else None
            longest = variant.get("maxLength", longest)
            if longest is None or longest > length:
                too_long.append((name, longest, length))
    assert checked
    assert too_long == []


# --- bad files --------------------------------------------------------------------------------


def faulty() -> tuple[dict[str, Any], dict[str, str]]:
    """The seed with many kinds of fault, and what each problem must say, by pointer."""
    raw = copy.deepcopy(SEED_JSON)
    raw["visits"][0]["guest"] = "XX"
    raw["treaties"][0]["sources"][0]["quote"] = "  "
    raw["trade"][0]["sources"][0]["source"] = "no-such-source"
    raw["visits"][0]["participants"][1]["person"] = "nobody"
    raw["treaties"][0]["signed"] = "2005-13"
    raw["organizations"].append({**raw["organizations"][1], "name": "Another CICA"})
    raw["figures"][0]["value"] = "around ninety"
    raw["routes"][0]["length_km"] = 6500
    raw["people"][1]["name"] = "K" * 201
    raw["people"][3]["roles"][0]["organization"] = "no-such-organization"
    raw["memberships"][6]["country"] = "aze"  # kz-oic becomes a second (oic, AZ)
    raw["relations"][0]["countries"] = ["KZ", "kaz"]
    raw["sources"][0]["published_at"] = "2022-08-24T11:00:00"
    raw["trade"][0]["currency"] = "ABC"
    raw["figures"][2]["route"] = "no-such-route"
    expected = {
        "/visits/0/guest": "Unknown country code 'XX'",
        "/treaties/0/sources/0/quote": "at least 1 character",
        "/trade/0/sources/0/source": "no source with id 'no-such-source'",
        "/visits/0/participants/1/person": "no person with id 'nobody'",
        "/treaties/0/signed": "month must be between 01 and 12",
        "/organizations/6/id": "duplicate id 'cica' (first at /organizations/1/id)",
        "/figures/0/value": "valid number",
        "/routes/0/length_km": "Extra inputs are not permitted",
        "/people/1/name": "at most 200 characters",
        "/people/3/roles/0/organization": "no organization with id 'no-such-organization'",
        "/memberships/6/country": "another membership has this organization and country "
        "(first at /memberships/1/country)",
        "/relations/0": "a relation needs two different countries",
        "/sources/0/published_at": "timezone",
        "/trade/0/currency": "'ABC' is not an ISO 4217 currency code",
        "/figures/2/route": "no route with id 'no-such-route'",
    }
    return raw, expected


def assert_problems(exc: dataset.DatasetInvalid, expected: dict[str, str]) -> None:
    found = {p.pointer: p.message for p in exc.problems}
    assert len(found) == len(exc.problems), "one problem per pointer"
    assert sorted(found) == sorted(expected)
    for where, message in expected.items():
        assert message in found[where], where


def test_a_faulty_file_is_rejected_with_every_problem_and_nothing_written(seeded: Engine) -> None:
    raw, expected = faulty()
    assert len({where.split("/")[1] for where in expected}) >= 5
    before = snapshot(seeded)
    with pytest.raises(dataset.DatasetInvalid) as caught:
        dataset.load(seeded, dataset.dumps(raw))
    assert_problems(caught.value, expected)
    assert snapshot(seeded) == before


def test_without_a_database_every_problem_but_references_is_listed() -> None:
    raw, expected = faulty()
    with pytest.raises(dataset.DatasetInvalid) as caught:
        dataset.parse_dataset(dataset.dumps(raw))
    # References may point into the database, so only a load can judge them.
    assert_problems(caught.value, {k: v for k, v in expected.items() if not v.startswith("no ")})


def test_references_of_a_well_formed_file_are_checked_against_the_database(
    seeded: Engine,
) -> None:
    raw = modified(
        trade=[(0, "sources", [{"source": "no-such-source", "quote": "x"}])],
        memberships=[(0, "organization", "no-such-organization")],
    )
    before = snapshot(seeded)
    with pytest.raises(dataset.DatasetInvalid) as caught:
        dataset.load(seeded, dataset.parse_dataset(raw))
    assert_problems(
        caught.value,
        {
            "/trade/0/sources/0/source": "no source with id 'no-such-source' in the dataset "
            "or the database",
            "/memberships/0/organization": "no organization with id 'no-such-organization'",
        },
    )
    assert snapshot(seeded) == before


@pytest.mark.parametrize(
    "text",
    [b"{", b"[]", b'{"format": "dyad-dataset/2"}', b'{"treaties": {}}', b'{"people": [1]}'],
)
def test_files_that_are_not_datasets_are_rejected(text: bytes) -> None:
    with pytest.raises(dataset.DatasetInvalid) as caught:
        dataset.parse_dataset(text)
    assert caught.value.problems


NEW_TREATY = {
    "id": "kz-az-new-treaty-2022",
    "title": "Declaration on Allied Relations",
    "signed": "2022-08",
    "parties": ["kaz", "031"],
    "sources": [{"source": SOURCE_ID, "quote": "A sentence."}],
}


@pytest.mark.parametrize("parsed_first", [False, True], ids=["raw", "parsed"])
def test_a_reference_to_a_stored_record_is_accepted(seeded: Engine, parsed_first: bool) -> None:
    visit = {
        **SEED_JSON["visits"][0],
        "id": "kz-az-2022-08-25",
        "date": "2022-08-25",
        "participants": [{"person": "kassym-jomart-tokayev", "role": "guest_leader"}],
    }
    raw = {"format": r.FORMAT, "treaties": [NEW_TREATY], "visits": [visit]}
    _, revision, _, feed = snapshot(seeded)
    report = dataset.load(seeded, dataset.parse_dataset(raw) if parsed_first else raw)
    assert (report.created, report.updated, report.revision) == (2, 0, revision + 1)
    data, new_revision, _, new_feed = snapshot(seeded)
    treaty = next(t for t in json.loads(data)["treaties"] if t["id"] == NEW_TREATY["id"])
    assert treaty["parties"] == ["KZ", "AZ"]
    assert treaty["sources"] == NEW_TREATY["sources"]
    assert new_feed[len(feed) :] == [
        (new_revision, "create", "treaty", NEW_TREATY["id"]),
        (new_revision, "create", "visit", "kz-az-2022-08-25"),
    ]


@pytest.mark.parametrize("parsed_first", [False, True], ids=["raw", "parsed"])
def test_a_reference_to_a_missing_record_is_rejected(seeded: Engine, parsed_first: bool) -> None:
    treaty = {**NEW_TREATY, "sources": [{"source": "missing-source", "quote": "A sentence."}]}
    raw = {"format": r.FORMAT, "treaties": [treaty]}
    before = snapshot(seeded)
    with pytest.raises(dataset.DatasetInvalid) as caught:
        dataset.load(seeded, dataset.parse_dataset(raw) if parsed_first else raw)
    assert_problems(
        caught.value, {"/treaties/0/sources/0/source": "no source with id 'missing-source'"}
    )
    assert snapshot(seeded) == before


def test_clashes_with_stored_records_are_problems_not_errors(seeded: Engine) -> None:
    person = {
        "id": "someone-else",
        "name": "Someone Else",
        "roles": [{**SEED_JSON["people"][0]["roles"][0]}],  # the id of Tokayev's role
    }
    visit = {
        **SEED_JSON["visits"][0],
        "participants": [
            {"person": "yagub-eyyubov", "role": "welcomed_by"},
            {"person": "yagub-eyyubov", "role": "guest_leader"},
        ],
    }
    raw = {
        "format": r.FORMAT,
        "people": [person],
        "relations": [{**SEED_JSON["relations"][0], "id": "kz-az", "countries": ["KZ", "AZ"]}],
        "visits": [visit],
        "memberships": [{**SEED_JSON["memberships"][-1], "id": "kz-un-again", "country": "398"}],
    }
    before = snapshot(seeded)
    with pytest.raises(dataset.DatasetInvalid) as caught:
        dataset.load(seeded, raw)
    assert_problems(
        caught.value,
        {
            "/people/0/roles/0/id": "this id belongs to person 'kassym-jomart-tokayev'",
            "/relations/0/countries": "relation 'az-kz' already holds this pair",
            "/relations/0/notes/0/id": "this id belongs to relation 'az-kz'",
            "/relations/0/notes/1/id": "this id belongs to relation 'az-kz'",
            "/relations/0/notes/2/id": "this id belongs to relation 'az-kz'",
            "/relations/0/notes/3/id": "this id belongs to relation 'az-kz'",
            "/relations/0/notes/4/id": "this id belongs to relation 'az-kz'",
            "/relations/0/notes/5/id": "this id belongs to relation 'az-kz'",
            "/relations/0/notes/6/id": "this id belongs to relation 'az-kz'",
            "/visits/0/participants/1/person": "this person already takes part in the visit",
            "/memberships/0/country": "membership 'kz-un' already has this organization",
        },
    )
    assert snapshot(seeded) == before


# --- updates --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("collection", "index", "field", "entity_type"),
    [
        ("treaties", 0, "title", "treaty"),
        ("sources", 0, "title", "source"),  # cited by every fact
        ("organizations", 0, "name", "organization"),  # a role's employer
        ("organizations", 5, "name", "organization"),  # has memberships
        ("people", 0, "name", "person"),  # takes part in the visit
        ("routes", 0, "name", "route"),  # has a figure
    ],
)
def test_an_update_rewrites_one_record_and_bumps_the_revision_once(
    seeded: Engine, collection: str, index: int, field: str, entity_type: str
) -> None:
    raw = modified(**{collection: [(index, field, f"{SEED_JSON[collection][index][field]} (2)")]})
    _, revision, _, feed = snapshot(seeded)

    report = dataset.load(seeded, raw)

    assert (report.created, report.updated, report.unchanged) == (0, 1, 28)
    assert report.by_collection[collection]["updated"] == 1
    assert report.revision == revision + 1
    data, new_revision, _, new_feed = snapshot(seeded)
    assert new_revision == revision + 1
    record_id = SEED_JSON[collection][index]["id"]
    assert new_feed == [*feed, (revision + 1, "update", entity_type, record_id)]
    # Exactly that field changed: nothing that refers to the record was lost.
    assert data == dataset.dumps(raw)


def test_an_update_of_nested_records_replaces_them(seeded: Engine) -> None:
    person = copy.deepcopy(SEED_JSON["people"][0])
    person["roles"].append({**person["roles"][0], "id": "kassym-jomart-tokayev-un", "title": "X"})
    relation = copy.deepcopy(SEED_JSON["relations"][0])
    relation["notes"] = relation["notes"][::-1][:3]
    raw = modified(
        people=[(0, "roles", person["roles"])], relations=[(0, "notes", relation["notes"])]
    )
    report = dataset.load(seeded, raw)
    assert report.updated == 2
    assert export_bytes(seeded) == dataset.dumps(raw)
    assert not dataset.load(seeded, raw).changed


def test_a_dry_run_reports_and_writes_nothing(seeded: Engine) -> None:
    raw = modified(treaties=[(0, "title", "Another title")])
    before = snapshot(seeded)
    report = dataset.load(seeded, raw, dry_run=True)
    assert (report.dry_run, report.updated, report.revision) == (True, 1, before[1] + 1)
    assert snapshot(seeded) == before


def test_deleting_an_entity_leaves_no_citation_behind(seeded: Engine) -> None:
    facts = {
        "relation": m.DiplomaticRelation, "relation_note": m.RelationNote, "treaty": m.Treaty,
        "visit": m.Visit, "trade": m.TradeFigure, "route": m.TransportRoute, "figure": m.Figure,
        "membership": m.Membership, "role": m.Role,
    }  # fmt: skip
    cit = table(m.Citation)

    def orphans() -> int:
        with seeded.connect() as connection:
            return sum(
                connection.execute(
                    select(func.count()).where(
                        cit.c.fact_type == fact_type,
                        cit.c.fact_id.not_in(select(table(model).c.id)),
                    )
                ).scalar_one()
                for fact_type, model in facts.items()
            )

    assert set(facts) == set(m.FACT_TYPES)
    assert orphans() == 0
    with write_transaction(seeded) as connection:
        dataset.delete_entity(connection, "routes", "titr")  # its figure goes with it
        dataset.delete_entity(connection, "organizations", "oic")  # and its memberships
        dataset.delete_entity(connection, "people", "yevgeny-bolgert")  # and his role
        dataset.delete_entity(connection, "relations", "az-kz")  # and its notes
    assert orphans() == 0
    exported = json.loads(export_bytes(seeded))
    assert [f["id"] for f in exported["figures"]] == [
        "az-kz-bilateral-agreements-2022",
        "az-kz-diplomatic-relations-anniversary-2022",
    ]
    assert len(exported["memberships"]) == 8


def test_check_file_judges_a_file_on_its_own(tmp_path: Path) -> None:
    assert dataset.check_file(SEED) == []
    raw, expected = faulty()
    path = tmp_path / "faulty.json"
    path.write_bytes(dataset.dumps(raw))
    # Standing alone, every reference must resolve within the file.
    assert_problems(dataset.DatasetInvalid(dataset.check_file(path)), expected)
    [problem] = dataset.check_file(tmp_path / "missing.json")
    assert problem.pointer == "" and problem.message.startswith("cannot read")


def test_load_takes_a_file(empty: Engine, tmp_path: Path) -> None:
    assert dataset.load(empty, SEED).created == 29
    with pytest.raises(dataset.DatasetInvalid) as caught:
        dataset.load(empty, tmp_path / "missing.json")
    assert [p.pointer for p in caught.value.problems] == [""]


def _planner_rows(engine: Engine) -> float:
    """What PostgreSQL's planner believes the citation table holds (-1: never analysed)."""
    with engine.connect() as connection:
        query = "SELECT reltuples FROM pg_class WHERE relname = 'citation'"
        return float(connection.exec_driver_sql(query).scalar_one())


def test_a_large_load_refreshes_the_planner_statistics(
    empty: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On PostgreSQL a load of ANALYZE_AFTER rows or more is followed by VACUUM (ANALYZE); a smaller
    one, or a dry run, leaves statistics to autovacuum."""
    if empty.dialect.name != "postgresql":
        pytest.skip("SQLite plans these reads from its indexes; nothing to refresh")
    dataset.load(empty, SEED, dry_run=True)
    dataset.load(empty, SEED)  # 29 records, under the threshold
    assert _planner_rows(empty) == -1
    monkeypatch.setattr(dataset, "ANALYZE_AFTER", 1)
    dataset.load(empty, SEED, dry_run=True)
    assert _planner_rows(empty) == -1
    with write_transaction(empty) as connection:  # make the next load change something
        connection.execute(table(m.Citation).delete())
        connection.execute(table(m.TradeFigure).delete())
    dataset.load(empty, SEED)
    assert _planner_rows(empty) > 0
    with empty.connect() as connection:  # vacuumed too: index-only scans skip the table
        query = "SELECT last_vacuum FROM pg_stat_user_tables WHERE relname = 'trade_figure'"
        assert connection.exec_driver_sql(query).scalar_one() is not None
        # and the pooled connection has its statement timeout back
        assert connection.exec_driver_sql("SHOW statement_timeout").scalar_one() != "0"
