"""The Comtrade CSV reader: columns, codes, skips, values, and every problem located."""

from __future__ import annotations

import csv
import io

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app import comtrade
from app.comtrade import ComtradeFile, parse_value, where
from app.records import TradeRecord
from app.validation import Problem

HEADER = [
    "typeCode",
    "freqCode",
    "refYear",
    "period",
    "reporterCode",
    "reporterISO",
    "reporterDesc",
    "flowCode",
    "partnerCode",
    "partnerISO",
    "partnerDesc",
    "cmdCode",
    "primaryValue",
]
GOOD = {
    "typeCode": "C",
    "freqCode": "A",
    "refYear": "2021",
    "period": "2021",
    "reporterCode": "398",
    "reporterISO": "KAZ",
    "reporterDesc": "Kazakhstan",
    "flowCode": "X",
    "partnerCode": "31",
    "partnerISO": "AZE",
    "partnerDesc": "Azerbaijan",
    "cmdCode": "TOTAL",
    "primaryValue": "231512345.21",
}


def row(**cells: str) -> dict[str, str]:
    return {**GOOD, **cells}


def csv_bytes(rows: list[dict[str, str]], header: list[str] = HEADER, bom: bool = False) -> bytes:
    text = io.StringIO()
    writer = csv.DictWriter(text, header, extrasaction="ignore", lineterminator="\r\n")
    writer.writeheader()
    writer.writerows(rows)
    return (b"\xef\xbb\xbf" if bom else b"") + text.getvalue().encode()


def read(data: bytes) -> tuple[list[TradeRecord], ComtradeFile]:
    file = ComtradeFile(io.BytesIO(data), "comtrade-2024")
    return list(file), file


def problems_of(data: bytes) -> list[Problem]:
    return read(data)[1].all_problems()


# --- what a row becomes ---------------------------------------------------------------------


def test_a_row_becomes_a_trade_figure_citing_its_line() -> None:
    data = csv_bytes([row(), row(flowCode="M", primaryValue="1000")])
    records, file = read(data)
    assert file.all_problems() == [] and file.rows == 2
    first = records[0].model_dump()
    line = data.decode().split("\r\n")[1]
    assert first == {
        "id": "comtrade-kz-az-2021-export",
        "reporter": "KZ",
        "partner": "AZ",
        "year": 2021,
        "flow": "export",
        "value": 231512345,
        "currency": "USD",
        "approximate": False,
        "sources": [{"source": "comtrade-2024", "quote": line}],
    }
    assert records[1].id == "comtrade-kz-az-2021-import" and records[1].flow == "import"
    # What the reader makes is a record the dataset format accepts as it is.
    for record in records:
        assert TradeRecord.model_validate(record.model_dump()) == record


def test_the_quote_is_the_line_as_the_file_has_it() -> None:
    data = csv_bytes([row(reporterDesc='Korea, "Republic" of', reporterISO="KOR")])
    record = read(data)[0][0]
    assert record.sources[0].quote == (
        'C,A,2021,2021,398,KOR,"Korea, ""Republic"" of",X,31,AZE,Azerbaijan,TOTAL,231512345.21'
    )


@pytest.mark.parametrize(
    ("code", "expected"),
    [("251", "FR"), ("381", "IT"), ("842", "US"), ("699", "IN"), ("757", "CH"), ("579", "NO")],
)
def test_comtrade_codes_that_are_not_iso_are_mapped(code: str, expected: str) -> None:
    records, file = read(csv_bytes([row(reporterISO="", reporterCode=code)]))
    assert not file.all_problems()
    assert records[0].reporter == expected
    records, _ = read(csv_bytes([row(partnerISO="", partnerCode=code)]))
    assert records[0].partner == expected


def test_the_alpha_3_code_comes_first_then_the_numeric_code() -> None:
    records, _ = read(csv_bytes([row(reporterISO="fra", reporterCode="251"), row(reporterISO="")]))
    assert [r.reporter for r in records] == ["FR", "KZ"]
    # An ISO column Comtrade filled with its own code for an area falls back on the number.
    records, file = read(csv_bytes([row(partnerISO="_X", partnerCode="31")]))
    assert records[0].partner == "AZ" and not file.all_problems()


