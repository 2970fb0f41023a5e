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
from operator import itemgetter
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
# The cells a row is read from (what _row unpacks).
CELLS = (
    *("reporteriso", "reportercode", "reporterdesc", "partneriso", "partnercode", "partnerdesc"),
    *("flowcode", "primaryvalue", "freqcode", "refyear", "period", *TOTALS),
)
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
    place: int = -1  # a country's place among all (see _countries), for the duplicate check


# A row's trade figure before it is one: id, reporter, partner, year, flow, value, quote.
Figure = tuple[str, str, str, int, Flow, int, str]
BLOCK_BYTES = 1 << 20  # read at a time; lines are cut from the blocks
MEMO_SIZE = 4_096  # cell values remembered with what they mean; a file repeats the same ones


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


def _plain_value(text: str) -> int | None:
    """:func:`parse_value` of the common ``123`` or ``123.45`` without going through Decimal,
    or None when the text is anything else (which parse_value then reads)."""
    whole, _, cents = text.partition(".")
    if not (whole.isascii() and whole.isdigit() and 0 < len(whole) < 18):
        return None
    value = int(whole)
    if not cents:
        return value
    if not (cents.isascii() and cents.isdigit()):
        return None
    # Half to even: above one half rounds up, exactly one half rounds to the even neighbour.
    if cents[0] > "5" or (cents[0] == "5" and (cents.rstrip("0") != "5" or value % 2)):
        value += 1
    return value


