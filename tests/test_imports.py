"""Imports, all or nothing: POST /v1/imports and ``dyad import``, on every engine.

Every planted fault is reported where it is and leaves the database exactly as it was (the
export, the revision, the change feed and the search index); a failure half way through a
large import too. Counts of a dry run are those of the real import.
"""

from __future__ import annotations

import copy
import io
import json
import re
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import SEED, make_client, ok, problem
from fastapi.testclient import TestClient
from sqlalchemy import Engine, event, select, text
from test_comtrade import HEADER, csv_bytes, row
from test_export import cli_on, generate
from typer.testing import CliRunner

from app import api_keys, comtrade, dataset, imports, search
from app import models as m
from app.cli import app as cli
from app.dataset import DatasetInvalid
from app.db import create_db_engine
from app.models import table

SEED_JSON: dict[str, Any] = json.loads(SEED.read_bytes())
SOURCE = {"source_id": "comtrade-2024", "source_title": "UN Comtrade, 2024 download"}
COMTRADE = {"format": "comtrade", **SOURCE}
CSV = "text/csv"
JSON = "application/json"
State = tuple[bytes, int, list[tuple[Any, ...]], int]


def state(engine: Engine) -> State:
    """All an import could change: the data, the revision, the change feed, the index."""
    changes = table(m.DatasetChange)
    with engine.connect() as connection:
        feed = connection.execute(
            select(
                changes.c.revision, changes.c.action, changes.c.entity_type, changes.c.entity_id
            ).order_by(changes.c.seq)
        ).all()
        documents = connection.execute(text("SELECT count(*) FROM search_document")).scalar_one()
        return (
            dataset.dumps(dataset.export_dataset(connection)),
            dataset.current_state(connection)[0],
            [tuple(change) for change in feed],
            int(documents),
        )


class Api:
    """The app over a database of the test's own, with an import key."""

    def __init__(self, client: TestClient, key: str) -> None:
        self.client = client
        self.headers = {"Authorization": f"Bearer {key}"}

    def post(self, body: bytes | Iterator[bytes], content_type: str = CSV, **params: Any) -> Any:
        headers = {**self.headers, "Content-Type": content_type}
        params = {name: value for name, value in params.items() if value is not None}
        return self.client.post("/v1/imports", content=body, headers=headers, params=params)

    def comtrade(self, body: bytes, **params: Any) -> Any:
        return self.post(body, **{**COMTRADE, **params})


@pytest.fixture
def engine(seeded_url: str) -> Iterator[Engine]:
    engine = create_db_engine(seeded_url)
    yield engine
    engine.dispose()


def import_key(engine: Engine) -> str:
    return api_keys.create_key(engine, "importer", "import")[0]


@pytest.fixture
def api(seeded_url: str, engine: Engine) -> Iterator[Api]:
    with make_client(seeded_url) as client:
        yield Api(client, import_key(engine))


def years(*values: int, **cells: str) -> list[dict[str, str]]:
    return [row(refYear=str(year), **cells) for year in values]


GOOD_ROWS = [
    row(),
    row(flowCode="M", primaryValue="1000.5"),
    row(reporterISO="", reporterCode="251", partnerISO="", partnerCode="842", refYear="2019"),
    row(partnerCode="0", partnerISO="W00", partnerDesc="World"),
    row(flowCode="RX"),
]
GOOD_CSV = csv_bytes(GOOD_ROWS)


# --- importing a Comtrade CSV -------------------------------------------------------------


