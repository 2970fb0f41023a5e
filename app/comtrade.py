"""UN Comtrade CSV, read as a stream: each row a trade figure, a counted skip or a problem.

The file is the CSV that Comtrade's download tool writes: comma-separated (tab-separated,
as in its bulk files, works too), UTF-8 with or without a byte order mark, columns in any
order under the header names Comtrade gives them (in any case); other columns are ignored.
The columns read:

- ``refYear``, or else ``period`` (``2021``, or ``202101`` of which the year is taken);
- ``reporterISO`` (ISO 3166-1 alpha-3), or else ``reporterCode``: Comtrade's numeric code,
  which is the ISO 3166-1 numeric code except for the countries of :data:`COMTRADE_CODES`
  (251 France, 381 Italy, 579 Norway, 699 India, 757 Switzerland, 842 United States);
  ``partnerISO`` and ``partnerCode`` likewise;
- ``flowCode``: ``X`` an export, ``M`` an import, as the reporter reported it;
- ``primaryValue``: US dollars, rounded half to even to whole dollars;
- ``freqCode``, when present, must be ``A``: Dyad stores yearly figures.

Rows that are not a yearly flow between two countries are skipped and counted by reason
(:data:`SKIP_REASONS`). Every other row becomes the trade figure
``comtrade-<reporter>-<partner>-<year>-<flow>``, so that importing it again updates it in
place, and cites the import's source with the row exactly as the file has it.

Problems are located by a pointer ``/line/<n>/<column>``: ``n`` is the line of the file (the
header is line 1), the column is named as in the header; ``/line/<n>`` is the whole line.
"""

from __future__ import annotations

import csv
import re
from collections import Counter
from collections.abc import Callable, Iterator
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from functools import cache
from itertools import chain
from typing import IO, Literal, NamedTuple

import pycountry

from app.records import Cite, TradeRecord
from app.validation import Problem, pointer

# Comtrade's numeric codes for countries whose ISO 3166-1 numeric code it does not use.
COMTRADE_CODES = {251: "FR", 381: "IT", 579: "NO", 699: "IN", 757: "CH", 842: "US"}
WORLD_CODE, WORLD_ISO, WORLD_NAME = 0, "W00", "world"
# Comtrade codes of areas that are no current ISO 3166-1 country: regions "not elsewhere
# specified" (Areas, nes 899; Other Asia, nes 490; ...), the EU (97), bunkers (837), free
# zones (838), special categories (839), customs unions (711) and former or partial
# territories (the USSR 810, Yugoslavia 890, Sikkim 698, ...). Dyad cannot store them.
AREA_CODES = frozenset(
    {
        *(58, 80, 97, 129, 200, 221, 230, 278, 280, 283, 290, 412, 457, 459, 461, 471, 472),
        *(473, 488, 490, 527, 530, 532, 536, 568, 577, 582, 588, 590, 592, 636, 637, 647),
        *(658, 680, 697, 698, 711, 717, 720, 736, 810, 835, 836, 837, 838, 839, 841, 849),
        *(866, 868, 872, 879, 886, 890, 891, 899),
    }
)
Flow = Literal["export", "import"]
FLOWS: dict[str, Flow] = {"X": "export", "M": "import"}
# Flows Comtrade details besides exports and imports: re-exports and re-imports, domestic
# exports and foreign imports, goods sent for or returned from processing.
OTHER_FLOWS = frozenset({"RX", "RM", "DX", "FM", "MIP", "MOP", "XIP", "XOP"})
# Columns that split a total; a row whose value is not the total's is a breakdown.
TOTALS = {"cmdcode": "TOTAL", "motcode": "0", "customscode": "C00", "partner2code": "0"}
SKIP_REASONS = {
    "world": "the partner (or reporter) is World, the total of all partners",
    "area": "a Comtrade area that is no current ISO 3166-1 country (Areas, nes; bunkers; "
    "free zones; special categories; former countries)",
    "flow": "a flow other than exports (X) and imports (M): re-exports (RX), re-imports (RM) "
    "and the other details of a flow",
    "breakdown": "one commodity, mode of transport, customs procedure or second partner "
    "instead of the total (cmdCode TOTAL, motCode 0, customsCode C00, partner2Code 0)",
}
COLUMNS = "refYear (or period), reporterISO (or reporterCode), partnerISO (or partnerCode), "
COLUMNS += "flowCode and primaryValue"
REQUIRED = {
    "refYear": ("refyear", "period"),
    "reporterISO": ("reporteriso", "reportercode"),
    "partnerISO": ("partneriso", "partnercode"),
    "flowCode": ("flowcode",),
    "primaryValue": ("primaryvalue",),
}
MAX_PROBLEMS = 1_000  # listed; the rest are counted, so that a garbage file stays small
MAX_LINE_BYTES = 40_000
MAX_QUOTE = 10_000  # characters of a citation's quote
MAX_VALUE = 10**18
MIN_YEAR, MAX_YEAR = 1800, 2200
CURRENCY = "USD"
_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?", re.ASCII)
_DIGITS = re.compile(r"\d+", re.ASCII)