class ComtradeFile:
    """One pass over a Comtrade CSV, holding one row at a time.

    Iterating yields the trade figures of the rows without problems (:meth:`figures` yields
    them as plain tuples, which is faster); meanwhile ``rows`` counts the data rows,
    ``skipped`` the rows skipped by reason, and :meth:`all_problems` lists what is wrong.
    ``progress`` is told the bytes and rows read so far, every ``progress_every`` rows.
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
        self._names: list[str] = []
        self._columns: dict[str, int] = {}
        self._delimiter = ","
        # One bit per (reporter, partner, flow) and year seen: duplicates found in ~15 kB a
        # year of data, where a set of ids would grow with the file.
        self._seen: dict[int, bytearray] = {}
        # What the cells of a side (ISO, code, description) and of the year name: a file
        # holds a few hundred different ones, each worked out once.
        self._sides: dict[tuple[str, str, str, str], Side] = {}
        self._years: dict[tuple[str, str], int | tuple[str, str]] = {}
        self._cells: Callable[[list[str]], tuple[str, ...]] = itemgetter(*[-1] * len(CELLS))

    def all_problems(self) -> list[Problem]:
        more = self.problem_count - len(self.problems)
        if not more:
            return list(self.problems)
        return [*self.problems, Problem("", f"… and {more} more problem(s) not listed")]

    def __iter__(self) -> Iterator[TradeRecord]:
        for id_, reporter, partner, year, flow, value, quote in self.figures():
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
        for _ in self.figures():
            pass
        return self.all_problems()

    # --- reading ----------------------------------------------------------------------

    def _problem(self, where: str, message: str) -> None:
        self.problem_count += 1
        if len(self.problems) < self.max_problems:
            self.problems.append(Problem(where, message))

    def _lines(self) -> Iterator[str]:
        """The file's lines as text, each with its ``\\n``, cut from large blocks: the same
        lines as ``readline`` would give, but a line longer than :data:`MAX_LINE_BYTES`
        becomes a problem and an empty line, so that a file without line breaks stays small."""
        tail = b""  # the start of a line whose end is not read yet
        skipping = False  # inside an overlong line, which is dropped up to its end
        while block := self.stream.read(BLOCK_BYTES):
            if skipping:
                end = block.find(b"\n")
                self.bytes_read += len(block) if end < 0 else end + 1
                if end < 0:
                    continue
                block, skipping = block[end + 1 :], False
            lines = (tail + block if tail else block).split(b"\n")
            tail = lines.pop()
            for raw in lines:
                yield self._text(raw, "\n")
            if len(tail) > MAX_LINE_BYTES:
                self.bytes_read += len(tail)  # and the rest as it is skipped
                yield self._text(b"", "", overlong=True)
                tail, skipping = b"", True
        if tail:
            yield self._text(tail, "")

    def _text(self, raw: bytes, end: str, *, overlong: bool = False) -> str:
        self._line += 1
        if overlong or len(raw) > MAX_LINE_BYTES:
            self.bytes_read += len(raw) + len(end)
            where = pointer("line", self._line)
            self._problem(where, f"the line is longer than {MAX_LINE_BYTES} bytes")
            return "\n"
        self.bytes_read += len(raw) + len(end)
        if self._line == 1:
            raw = raw.removeprefix(b"\xef\xbb\xbf")
        try:
            return raw.decode("utf-8") + end
        except UnicodeDecodeError as exc:
            where = pointer("line", self._line)
            self._problem(where, f"not UTF-8 text (byte {exc.start + 1} of the line)")
            return raw.decode("utf-8", "replace") + end

    def _record(self, text: str, lines: Iterator[str], line: int) -> tuple[list[str], str]:
        """The fields of the record that starts with ``text`` (quoted fields may hold line
        breaks, so it takes the lines it needs from ``lines``), and its whole text."""
        parts = [text]

        def source() -> Iterator[str]:
            yield text
            for more in lines:
                parts.append(more)
                yield more

        try:
            row = next(csv.reader(source(), delimiter=self._delimiter), [])
        except csv.Error as exc:
            self._problem(pointer("line", line), f"not a well-formed CSV line: {exc}")
            row = []
        return row, "".join(parts)

    def figures(self) -> Iterator[Figure]:
        """The trade figures of the rows without problems, as tuples."""
        lines = self._lines()
        first = next(lines, None)
        while first is not None and not first.strip():
            first = next(lines, None)
        if first is None:
            self._problem(
                pointer("line", 1),
                f"the file is empty: a Comtrade CSV starts with a header line naming {COLUMNS}",
            )
            return
        self._delimiter = delimiter = "\t" if "\t" in first and "," not in first else ","
        line = self._line
        if not self._header(self._record(first, lines, line)[0], line):
            return
        every, progress = self.progress_every, self.progress
        for text in lines:
            line = self._line
            # Most lines hold no quotes: their fields are the text between delimiters,
            # exactly as the csv module reads them. Others go through the csv module.
            body = text[:-2] if text.endswith("\r\n") else text.rstrip("\n")
            if '"' in body or "\r" in body:
                row, text = self._record(text, lines, line)
            else:
                row = body.split(delimiter) if body else []
            if not row:
                continue
            figure = self._row(line, row, text)
            if figure is not None:
                yield figure
            if progress is not None and self.rows % every == 0:
                progress(self.bytes_read, self.rows)
        if progress is not None:
            progress(self.bytes_read, self.rows)

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
        # The cells a row is read from, in the order of CELLS; -1 (the empty cell _row
        # appends) for a column the file does not have.
        self._cells = itemgetter(*(self._columns.get(key, -1) for key in CELLS))
        return not missing

    # --- one row ----------------------------------------------------------------------

    def _at(self, line: int, key: str) -> str:
        return pointer("line", line, self._names[self._columns[key]].strip())

    def _row(self, line: int, row: list[str], text: str) -> Figure | None:
        self.rows += 1
        if len(row) != len(self._names):
            self._problem(
                pointer("line", line), f"{len(row)} fields, but the header names {len(self._names)}"
            )
            return None
        row.append("")  # the cell of the columns the file does not have
        r_iso, r_code, r_desc, p_iso, p_code, p_desc, flow_code, amount, frequency, *rest = (
            self._cells(row)
        )
        ref_year, period, *totals = rest
        reporter = self._side("reporter", r_iso, r_code, r_desc)
        partner = self._side("partner", p_iso, p_code, p_desc)
        flow_code = flow_code.strip()
        reason = self._skip_reason(reporter, partner, flow_code, totals)
        if reason is not None:
            self.skipped[reason] += 1
            return None
        before = self.problem_count
        quote = text.strip()
        if "\x00" in quote:
            self._problem(pointer("line", line), "the line holds a NUL character")
        elif len(quote) > MAX_QUOTE:
            self._problem(pointer("line", line), f"the line is longer than {MAX_QUOTE} characters")
        if frequency != "A" and (frequency := frequency.strip()) and frequency.upper() != "A":
            self._problem(
                self._at(line, "freqcode"),
                f"freqCode {frequency[:20]!r}: only annual figures (A) can be imported",
            )
        flow = FLOWS.get(flow_code) or FLOWS.get(flow_code.upper())
        if flow is None:
            self._problem(
                self._at(line, "flowcode"),
                f"unknown flowCode {flow_code[:20]!r}: X (export) and M (import) are imported, "
                f"{', '.join(sorted(OTHER_FLOWS))} are skipped",
            )
        year = self._year(line, ref_year, period)
        for side in (reporter, partner):
            if side.kind == "problem":
                self._problem(self._at(line, side.column), side.message)
        value = self._value(line, amount)
        if reporter.kind == partner.kind == "country" and reporter.code == partner.code:
            key = "partneriso" if p_iso.strip() else "partnercode"
            self._problem(self._at(line, key), "the partner is the reporter")
        if self.problem_count > before or flow is None or year is None or value is None:
            return None
        if self._seen_before(reporter, partner, year, flow):
            self._problem(
                pointer("line", line),
                "an earlier row has the same reporter, partner, year and flow",
            )
            return None
        id_ = f"comtrade-{reporter.code}-{partner.code}-{year}-{flow}".lower()
        return id_, reporter.code, partner.code, year, flow, value, quote

    def _side(self, side: str, iso: str, code: str, desc: str) -> Side:
        cells = (side, iso, code, desc)
        found = self._sides.get(cells)
        if found is None:
            if len(self._sides) >= MEMO_SIZE:
                self._sides.clear()
            found = self._sides[cells] = self._side_of(
                side, iso.strip(), code.strip(), desc.strip()
            )
        return found

    def _side_of(self, side: str, iso: str, code: str, desc: str) -> Side:
        if iso.upper() == WORLD_ISO or code == str(WORLD_CODE):
            return Side("world")
        if desc.lower() == WORLD_NAME:
            return Side("world")
        by_alpha3, by_numeric, index = _countries()
        if iso and iso.upper() in by_alpha3:
            alpha2 = by_alpha3[iso.upper()]
            return Side("country", alpha2, place=index[alpha2])
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
            return Side("country", found, place=index[found])
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

    def _skip_reason(
        self, reporter: Side, partner: Side, flow_code: str, totals: list[str]
    ) -> str | None:
        kinds = (reporter.kind, partner.kind)
        if "world" in kinds:
            return "world"
        if "area" in kinds:
            return "area"
        for value, total in zip(totals, TOTALS.values(), strict=True):
            if value and value != total and (value := value.strip()) and value.upper() != total:
                return "breakdown"
        if flow_code.upper() in OTHER_FLOWS:
            return "flow"
        return None

    def _year(self, line: int, ref_year: str, period: str) -> int | None:
        cells = (ref_year, period)
        found = self._years.get(cells)
        if found is None:
            if len(self._years) >= MEMO_SIZE:
                self._years.clear()
            found = self._years[cells] = self._year_of(ref_year.strip(), period.strip())
        if isinstance(found, int):
            return found
        self._problem(self._at(line, found[0]), found[1])
        return None

    def _year_of(self, ref_year: str, period: str) -> int | tuple[str, str]:
        """The year of these cells, or the column and message of its problem."""
        key = "refyear" if ref_year or "period" not in self._columns else "period"
        text = ref_year if key == "refyear" else period
        if not text:
            return key, "no year: refYear and period are empty"
        digits = text[:4] if key == "period" and len(text) == 6 else text
        if not (_DIGITS.fullmatch(text) and len(digits) == 4):
            return key, f"{text[:20]!r} is not a year such as 2021"
        year = int(digits)
        if not MIN_YEAR <= year <= MAX_YEAR:
            return key, f"year {year} is not between {MIN_YEAR} and {MAX_YEAR}"
        return year

    def _value(self, line: int, text: str) -> int | None:
        value = _plain_value(text)
        if value is not None:
            return value
        try:
            return parse_value(text)
        except ValueError as exc:
            self._problem(self._at(line, "primaryvalue"), str(exc))
            return None

    def _seen_before(self, reporter: Side, partner: Side, year: int, flow: Flow) -> bool:
        size = len(_countries()[2])
        bit = (reporter.place * size + partner.place) * 2 + (flow == "import")
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