def test_a_comtrade_csv_is_imported(api: Api) -> None:
    report = ok(api.comtrade(GOOD_CSV))
    assert report == {
        "format": "comtrade",
        "dry_run": False,
        "created": 4,
        "updated": 0,
        "unchanged": 0,
        "skipped": {"flow": 1, "world": 1},
        "revision": 2,
        "collections": {
            "sources": {"created": 1, "updated": 0, "unchanged": 0},
            "trade": {"created": 3, "updated": 0, "unchanged": 0},
        },
    }
    figure = ok(api.client.get("/v1/trade/comtrade-fr-us-2019-export"))
    assert (figure["reporter"]["iso2"], figure["partner"]["iso2"]) == ("FR", "US")
    assert figure["value"] == 231512345 and figure["currency"] == "USD"
    line = GOOD_CSV.decode().split("\r\n")[3]
    assert figure["sources"] == [{"source": "comtrade-2024", "quote": line}]
    assert ok(api.client.get("/v1/trade/comtrade-kz-az-2021-import"))["value"] == 1000
    source = ok(api.client.get("/v1/sources/comtrade-2024"))
    assert source["title"] == "UN Comtrade, 2024 download"
    changes = ok(api.client.get("/v1/changes", params={"since": 1}))
    assert changes["revision"] == 2
    assert [(c["revision"], c["action"], c["type"], c["id"]) for c in changes["items"]] == [
        (2, "create", "source", "comtrade-2024"),
        (2, "create", "trade", "comtrade-kz-az-2021-export"),
        (2, "create", "trade", "comtrade-kz-az-2021-import"),
        (2, "create", "trade", "comtrade-fr-us-2019-export"),
    ]
    hits = ok(api.client.get("/v1/search", params={"q": "France exports", "type": "trade"}))
    assert [hit["id"] for hit in hits["items"]] == ["comtrade-fr-us-2019-export"]


def test_importing_the_same_file_again_changes_nothing(api: Api, engine: Engine) -> None:
    ok(api.comtrade(GOOD_CSV))
    before = state(engine)
    report = ok(api.comtrade(GOOD_CSV))
    assert (report["created"], report["updated"], report["unchanged"]) == (0, 0, 3)
    assert report["revision"] == 2
    # An existing source is cited as it is, without its title.
    report = ok(api.comtrade(GOOD_CSV, source_title=None))
    assert report["unchanged"] == 3
    assert state(engine) == before


def test_a_changed_value_is_an_update(api: Api, engine: Engine) -> None:
    ok(api.comtrade(GOOD_CSV))
    before = state(engine)
    changed = csv_bytes([row(primaryValue="999"), *GOOD_ROWS[1:]])
    report = ok(api.comtrade(changed))
    assert (report["created"], report["updated"], report["unchanged"]) == (0, 1, 2)
    assert report["revision"] == 3
    after = state(engine)
    assert after[2] == [*before[2], (3, "update", "trade", "comtrade-kz-az-2021-export")]
    assert ok(api.client.get("/v1/trade/comtrade-kz-az-2021-export"))["value"] == 999


def test_a_dry_run_counts_what_the_import_would_do_and_writes_nothing(
    api: Api, engine: Engine
) -> None:
    changed = csv_bytes([row(primaryValue="999"), *GOOD_ROWS[1:], *years(2000, 2001)])
    for body in (GOOD_CSV, changed):
        before = state(engine)
        dry = ok(api.comtrade(body, dry_run="true"))
        assert state(engine) == before
        real = ok(api.comtrade(body))
        assert dry == {**real, "dry_run": True}
    assert (dry["created"], dry["updated"], dry["unchanged"]) == (2, 1, 2)


def test_another_sources_claim_stays_a_separate_figure(api: Api) -> None:
    ok(api.comtrade(csv_bytes(years(2021)), source_id="another", source_title="Another"))
    trade = ok(api.client.get("/v1/trade", params={"country": "KZ", "partner": "AZ"}))
    assert {t["id"] for t in trade["items"]} == {
        "az-kz-2021-turnover-azernews",
        "comtrade-kz-az-2021-export",
    }


def documents(engine: Engine) -> list[tuple[str, str, str, str]]:
    with engine.connect() as connection:
        rows = connection.execute(
            text("SELECT type, id, title, body FROM search_document ORDER BY type, id")
        )
        return [(t, i, title, body) for t, i, title, body in rows]