@cache
def _countries() -> tuple[dict[str, str], dict[int, str], dict[str, int]]:
    """alpha-3 -> alpha-2, ISO numeric -> alpha-2, alpha-2 -> its index among all."""
    countries = sorted(pycountry.countries, key=lambda c: c.alpha_2)
    return (
        {c.alpha_3: c.alpha_2 for c in countries},
        {int(c.numeric): c.alpha_2 for c in countries},
        {c.alpha_2: i for i, c in enumerate(countries)},
    )


class Side(NamedTuple):
    """What a row's reporter or partner cells name: a ``country`` (``code`` its alpha-2),
    ``world``, an ``area``, or a ``problem`` with the ``column`` it is in."""

    kind: str
    code: str = ""
    column: str = ""
    message: str = ""


# A row's trade figure before it is one: id, reporter, partner, year, flow, value, quote.
_Fields = tuple[str, str, str, int, Flow, int, str]


def trade_id(reporter: str, partner: str, year: int, flow: str) -> str:
    return f"comtrade-{reporter}-{partner}-{year}-{flow}".lower()


def parse_value(text: str) -> int:
    """A ``primaryValue`` in whole US dollars, or a ``ValueError`` saying what is wrong."""
    text = text.strip()
    if not text:
        raise ValueError("no value: primaryValue is empty")
    if not _NUMBER.fullmatch(text):
        raise ValueError(f"{text[:40]!r} is not a number of US dollars")
    value = Decimal(text)
    if value < 0:
        raise ValueError(f"{text[:40]!r} is negative: a trade value is 0 or more")
    if value > MAX_VALUE:
        raise ValueError(f"{text[:40]!r} is more than {MAX_VALUE} US dollars")
    try:
        return int(value.to_integral_value(rounding=ROUND_HALF_EVEN))
    except InvalidOperation:  # an exponent beyond what decimal computes with
        raise ValueError(f"{text[:40]!r} is not a number of US dollars") from None