def test_world_and_other_areas_are_skipped_and_counted() -> None:
    rows = [
        row(),
        row(partnerCode="0", partnerISO="W00", partnerDesc="World"),
        row(partnerCode="0", partnerISO="", partnerDesc=""),
        row(partnerCode="", partnerISO="", partnerDesc="World"),
        row(partnerCode="899", partnerISO="_X", partnerDesc="Areas, nes"),
        row(reporterCode="490", reporterISO="S19", reporterDesc="Other Asia, nes"),
        row(partnerCode="837", partnerISO="", partnerDesc="Bunkers"),
    ]
    records, file = read(csv_bytes(rows))
    assert len(records) == 1 and not file.all_problems()
    assert file.skipped == {"world": 3, "area": 3}
    assert file.rows == 7


def test_other_flows_and_breakdowns_are_skipped_and_counted() -> None:
    header = [*HEADER, "motCode", "customsCode", "partner2Code"]
    rows = [
        row(motCode="0", customsCode="C00", partner2Code="0"),
        row(flowCode="RX", motCode="0"),
        row(flowCode="RM"),
        row(flowCode="m", refYear="2020"),
        row(cmdCode="27", refYear="2019"),
        row(motCode="2100", refYear="2018"),
        row(customsCode="C01", refYear="2017"),
        row(partner2Code="643", refYear="2016"),
    ]
    records, file = read(csv_bytes(rows, header))
    assert not file.all_problems()
    assert [(r.year, r.flow) for r in records] == [(2021, "export"), (2020, "import")]
    assert file.skipped == {"flow": 2, "breakdown": 4}
    assert set(comtrade.SKIP_REASONS) >= set(file.skipped)


def test_the_year_comes_from_ref_year_or_else_period() -> None:
    header = [h for h in HEADER if h != "refYear"]
    records, file = read(csv_bytes([row(period="2019"), row(period="202012")], header))
    assert not file.all_problems()
    assert [r.year for r in records] == [2019, 2020]
    records, _ = read(csv_bytes([row(refYear="", period="2018")]))
    assert records[0].year == 2018


def test_bom_extra_columns_any_case_and_tabs_are_read() -> None:
    header = ["", "Extra", *[h.upper() for h in HEADER]]
    rows = [{"": "0", "Extra": "x", **{h.upper(): v for h, v in GOOD.items()}}]
    records, file = read(csv_bytes(rows, header, bom=True))
    assert [r.id for r in records] == ["comtrade-kz-az-2021-export"] and not file.all_problems()
    tsv = "\t".join(HEADER) + "\n" + "\t".join(GOOD[h] for h in HEADER) + "\n"
    records, file = read(tsv.encode())
    assert [r.value for r in records] == [231512345] and not file.all_problems()