def test_an_import_indexes_its_figures_as_search_does(api: Api, engine: Engine) -> None:
    """The import writes search documents itself, in bulk: the same as rebuilding the index
    from the stored figures gives, for plain rows and for those search has to clean."""
    rows = [
        row(),
        row(flowCode="M", refYear="2020"),
        row(partnerISO="CIV", partnerCode="384", partnerDesc="Côte d'Ivoire"),
        row(partnerDesc="Azerbaijan \u2014 A\u0301zerbaycan", refYear="2019"),  # to compose
        row(reporterDesc="Kazakhstan \x02marked\x03", refYear="2018"),
    ]
    ok(api.comtrade(csv_bytes(rows)))
    ok(api.comtrade(csv_bytes([row(primaryValue="5"), *rows[1:3], row(refYear="2017")])))
    imported = documents(engine)
    assert len([d for d in imported if d[0] == "trade"]) == 7
    assert ("trade", "comtrade-kz-ci-2021-export") in {d[:2] for d in imported}
    with engine.begin() as connection:
        search.rebuild(connection)
    assert documents(engine) == imported


def load_trade(engine: Engine, **changes: Any) -> None:
    """Store the figure comtrade-kz-az-2021-export as a dataset in the seed format can."""
    line = GOOD_CSV.decode().split("\r\n")[1]
    figure = {
        "id": "comtrade-kz-az-2021-export",
        "reporter": "KZ",
        "partner": "AZ",
        "year": 2021,
        "flow": "export",
        "value": 231512345,
        "currency": "USD",
        "sources": [{"source": "comtrade-2024", "quote": line}],
        **changes,
    }
    dataset.load(engine, {"format": "dyad-dataset/1", "trade": [figure]})


@pytest.mark.parametrize(
    "changes",
    [
        {},
        {"approximate": True},
        {"currency": "EUR"},
        {"flow": "import"},
        {"sources": [{"source": "azernews-2022-08-24-tokayev-baku", "quote": "Another."}]},
        {"sources": [{"source": "comtrade-2024", "quote": "Another quote."}]},
        {
            "sources": [
                {"source": "comtrade-2024", "quote": "C,A,2021"},
                {"source": "azernews-2022-08-24-tokayev-baku", "quote": "Another."},
            ]
        },
    ],
    ids=["same", "approximate", "currency", "flow", "source", "quote", "two citations"],
)
def test_a_stored_figure_is_unchanged_only_if_equal_to_the_row(
    api: Api, engine: Engine, changes: dict[str, Any]
) -> None:
    ok(api.comtrade(csv_bytes([row(refYear="2020")])))  # creates the source
    load_trade(engine, **changes)
    before = state(engine)
    report = ok(api.comtrade(GOOD_CSV))
    updated = int(bool(changes))
    assert report["collections"]["trade"] == {
        "created": 2,
        "updated": updated,
        "unchanged": 1 - updated,
    }
    figure = ok(api.client.get("/v1/trade/comtrade-kz-az-2021-export"))
    line = GOOD_CSV.decode().split("\r\n")[1]
    assert figure["sources"] == [{"source": "comtrade-2024", "quote": line}]
    assert (figure["flow"], figure["currency"], figure["approximate"]) == ("export", "USD", False)
    feed = state(engine)[2][len(before[2]) :]
    updates = [change[1:] for change in feed if change[1] == "update"]
    assert updates == ([("update", "trade", "comtrade-kz-az-2021-export")] if changes else [])
    hits = ok(api.client.get("/v1/search", params={"q": "Kazakhstan exports", "type": "trade"}))
    assert "comtrade-kz-az-2021-export" in [hit["id"] for hit in hits["items"]]


# --- a dataset in the seed format -------------------------------------------------------------


def seed_with(**changes: Any) -> dict[str, Any]:
    raw = copy.deepcopy(SEED_JSON)
    raw.update(changes)
    return raw