class ComtradeFile:
    """One pass over a Comtrade CSV, holding one row at a time.

    Iterating yields the trade figures of the rows without problems; meanwhile ``rows``
    counts the data rows, ``skipped`` the rows skipped by reason, and :meth:`all_problems`
    lists what is wrong. ``progress`` is told the bytes and rows read so far, now and then.
    """

    def __init__(
        self,
        stream: IO[bytes],
        source: str,
        *,
        progress: Callable[[int, int], None] | None = None,
        progress_every: int = 1_000,
        max_problems: int = MAX_PROBLEMS,
    ) -> None:
        self.stream = stream
        self.source = source
        self.progress = progress
        self.progress_every = progress_every
        self.max_problems = max_problems
        self.rows = 0
        self.bytes_read = 0
        self.skipped: Counter[str] = Counter()
        self.problems: list[Problem] = []
        self.problem_count = 0
        self._line = 0
        self._raw: list[str] = []
        self._names: list[str] = []
        self._columns: dict[str, int] = {}
        # One bit per (reporter, partner, flow) and year seen: duplicates found in ~15 kB a
        # year of data, where a set of ids would grow with the file.
        self._seen: dict[int, bytearray] = {}

    def all_problems(self) -> list[Problem]:
        more = self.problem_count - len(self.problems)
        if not more:
            return list(self.problems)
        return [*self.problems, Problem("", f"… and {more} more problem(s) not listed")]

    # --- reading ----------------------------------------------------------------------

    def _problem(self, where: str, message: str) -> None:
        self.problem_count += 1
        if len(self.problems) < self.max_problems:
            self.problems.append(Problem(where, message))

    def _lines(self) -> Iterator[str]:
        """The file's lines as text, each also kept in ``_raw`` for the row's quote."""
        while raw := self.stream.readline(MAX_LINE_BYTES + 1):
            self.bytes_read += len(raw)
            self._line += 1
            if len(raw) > MAX_LINE_BYTES and not raw.endswith(b"\n"):
                while raw and not raw.endswith(b"\n"):  # skip the rest of the line
                    raw = self.stream.readline(MAX_LINE_BYTES)
                    self.bytes_read += len(raw)
                where = pointer("line", self._line)
                self._problem(where, f"the line is longer than {MAX_LINE_BYTES} bytes")
                raw = b"\n"
            if self._line == 1:
                raw = raw.removeprefix(b"\xef\xbb\xbf")
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                where = pointer("line", self._line)
                self._problem(where, f"not UTF-8 text (byte {exc.start + 1} of the line)")
                text = raw.decode("utf-8", "replace")
            self._raw.append(text)
            yield text

    def __iter__(self) -> Iterator[TradeRecord]:
        for id_, reporter, partner, year, flow, value, quote in self._rows():
            yield TradeRecord.model_construct(
                id=id_,
                reporter=reporter,
                partner=partner,
                year=year,
                flow=flow,
                value=value,
                currency=CURRENCY,
                approximate=False,
                sources=[Cite.model_construct(source=self.source, quote=quote)],
            )

    def check(self) -> list[Problem]:
        """Read the whole file for its problems only (faster than making the records)."""
        for _ in self._rows():
            pass
        return self.all_problems()

    def _rows(self) -> Iterator[_Fields]:
        lines = self._lines()
        first = next(lines, None)
        while first is not None and not first.strip():
            self._raw.clear()
            first = next(lines, None)
        if first is None:
            self._problem(
                pointer("line", 1),
                f"the file is empty: a Comtrade CSV starts with a header line naming {COLUMNS}",
            )
            return
        delimiter = "\t" if "\t" in first and "," not in first else ","
        reader = csv.reader(chain([first], lines), delimiter=delimiter)
        start = self._line
        header = True
        while True:
            try:
                row = next(reader)
            except StopIteration:
                break
            except csv.Error as exc:
                self._problem(pointer("line", start), f"not a well-formed CSV line: {exc}")
                row = []
            text = "".join(self._raw)
            if header:
                if not self._header(row, start):
                    return
                header = False
            elif row:
                record = self._row(start, row, text)
                if record is not None:
                    yield record
            if self.progress is not None and self.rows % self.progress_every == 0:
                self.progress(self.bytes_read, self.rows)
            start = self._line + 1
            self._raw.clear()
        if self.progress is not None:
            self.progress(self.bytes_read, self.rows)

    def _header(self, row: list[str], line: int) -> bool:
        self._names = row
        for i, name in enumerate(row):
            self._columns.setdefault(name.strip().lower(), i)
        missing = [
            name for name, keys in REQUIRED.items() if not any(key in self._columns for key in keys)
        ]
        for name in missing:
            self._problem(
                pointer("line", line),
                f"the header has no {name} column: a Comtrade CSV names {COLUMNS}",
            )
        return not missing

    # --- one row ----------------------------------------------------------------------

    def _cell(self, row: list[str], key: str) -> str:
        i = self._columns.get(key)
        return row[i].strip() if i is not None else ""

    def _at(self, line: int, key: str) -> str:
        return pointer("line", line, self._names[self._columns[key]].strip())

    def _row(self, line: int, row: list[str], text: str) -> _Fields | None:
        self.rows += 1
        if len(row) != len(self._names):
            self._problem(
                pointer("line", line), f"{len(row)} fields, but the header names {len(self._names)}"
            )
            return None
        reporter = self._side(row, "reporter")
        partner = self._side(row, "partner")
        reason = self._skip_reason(row, reporter, partner)
        if reason is not None:
            self.skipped[reason] += 1
            return None
        before = self.problem_count
        quote = text.strip()
        if "\x00" in quote:
            self._problem(pointer("line", line), "the line holds a NUL character")
        elif len(quote) > MAX_QUOTE:
            self._problem(pointer("line", line), f"the line is longer than {MAX_QUOTE} characters")
        frequency = self._cell(row, "freqcode")
        if frequency and frequency.upper() != "A":
            self._problem(
                self._at(line, "freqcode"),
                f"freqCode {frequency[:20]!r}: only annual figures (A) can be imported",
            )
        flow = FLOWS.get(self._cell(row, "flowcode").upper())
        if flow is None:
            code = self._cell(row, "flowcode")
            self._problem(
                self._at(line, "flowcode"),
                f"unknown flowCode {code[:20]!r}: X (export) and M (import) are imported, "
                f"{', '.join(sorted(OTHER_FLOWS))} are skipped",
            )
        year = self._year(line, row)
        for side in (reporter, partner):
            if side.kind == "problem":
                self._problem(self._at(line, side.column), side.message)
        value = self._value(line, row)
        if reporter.kind == partner.kind == "country" and reporter.code == partner.code:
            key = "partneriso" if self._cell(row, "partneriso") else "partnercode"
            self._problem(self._at(line, key), "the partner is the reporter")
        if self.problem_count > before or flow is None or year is None or value is None:
            return None
        if self._seen_before(reporter.code, partner.code, year, flow):
            self._problem(
                pointer("line", line),
                "an earlier row has the same reporter, partner, year and flow",
            )
            return None
        id_ = trade_id(reporter.code, partner.code, year, flow)
        return id_, reporter.code, partner.code, year, flow, value, quote

    def _side(self, row: list[str], side: str) -> Side:
        iso = self._cell(row, f"{side}iso")
        code = self._cell(row, f"{side}code")
        if iso.upper() == WORLD_ISO or code == str(WORLD_CODE):
            return Side("world")
        if self._cell(row, f"{side}desc").lower() == WORLD_NAME:
            return Side("world")
        by_alpha3, by_numeric, _ = _countries()
        if iso and iso.upper() in by_alpha3:
            return Side("country", by_alpha3[iso.upper()])
        if code:
            if not _DIGITS.fullmatch(code) or len(code) > 6:
                message = f"{code[:20]!r} is not a Comtrade country code (a number such as 398)"
                return Side("problem", column=f"{side}code", message=message)
            number = int(code)
            if number == WORLD_CODE:
                return Side("world")
            if number in AREA_CODES:
                return Side("area")
            found = COMTRADE_CODES.get(number) or by_numeric.get(number)
            if found is None:
                message = f"unknown Comtrade country code {code!r}"
                return Side("problem", column=f"{side}code", message=message)
            return Side("country", found)
        if iso:
            message = (
                f"unknown country code {iso[:20]!r}: {side}ISO is an ISO 3166-1 alpha-3 code "
                "such as KAZ"
            )
            return Side("problem", column=f"{side}iso", message=message)
        column = f"{side}iso" if f"{side}iso" in self._columns else f"{side}code"
        return Side(
            "problem", column=column, message=f"no {side}: {side}ISO and {side}Code are empty"
        )

    def _skip_reason(self, row: list[str], reporter: Side, partner: Side) -> str | None:
        kinds = {reporter.kind, partner.kind}
        if "world" in kinds:
            return "world"
        if "area" in kinds:
            return "area"
        for key, total in TOTALS.items():
            value = self._cell(row, key)
            if value and value.upper() != total:
                return "breakdown"
        if self._cell(row, "flowcode").upper() in OTHER_FLOWS:
            return "flow"
        return None

    def _year(self, line: int, row: list[str]) -> int | None:
        key = "refyear" if self._cell(row, "refyear") or "period" not in self._columns else "period"
        text = self._cell(row, key)
        if not text:
            self._problem(self._at(line, key), "no year: refYear and period are empty")
            return None
        digits = text[:4] if key == "period" and len(text) == 6 else text
        if not (_DIGITS.fullmatch(text) and len(digits) == 4):
            self._problem(self._at(line, key), f"{text[:20]!r} is not a year such as 2021")
            return None
        year = int(digits)
        if not MIN_YEAR <= year <= MAX_YEAR:
            self._problem(
                self._at(line, key), f"year {year} is not between {MIN_YEAR} and {MAX_YEAR}"
            )
            return None
        return year

    def _value(self, line: int, row: list[str]) -> int | None:
        try:
            return parse_value(self._cell(row, "primaryvalue"))
        except ValueError as exc:
            self._problem(self._at(line, "primaryvalue"), str(exc))
            return None

    def _seen_before(self, reporter: str, partner: str, year: int, flow: Flow) -> bool:
        index = _countries()[2]
        size = len(index)
        bit = (index[reporter] * size + index[partner]) * 2 + (flow == "import")
        seen = self._seen.get(year)
        if seen is None:
            seen = self._seen[year] = bytearray((size * size * 2 + 7) // 8)
        byte, mask = bit >> 3, 1 << (bit & 7)
        if seen[byte] & mask:
            return True
        seen[byte] |= mask
        return False


def where(problem: Problem) -> str:
    """A problem's place as a person reads it: ``line 17, primaryValue``."""
    parts = problem.pointer.split("/")
    if len(parts) >= 3 and parts[1] == "line":
        column = "/".join(parts[3:]).replace("~1", "/").replace("~0", "~")
        return f"line {parts[2]}" + (f", {column}" if column else "")
    return problem.pointer or "the file"