def test_multi_line_fields_keep_line_numbers_right() -> None:
    rows = [row(reporterDesc="Kazakhstan\n(multi-line)"), row(primaryValue="bad")]
    assert [p.pointer for p in problems_of(csv_bytes(rows))] == ["/line/4/primaryValue"]
    records, _ = read(csv_bytes(rows[:1]))
    assert "\n(multi-line)" in records[0].sources[0].quote


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("0", 0),
        ("0.5", 0),
        ("1.5", 2),
        ("2.5", 2),
        ("3.5", 4),
        ("332200000", 332200000),
        ("332200000.49", 332200000),
        (" 1e3 ", 1000),
        ("1.2E+9", 1200000000),
        ("+7", 7),
        (".5", 0),
        ("-0", 0),
        (str(10**18), 10**18),
    ],
)
def test_values_are_whole_dollars_rounded_half_to_even(text: str, value: int) -> None:
    assert parse_value(text) == value


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "primaryValue is empty"),
        ("abc", "is not a number"),
        ("1,000", "is not a number"),
        ("1_000", "is not a number"),
        ("NaN", "is not a number"),
        ("Infinity", "is not a number"),
        ("\u0661\u0662", "is not a number"),
        ("-1", "is negative"),
        ("-0.01", "is negative"),
        ("1e19", "is more than"),
        ("9" * 400, "is more than"),
    ],
)
def test_values_that_are_not_amounts_are_problems(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_value(text)


@settings(max_examples=500, deadline=None)
@given(
    text=st.from_regex(r"[0-9]{1,20}(\.[0-9]{0,8})?", fullmatch=True)
    | st.from_regex(r"[0-9]{1,17}\.50*", fullmatch=True)
    | st.text(max_size=25)
)
def test_the_quick_reading_of_plain_amounts_agrees_with_parse_value(text: str) -> None:
    """The reader reads ``123`` and ``123.45`` without Decimal; whatever it reads so must be
    what parse_value reads, and anything else it leaves to parse_value."""
    quick = comtrade._plain_value(text)
    if quick is not None:
        assert quick == parse_value(text)


# --- problems, each where it is ---------------------------------------------------------------


FAULTS: list[tuple[str, dict[str, str], str, str]] = [
    ("unknown ISO code", {"reporterISO": "XXX", "reporterCode": ""}, "reporterISO", "unknown"),
    ("unknown Comtrade code", {"partnerISO": "", "partnerCode": "999"}, "partnerCode", "999"),
    ("code not a number", {"partnerISO": "", "partnerCode": "3x"}, "partnerCode", "not a Comtrade"),
    ("no partner", {"partnerISO": "", "partnerCode": "", "partnerDesc": ""}, "partnerISO", "no "),
    ("non-numeric value", {"primaryValue": "n/a"}, "primaryValue", "not a number"),
    ("negative value", {"primaryValue": "-12"}, "primaryValue", "negative"),
    ("empty value", {"primaryValue": ""}, "primaryValue", "empty"),
    ("year not a number", {"refYear": "20x1"}, "refYear", "not a year"),
    ("year out of range", {"refYear": "1700"}, "refYear", "between 1800 and 2200"),
    ("unknown flow", {"flowCode": "Z"}, "flowCode", "unknown flowCode"),
    ("monthly figure", {"freqCode": "M"}, "freqCode", "annual"),
    ("reporter is partner", {"partnerISO": "KAZ"}, "partnerISO", "the partner is the reporter"),
]


@pytest.mark.parametrize(
    ("cells", "column", "message"), [f[1:] for f in FAULTS], ids=[f[0] for f in FAULTS]
)
def test_a_faulty_cell_is_a_problem_at_its_line_and_column(
    cells: dict[str, str], column: str, message: str
) -> None:
    rows = [row(refYear="2020"), row(**cells), row(refYear="2019")]
    problems = problems_of(csv_bytes(rows))
    assert [p.pointer for p in problems] == [f"/line/3/{column}"]
    assert message in problems[0].message
    assert where(problems[0]) == f"line 3, {column}"


def test_every_problem_of_every_row_is_listed() -> None:
    rows = [
        row(primaryValue="x", flowCode="Q"),
        row(refYear="2020"),
        row(refYear="1", reporterISO="", reporterCode="1234"),
    ]
    assert [p.pointer for p in problems_of(csv_bytes(rows))] == [
        "/line/2/flowCode",
        "/line/2/primaryValue",
        "/line/4/refYear",
        "/line/4/reporterCode",
    ]


@pytest.mark.parametrize("missing", ["primaryValue", "flowCode", "partnerISO"])
def test_a_missing_column_is_a_problem_of_the_header(missing: str) -> None:
    header = [h for h in HEADER if h != missing and h != missing.replace("ISO", "Code")]
    problems = problems_of(csv_bytes([row()], header))
    assert [p.pointer for p in problems] == ["/line/1"]
    assert f"no {missing} column" in problems[0].message


def test_lines_that_are_not_rows_are_problems() -> None:
    good = ",".join(GOOD[h] for h in HEADER)
    lines = [
        ",".join(HEADER),
        good.replace("2021", "2020", 1),
        good + ",extra",  # more fields than the header
        "C,A,2021",  # fewer
        good.replace("Azerbaijan", "Azer\x00baijan"),
        "",  # a blank line is no row
        good,
        good,  # the same figure twice
    ]
    data = "\n".join(lines).encode() + b"\n" + good.replace("Kaz", "K\xe4z").encode("latin-1")
    file = read(data)[1]
    assert [(p.pointer, p.message.split(":")[0][:30]) for p in file.all_problems()] == [
        ("/line/3", "14 fields, but the header name"),
        ("/line/4", "3 fields, but the header names"),
        ("/line/5", "the line holds a NUL character"),
        ("/line/8", "an earlier row has the same re"),
        ("/line/9", "not UTF-8 text (byte 24 of the"),
        ("/line/9", "an earlier row has the same re"),
    ]
    assert file.rows == 7


def test_an_overlong_line_is_a_problem() -> None:
    data = csv_bytes([row(reporterDesc="x" * 50_000), row(refYear="2020")])
    records, file = read(data)
    assert [p.pointer for p in file.all_problems()] == ["/line/2"]
    assert "longer than" in file.all_problems()[0].message
    assert [r.year for r in records] == [2020]


def test_lines_read_in_blocks_are_the_lines_of_the_file(monkeypatch: pytest.MonkeyPatch) -> None:
    """Blocks cut lines, quoted fields, multi-byte characters and overlong lines anywhere:
    what is read is the same whatever the block size."""
    good = ",".join(GOOD[h] for h in HEADER)
    lines = [
        ",".join(HEADER),
        good.replace("2021", "2001", 1),
        good.replace("Kazakhstan", '"Kazakhstan,\r\nRepublic of"').replace("2021", "2002", 1),
        good.replace("Azerbaijan", "Azərbaycan").replace("2021", "2003", 1),
        good.replace("Kazakhstan", "K" * 45_000),
        "",
        good.replace("2021", "2004", 1).replace("231512345.21", "bad"),
        good.replace("Azerbaijan", "Aser\x00baijan").replace("2021", "2005", 1),
        good.replace("2021", "2006", 1),
    ]
    data = ("\ufeff" + "\r\n".join(lines)).encode()  # no line break at the end
    data = data.replace("Azərbaycan".encode(), b"Az\xe9rbaycan", 1)

    def outcome() -> tuple[list[TradeRecord], list[Problem], int, int]:
        records, file = read(data)
        return records, file.all_problems(), file.rows, file.bytes_read

    whole = outcome()
    # Line 5 is not UTF-8: a problem, though its row is read (with replacement characters).
    assert [r.year for r in whole[0]] == [2001, 2002, 2003, 2006]
    assert "\r\nRepublic of" in whole[0][1].sources[0].quote
    assert [p.pointer for p in whole[1]] == [
        "/line/5",
        "/line/6",
        "/line/8/primaryValue",
        "/line/9",
    ]
    assert whole[2:] == (6, len(data))
    for size in (1, 7, 64, 4096, 44_999, 45_000, 45_001):
        monkeypatch.setattr(comtrade, "BLOCK_BYTES", size)
        assert outcome() == whole, size


@pytest.mark.parametrize("data", [b"", b"\xef\xbb\xbf", b"\n\n  \n"])
def test_an_empty_file_is_a_problem(data: bytes) -> None:
    problems = problems_of(data)
    assert [p.pointer for p in problems] == ["/line/1"]
    assert "the file is empty" in problems[0].message


def test_problems_are_capped_and_the_rest_counted() -> None:
    rows = [row(primaryValue="bad", refYear=str(1900 + i % 300)) for i in range(1_500)]
    file = ComtradeFile(io.BytesIO(csv_bytes(rows)), "s", max_problems=1_000)
    problems = file.check()
    assert len(problems) == 1_001
    assert problems[-1] == Problem("", "… and 500 more problem(s) not listed")
    assert file.problem_count == 1_500


def test_progress_is_told_bytes_and_rows() -> None:
    data = csv_bytes([row(refYear=str(2000 + i)) for i in range(25)])
    seen: list[tuple[int, int]] = []
    ComtradeFile(
        io.BytesIO(data), "s", progress=lambda b, r: seen.append((b, r)), progress_every=10
    ).check()
    assert seen[-1] == (len(data), 25)
    assert (lambda rows: rows == sorted(rows) and 10 in rows and 20 in rows)([r for _, r in seen])


# --- anything at all in a cell --------------------------------------------------------------

CELL = st.text(max_size=30) | st.sampled_from(
    ["", "0", "W00", "842", "KAZ", "X", "M", "2021", "1e3"]
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cells=st.fixed_dictionaries({h: CELL for h in HEADER}))
def test_any_text_in_any_cell_is_a_record_a_skip_or_a_problem(cells: dict[str, str]) -> None:
    records, file = read(csv_bytes([row(refYear="2020"), cells, row(refYear="2019")]))
    problems = file.all_problems()
    assert all(p.pointer.startswith("/line/") and p.message for p in problems)
    faulty_rows = {p.pointer.split("/")[2] for p in problems}
    assert file.rows == 3
    assert len(records) + sum(file.skipped.values()) + len(faulty_rows) == 3
    for record in records:
        assert TradeRecord.model_validate(record.model_dump()) == record


@settings(max_examples=500, deadline=None)
@given(text=st.text(max_size=60) | st.from_regex(r"[+-]?\d{0,25}(\.\d{0,5})?([eE][+-]?\d{1,30})?"))
def test_any_text_as_a_value_is_an_amount_or_a_value_error(text: str) -> None:
    try:
        value = parse_value(text)
    except ValueError as exc:
        assert str(exc)
    else:
        assert 0 <= value <= 10**18


def test_the_generated_comtrade_file_reads_without_problems() -> None:
    from test_export import generate  # the bench generator, loaded from its path

    text = io.StringIO()
    writer = csv.writer(text)
    writer.writerow(generate.COMTRADE_COLUMNS)
    writer.writerows(generate.comtrade_rows(500, 3))
    records, file = read(text.getvalue().encode())
    assert not file.all_problems()
    assert file.skipped == {"world": 10} and len(records) == 490
    assert len({r.id for r in records}) == 490