NEW_TRADE = {
    "id": "kz-az-2022-turnover-test",
    "reporter": "KAZ",
    "partner": "031",
    "year": 2022,
    "flow": "turnover",
    "value": 400000000,
    "currency": "usd",
    "sources": [{"source": "azernews-2022-08-24-tokayev-baku", "quote": "A made-up quote."}],
}


def test_a_seed_format_dataset_is_imported(api: Api, engine: Engine) -> None:
    raw = seed_with(trade=[*SEED_JSON["trade"], NEW_TRADE])
    raw["treaties"][0]["title"] += " (test)"
    body = json.dumps(raw).encode()
    dry = ok(api.post(body, JSON, dry_run=True))
    report = ok(api.post(body, JSON))
    assert dry == {**report, "dry_run": True}
    assert report["format"] == "seed" and report["skipped"] == {}
    assert (report["created"], report["updated"], report["unchanged"]) == (1, 1, 28)
    assert report["collections"]["trade"] == {"created": 1, "updated": 0, "unchanged": 1}
    before = state(engine)
    again = ok(api.post(body, "application/vnd.dyad+json; charset=utf-8"))
    assert (again["created"], again["updated"], again["revision"]) == (0, 0, 2)
    assert state(engine) == before


# --- planted faults: each reported where it is, nothing written ------------------------------

GOOD_TRADE = {**NEW_TRADE, "id": "kz-az-2023-turnover-test", "year": 2023}


def comtrade_fault(*rows: dict[str, str], header: list[str] = HEADER) -> bytes:
    return csv_bytes([*years(2010, 2011), *rows, *years(2012)], header)


def seed_fault(*trade: dict[str, Any]) -> bytes:
    return json.dumps(seed_with(trade=[GOOD_TRADE, *trade])).encode()


NO_VALUE = [h for h in HEADER if h != "primaryValue"]
NOT_UTF8 = comtrade_fault(row(partnerDesc="Aserbaidschan")).replace(b"Aserb", b"\xc4serb")
FAULTS: list[tuple[str, bytes, str, dict[str, Any], int, list[str]]] = [
    # name, body, its content type, parameters, status, where (pointers or parameters)
    (
        "unknown ISO code",
        comtrade_fault(row(partnerISO="XYZ", partnerCode="")),
        CSV,
        COMTRADE,
        422,
        ["/line/4/partnerISO"],
    ),
    (
        "unknown Comtrade code",
        comtrade_fault(row(reporterISO="", reporterCode="1000")),
        CSV,
        COMTRADE,
        422,
        ["/line/4/reporterCode"],
    ),
    (
        "non-numeric value",
        comtrade_fault(row(primaryValue="12 USD")),
        CSV,
        COMTRADE,
        422,
        ["/line/4/primaryValue"],
    ),
    (
        "negative value",
        comtrade_fault(row(primaryValue="-5")),
        CSV,
        COMTRADE,
        422,
        ["/line/4/primaryValue"],
    ),
    ("missing column", comtrade_fault(row(), header=NO_VALUE), CSV, COMTRADE, 422, ["/line/1"]),
    ("bad year", comtrade_fault(row(refYear="21")), CSV, COMTRADE, 422, ["/line/4/refYear"]),
    (
        "unknown flowCode",
        comtrade_fault(row(flowCode="E")),
        CSV,
        COMTRADE,
        422,
        ["/line/4/flowCode"],
    ),
    ("duplicate row", comtrade_fault(row(refYear="2011")), CSV, COMTRADE, 422, ["/line/4"]),
    ("ragged row", comtrade_fault(row()) + b"C,A,2013\r\n", CSV, COMTRADE, 422, ["/line/6"]),
    ("not UTF-8", NOT_UTF8, CSV, COMTRADE, 422, ["/line/4"]),
    ("empty CSV", b"", CSV, COMTRADE, 422, ["/line/1"]),
    (
        "duplicate id",
        seed_fault({**NEW_TRADE, "id": GOOD_TRADE["id"]}),
        JSON,
        {},
        422,
        ["/trade/1/id"],
    ),
    (
        "missing source",
        seed_fault({**NEW_TRADE, "sources": [{"source": "nowhere", "quote": "q"}]}),
        JSON,
        {},
        422,
        ["/trade/1/sources/0/source"],
    ),
    (
        "unknown country",
        seed_fault({**NEW_TRADE, "partner": "XX"}),
        JSON,
        {},
        422,
        ["/trade/1/partner"],
    ),
    ("malformed JSON", b'{"format": "dyad-dataset/1", "trade": [', JSON, {}, 422, [""]),
    ("empty JSON", b"", JSON, {}, 422, [""]),
    ("CSV as a dataset", GOOD_CSV, CSV, {"format": "seed"}, 415, ["Content-Type"]),
    ("dataset as CSV", seed_fault(), JSON, COMTRADE, 415, ["Content-Type"]),
    ("CSV not in UTF-8", GOOD_CSV, f"{CSV}; charset=latin-1", COMTRADE, 415, ["Content-Type"]),
    ("unknown format", GOOD_CSV, CSV, {"format": "xlsx"}, 422, ["format"]),
    ("no source", GOOD_CSV, CSV, {"format": "comtrade"}, 422, ["source_id"]),
    ("unknown source", GOOD_CSV, CSV, {**COMTRADE, "source_title": None}, 422, ["source_title"]),
    ("bad source url", GOOD_CSV, CSV, {**COMTRADE, "source_url": "ftp://x"}, 422, ["source_url"]),
    ("source for a dataset", seed_fault(), JSON, {"source_id": "x"}, 422, ["source_id"]),
]


@pytest.mark.parametrize(
    ("body", "content_type", "params", "status", "where"),
    [f[1:] for f in FAULTS],
    ids=[f[0] for f in FAULTS],
)
def test_a_planted_fault_is_reported_and_nothing_is_written(
    api: Api,
    engine: Engine,
    body: bytes,
    content_type: str,
    params: dict[str, Any],
    status: int,
    where: list[str],
) -> None:
    before = state(engine)
    for dry_run in (False, True):
        answer = problem(api.post(body, content_type, dry_run=dry_run, **params), status)
        assert [e.get("pointer", e.get("param")) for e in answer["errors"]] == where
        assert all(e["message"] for e in answer["errors"])
    assert state(engine) == before


def test_every_problem_of_a_file_is_listed(api: Api, engine: Engine) -> None:
    before = state(engine)
    body = comtrade_fault(
        row(primaryValue="n/a", flowCode="Q"), *years(2013, 2014), row(refYear="1700")
    )
    answer = problem(api.comtrade(body), 422)
    assert [e["pointer"] for e in answer["errors"]] == [
        "/line/4/flowCode",
        "/line/4/primaryValue",
        "/line/7/refYear",
    ]
    assert "3 problem(s)" in answer["detail"] and "nothing was written" in answer["detail"]
    assert state(engine) == before


def test_a_stored_source_is_not_rewritten_by_an_import(api: Api, engine: Engine) -> None:
    ok(api.comtrade(GOOD_CSV))
    before = state(engine)
    answer = problem(api.comtrade(GOOD_CSV, source_title="Another title"), 422)
    assert answer["errors"] == [
        {
            "param": "source_title",
            "message": "source 'comtrade-2024' is stored with title 'UN Comtrade, 2024 download': "
            "leave source_title out to cite the source as it is",
        }
    ]
    assert state(engine) == before


def test_a_body_over_the_limit_is_413(seeded_url: str, engine: Engine) -> None:
    before = state(engine)
    with make_client(seeded_url, max_import_bytes=len(GOOD_CSV) - 1) as client:
        api = Api(client, import_key(engine))
        answer = problem(api.comtrade(GOOD_CSV), 413)
        assert f"{len(GOOD_CSV) - 1:,} bytes" in answer["detail"]
        # Streamed without a Content-Length, it is cut off as it arrives.
        chunks = (GOOD_CSV[i : i + 64] for i in range(0, len(GOOD_CSV), 64))
        problem(api.post(chunks, **COMTRADE), 413)
        ok(api.comtrade(GOOD_CSV[: len(GOOD_CSV) // 2].rsplit(b"\n", 1)[0] + b"\n"))
    assert state(engine)[1] == before[1] + 1


def test_imports_need_a_key_with_the_import_scope(api: Api, engine: Engine) -> None:
    before = state(engine)
    anonymous = api.client.post("/v1/imports", content=GOOD_CSV, params=COMTRADE)
    problem(anonymous, 401)
    writer = api_keys.create_key(engine, "writer", "write")[0]
    headers = {"Authorization": f"Bearer {writer}", "Content-Type": CSV}
    answer = problem(
        api.client.post("/v1/imports", content=GOOD_CSV, params=COMTRADE, headers=headers), 403
    )
    assert "'import'" in answer["detail"]
    headers["Authorization"] = "Bearer dyad_" + "x" * 43
    problem(api.client.post("/v1/imports", content=GOOD_CSV, params=COMTRADE, headers=headers), 401)
    assert state(engine) == before


# --- a failure half way through ---------------------------------------------------------------


@pytest.fixture
def big_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("comtrade") / "big.csv"
    generate.write_comtrade(path, 4_000, seed=5)
    return path


def fail_after(rows: int) -> Callable[[int], None]:
    def hook(written: int) -> None:
        if written >= rows:
            raise RuntimeError(f"injected fault after {written} rows")

    return hook


def test_a_fault_half_way_leaves_the_database_as_it_was(
    engine: Engine, big_csv: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = imports.SourceSpec(**{k.removeprefix("source_"): v for k, v in SOURCE.items()})
    before = state(engine)
    written: list[int] = []
    fail = fail_after(1_960)

    def after_batch(rows: int) -> None:
        written.append(rows)
        fail(rows)

    monkeypatch.setattr(imports, "after_batch", after_batch)
    with big_csv.open("rb") as file, pytest.raises(RuntimeError, match="injected fault"):
        imports.import_comtrade(engine, file, spec, batch_size=245)
    assert written == [245 * k for k in range(1, 9)]  # half of the 3,920 rows written, then
    assert state(engine) == before
    monkeypatch.setattr(imports, "after_batch", None)
    with big_csv.open("rb") as file:
        report = imports.import_comtrade(engine, file, spec, batch_size=245)
    assert report.created == 3_921 and report.skipped_by == {"world": 80}


def test_a_fault_half_way_through_http_and_the_cli(
    seeded_url: str,
    engine: Engine,
    big_csv: Path,
    monkeypatch: pytest.MonkeyPatch,
    use_database: Callable[[str], None],
) -> None:
    before = state(engine)
    monkeypatch.setattr(imports, "BATCH_SIZE", 500)
    monkeypatch.setattr(imports, "after_batch", fail_after(2_000))
    with make_client(seeded_url) as client:
        answer = problem(Api(client, import_key(engine)).comtrade(big_csv.read_bytes()), 500)
        assert "request id" in answer["detail"] and "injected" not in json.dumps(answer)
    with cli_on(seeded_url, use_database):
        result = dyad("import", big_csv, "--format", "comtrade", *source_options())
        assert result.exit_code != 0 and isinstance(result.exception, RuntimeError)
    assert state(engine) == before


class FailingRead(io.BytesIO):
    """A file whose reading fails part way, as a disk or an upload can."""

    def __init__(self, data: bytes, fail_at: int) -> None:
        super().__init__(data)
        self.fail_at = fail_at

    def read(self, size: int | None = -1) -> bytes:
        if self.tell() >= self.fail_at:
            raise OSError("injected read error")
        return super().read(size)


def test_an_error_of_the_reading_thread_is_raised_and_writes_nothing(
    engine: Engine, big_csv: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The file is read in a thread of its own: its error reaches the caller, after
    batches were written, and the transaction rolls back."""
    spec = imports.SourceSpec(**{k.removeprefix("source_"): v for k, v in SOURCE.items()})
    monkeypatch.setattr(comtrade, "BLOCK_BYTES", 4_096)
    written: list[int] = []
    monkeypatch.setattr(imports, "after_batch", written.append)
    before = state(engine)
    data = big_csv.read_bytes()
    with pytest.raises(OSError, match="injected read error"):
        imports.import_comtrade(engine, FailingRead(data, len(data) // 2), spec, batch_size=500)
    assert written  # batches were written before the error, then rolled back
    assert state(engine) == before


def test_a_problem_after_written_batches_writes_nothing(
    engine: Engine, big_csv: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The file is read once: batches before the first problem are written, then rolled
    back; later batches are not written, but read, so that every problem is listed."""
    spec = imports.SourceSpec(**{k.removeprefix("source_"): v for k, v in SOURCE.items()})
    lines = big_csv.read_bytes().split(b"\r\n")
    flow = re.compile(rb",[XM],(Export|Import),")
    lines[3_001] = flow.sub(rb",Q,\1,", lines[3_001], count=1)  # an unknown flowCode
    faulty = tmp_path / "faulty.csv"
    faulty.write_bytes(b"\r\n".join([*lines[:-1], b"C,A,2013", b""]))
    before = state(engine)
    written: list[int] = []
    monkeypatch.setattr(imports, "after_batch", written.append)
    with faulty.open("rb") as file, pytest.raises(DatasetInvalid) as failed:
        imports.import_comtrade(engine, file, spec, batch_size=500)
    assert [p.pointer for p in failed.value.problems] == ["/line/3002/flowCode", "/line/4002"]
    assert written and written[-1] < 3_000  # written until the problem, then no more
    assert state(engine) == before
    with big_csv.open("rb") as file:  # the same connections import again, as they should
        assert imports.import_comtrade(engine, file, spec, batch_size=500).created == 3_921
    if engine.dialect.name == "sqlite":  # the import's larger page caches are given back
        with engine.connect() as connection:
            for schema in ("main", "temp"):
                assert connection.exec_driver_sql(f"PRAGMA {schema}.cache_size").scalar() == -2000


def test_an_import_runs_a_dozen_statements_a_batch_whatever_its_size(
    engine: Engine, big_csv: Path
) -> None:
    """No statement per row: a regression guard that times nothing."""
    spec = imports.SourceSpec("comtrade-count", "Statement count")
    statements: list[str] = []

    def count(*args: Any) -> None:
        statements.append(args[2])

    event.listen(engine, "before_cursor_execute", count)
    try:
        for _ in range(2):  # creates, then all unchanged
            statements.clear()
            with big_csv.open("rb") as file:
                imports.import_comtrade(engine, file, spec, batch_size=1_000)
            assert len(statements) <= 4 * 12 + 12, statements  # 4 batches, and the source
    finally:
        event.remove(engine, "before_cursor_execute", count)


# --- memory -----------------------------------------------------------------------------------


def test_a_large_import_holds_one_batch_at_a_time(engine: Engine, tmp_path: Path) -> None:
    """Peak Python allocation stays a fraction of what holding every row would take: a
    change that reads the file into a list fails here."""
    path = tmp_path / "rows.csv"
    generate.write_comtrade(path, 8_000, seed=11)
    spec = imports.SourceSpec("comtrade-memory", "Memory test")
    with io.BytesIO(csv_bytes(years(1999))) as small:  # warm caches (queries, countries)
        imports.import_comtrade(engine, small, spec, batch_size=250)

    tracemalloc.start()
    try:
        with path.open("rb") as file:
            every_row = list(imports.ComtradeFile(file, "comtrade-memory"))
        holding_all = tracemalloc.get_traced_memory()[1]
        del every_row
        tracemalloc.reset_peak()
        with path.open("rb") as file:
            report = imports.import_comtrade(engine, file, spec, batch_size=250)
        importing = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert report.created == 7_840
    assert holding_all > 10_000_000
    assert importing < holding_all / 3, (importing, holding_all)


# --- the command line -------------------------------------------------------------------------


def dyad(*args: str | Path) -> Any:
    return CliRunner().invoke(cli, [str(a) for a in args])


def source_options() -> list[str]:
    return ["--source-id", SOURCE["source_id"], "--source-title", SOURCE["source_title"]]


@pytest.fixture
def on_cli(seeded_url: str, use_database: Callable[[str], None]) -> Iterator[str]:
    with cli_on(seeded_url, use_database):
        yield seeded_url


def test_dyad_import_of_a_comtrade_csv(on_cli: str, engine: Engine, tmp_path: Path) -> None:
    path = tmp_path / "comtrade.csv"
    path.write_bytes(GOOD_CSV)
    before = state(engine)
    result = dyad("import", path, "--format", "comtrade", "--dry-run", *source_options())
    assert result.exit_code == 0, result.output
    assert "Would write: 4 created, 0 updated, 0 unchanged. Dataset revision 2." in result.output
    assert "Skipped 2 row(s): 1 flow, 1 world." in result.output
    assert state(engine) == before
    result = dyad("import", path, "--format", "comtrade", *source_options())
    assert "Wrote: 4 created, 0 updated, 0 unchanged. Dataset revision 2." in result.output
    assert "rows/s" not in result.output  # a few rows: no progress bar
    result = dyad("import", path, "--format", "comtrade", "--source-id", SOURCE["source_id"])
    assert "Nothing changed (3 records already up to date)." in result.output


def test_dyad_import_lists_every_problem_and_writes_nothing(
    on_cli: str, engine: Engine, tmp_path: Path
) -> None:
    before = state(engine)
    path = tmp_path / "faulty.csv"
    path.write_bytes(comtrade_fault(row(primaryValue="n/a"), row(reporterISO="", reporterCode="9")))
    result = dyad("import", path, "--format", "comtrade", *source_options())
    assert result.exit_code == 1
    assert "2 problem(s)" in result.output
    assert "│ line 4, primaryValue " in result.output and "│ line 5, reporterCode " in result.output
    assert "Nothing was written." in result.output
    raw = seed_with(trade=[GOOD_TRADE, {**NEW_TRADE, "id": GOOD_TRADE["id"]}])
    (tmp_path / "faulty.json").write_bytes(json.dumps(raw).encode())
    result = dyad("import", tmp_path / "faulty.json")
    assert result.exit_code == 1 and "│ /trade/1/id " in result.output
    assert "Nothing was written." in result.output
    result = dyad("import", tmp_path / "missing.csv", "--format", "comtrade", *source_options())
    assert result.exit_code == 1 and "cannot read" in result.output
    result = dyad("import", path, "--format", "comtrade")
    assert result.exit_code == 2 and "--source-id" in result.output
    result = dyad("import", path, "--format", "xlsx")
    assert result.exit_code == 2 and "Unknown format 'xlsx'" in result.output
    assert state(engine) == before


def test_dyad_import_shows_progress_on_large_files(on_cli: str, tmp_path: Path) -> None:
    path = tmp_path / "large.csv"
    generate.write_comtrade(path, 6_000, seed=6)
    result = dyad("import", path, "--format", "comtrade", "--dry-run", *source_options())
    assert result.exit_code == 0, result.output
    assert "Writing (dry run)" in result.output
    assert "rows/s" in result.output and "6,000 rows" in result.output


def test_dyad_import_help() -> None:
    result = dyad("import", "--help")
    assert result.exit_code == 0
    for option in ("--format", "--dry-run", "--source-id", "--source-title"):
        assert option in result.output
