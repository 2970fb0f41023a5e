"""Value types: partial dates, amounts (of figures and of trade), country codes and slugs."""

from __future__ import annotations

import calendar
import math
import re
from datetime import date, timedelta

import pycountry
import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from pydantic import BaseModel, TypeAdapter, ValidationError

from app.records import FigureRecord, TradeRecord
from app.values import UNKNOWN_COUNTRY, CountryCode, PartialDate, Slug

PARTIAL_DATE = TypeAdapter(PartialDate)
VALID_FORM = re.compile(r"\d{4}(-\d{2}(-\d{2})?)?", re.ASCII)
SURROGATE = re.compile("[\ud800-\udfff]")


@st.composite
def partial_dates(draw: st.DrawFn) -> tuple[str, int, int | None, int | None]:
    """A valid partial date as text, with the parts it was made of."""
    year = draw(st.integers(1, 9999))
    month = draw(st.none() | st.integers(1, 12))
    day = None
    if month is not None:
        day = draw(st.none() | st.integers(1, calendar.monthrange(year, month)[1]))
    text = f"{year:04d}" + (f"-{month:02d}" if month else "") + (f"-{day:02d}" if day else "")
    return text, year, month, day


# --- PartialDate ----------------------------------------------------------------------------


@given(partial_dates())
def test_partial_date_round_trips(parts: tuple[str, int, int | None, int | None]) -> None:
    text, year, month, day = parts
    value = PartialDate.parse(text)
    assert (value.year, value.month, value.day) == (year, month, day)
    assert str(value) == text
    assert value.precision == ("day" if day else "month" if month else "year")
    # The same through pydantic, as records and query parameters use it.
    assert PARTIAL_DATE.validate_python(text) == value
    assert PARTIAL_DATE.dump_python(value, mode="json") == text
    assert PARTIAL_DATE.validate_json(f'"{text}"') == value


@given(partial_dates())
def test_partial_date_interval(parts: tuple[str, int, int | None, int | None]) -> None:
    value = PartialDate.parse(parts[0])
    assert value.start <= value.end
    for edge in (value.start, value.end):
        day = PartialDate.parse(edge.isoformat())
        assert day.precision == "day"
        assert value.start <= day.start == day.end <= value.end
    assert value.start.year == value.end.year == value.year
    if value.day is not None:
        assert value.start == value.end == date(value.year, value.month or 0, value.day)


@given(st.integers(1, 9999))
def test_a_year_covers_january_first_to_december_31st(year: int) -> None:
    value = PartialDate.parse(f"{year:04d}")
    assert value.start == date(year, 1, 1)
    assert value.end == date(year, 12, 31)
    assert (value.end - value.start).days + 1 == (366 if calendar.isleap(year) else 365)


@given(st.integers(1, 9999), st.integers(1, 12))
def test_a_month_covers_its_first_to_last_day(year: int, month: int) -> None:
    value = PartialDate.parse(f"{year:04d}-{month:02d}")
    assert value.start == date(year, month, 1)
    assert value.end.month == month
    # The last day is the one whose next day starts another month.
    assert value.end.day >= 28
    if value.end < date.max:
        assert (value.end + timedelta(days=1)).day == 1


@pytest.mark.parametrize(
    ("text", "last"),
    [("2024-02", 29), ("2023-02", 28), ("2000-02", 29), ("1900-02", 28), ("2022-04", 30)],
)
def test_february_and_short_months(text: str, last: int) -> None:
    assert PartialDate.parse(text).end.day == last


def test_leap_day_exists_only_in_leap_years() -> None:
    assert PartialDate.parse("2024-02-29").end == date(2024, 2, 29)
    with pytest.raises(ValueError, match="between 01 and 28"):
        PartialDate.parse("2023-02-29")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("2022-13", "month must be between 01 and 12"),
        ("2022-00", "month must be between 01 and 12"),
        ("2022-02-30", "day must be between 01 and 28"),
        ("2022-04-31", "day must be between 01 and 30"),
        ("0000", "year must be between 0001 and 9999"),
        ("22", "is not a date of the form YYYY, YYYY-MM or YYYY-MM-DD"),
        ("2022-1-01", "is not a date of the form"),
        ("2022-01-1", "is not a date of the form"),
        ("", "is not a date of the form"),
        ("August 24, 2022", "is not a date of the form"),
        ("2022-08-24T11:00", "is not a date of the form"),
        ("2022/08/24", "is not a date of the form"),
        (" 2022", "is not a date of the form"),
        ("2022\n", "is not a date of the form"),
        ("\u0662\u0660\u0662\u0662", "is not a date of the form"),  # Arabic-Indic digits
    ],
)
def test_invalid_partial_dates_are_rejected(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        PartialDate.parse(text)
    with pytest.raises(ValidationError) as caught:
        PARTIAL_DATE.validate_python(text)
    [error] = caught.value.errors()
    assert message in error["msg"]


@given(st.text())
@example("2022\n")
@example("\uff12\uff10\uff12\uff12")  # fullwidth digits
@example("2022-08-24 ")
def test_arbitrary_text_is_a_partial_date_only_in_the_iso_forms(text: str) -> None:
    if VALID_FORM.fullmatch(text):
        try:
            value = PartialDate.parse(text)
        except ValueError as exc:
            assert "must be between" in str(exc)  # right form, impossible date
        else:
            assert str(value) == text
    else:
        with pytest.raises(ValueError, match="is not a date of the form"):
            PartialDate.parse(text)


def test_partial_date_from_other_python_types() -> None:
    assert PARTIAL_DATE.validate_python(1992) == PartialDate(1992)
    assert PARTIAL_DATE.validate_python(date(2022, 8, 24)) == PartialDate(2022, 8, 24)
    for bad in (True, 22, 19.92, None, ["1992"]):
        with pytest.raises(ValidationError):
            PARTIAL_DATE.validate_python(bad)


def test_partial_date_constructor_checks_its_parts() -> None:
    with pytest.raises(ValueError, match="a day needs a month"):
        PartialDate(2022, None, 1)
    with pytest.raises(ValueError, match="day must be between 01 and 31"):
        PartialDate(2022, 1, 32)


def test_sort_key_puts_coarser_dates_first_on_the_same_first_day() -> None:
    texts = ["2005-03-01", "2005-01-01", "2006", "2005", "2004-12-31", "2005-01"]
    ordered = sorted(texts, key=lambda t: PartialDate.parse(t).sort_key())
    assert ordered == ["2004-12-31", "2005", "2005-01", "2005-01-01", "2005-03-01", "2006"]


@given(partial_dates(), partial_dates())
def test_sort_key_orders_by_first_day_then_by_length(
    a_parts: tuple[str, int, int | None, int | None],
    b_parts: tuple[str, int, int | None, int | None],
) -> None:
    a, b = PartialDate.parse(a_parts[0]), PartialDate.parse(b_parts[0])
    if a.start != b.start:
        assert (a.sort_key() < b.sort_key()) == (a.start < b.start)
    elif a.end != b.end:
        assert (a.sort_key() < b.sort_key()) == (a.end > b.end)
    else:
        assert a == b and a.sort_key() == b.sort_key()


# --- amounts: a figure's value and unit, a trade figure's value and currency -------------------

CITED = [{"source": "azernews", "quote": "The figure as the source gives it."}]


def figure(**fields: object) -> FigureRecord:
    """A figure of the pair AZ/KZ, with ``fields`` changed."""
    base = {"id": "f", "metric": "m", "value": 1, "unit": "t", "countries": ["AZ", "KZ"]}
    return FigureRecord.model_validate({**base, "sources": CITED, **fields})


def trade(**fields: object) -> TradeRecord:
    """An export of KZ to AZ, with ``fields`` changed."""
    base = {"id": "t", "reporter": "KZ", "partner": "AZ", "year": 2021, "flow": "export"}
    return TradeRecord.model_validate(
        {**base, "value": 1, "currency": "USD", "sources": CITED, **fields}
    )


def test_a_figure_keeps_its_value_unit_and_hedge() -> None:
    f = figure(value=6000000, unit="t/year", approximate=True)
    assert (f.value, f.unit, f.approximate) == (6000000, "t/year", True)
    assert figure(value=90, unit="agreements").approximate is False


@given(st.integers(-(2**53) + 1, 2**53 - 1))
def test_integral_floats_come_back_as_int(n: int) -> None:
    f = figure(value=float(n))
    assert type(f.value) is int
    assert f.value == n
    assert f'"value":{n},' in f.model_dump_json()


@given(st.floats(allow_nan=False, allow_infinity=False).filter(lambda x: not x.is_integer()))
def test_fractional_values_stay_floats(x: float) -> None:
    f = figure(value=x)
    assert f.value == x
    assert FigureRecord.model_validate_json(f.model_dump_json()) == f


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_a_figure_rejects_non_finite_numbers(value: float) -> None:
    with pytest.raises(ValidationError, match="finite number"):
        figure(value=value)


@pytest.mark.parametrize(
    ("fields", "where"),
    [
        ({"source": "x"}, "source"),
        ({"unit": ""}, "unit"),
        ({"unit": "   "}, "unit"),
        ({"value": "many"}, "value"),
    ],
)
def test_a_figure_rejects_bad_amounts(fields: dict[str, object], where: str) -> None:
    with pytest.raises(ValidationError) as caught:
        figure(**fields)
    assert {e["loc"][0] for e in caught.value.errors()} == {where}


def test_a_trade_figure_upper_cases_its_currency() -> None:
    assert trade(value=332200000, currency="usd").currency == "USD"


@given(st.sampled_from(sorted(c.alpha_3 for c in pycountry.currencies)), st.booleans())
def test_every_iso_4217_currency_is_accepted_in_any_case(code: str, lower: bool) -> None:
    assert trade(currency=code.lower() if lower else code).currency == code


@pytest.mark.parametrize("code", ["ABC", "QQQ", "US", "DOLLAR", "", "U$D"])
def test_a_trade_figure_rejects_unknown_currencies(code: str) -> None:
    with pytest.raises(ValidationError) as caught:
        trade(currency=code)
    [error] = caught.value.errors()
    assert error["loc"] == ("currency",)
    if len(code) == 3:
        assert error["msg"] == f"Value error, {code!r} is not an ISO 4217 currency code"


@pytest.mark.parametrize("value", [-1, 1.5, 10**19, "lots"])
def test_a_trade_figure_rejects_negative_fractional_or_absurd_amounts(value: object) -> None:
    with pytest.raises(ValidationError) as caught:
        trade(value=value)
    assert caught.value.errors()[0]["loc"] == ("value",)


# --- CountryCode ----------------------------------------------------------------------------


class Place(BaseModel):
    country: CountryCode
    other: CountryCode | None = None


@pytest.mark.parametrize("code", ["kz", "KZ", "Kz", "KAZ", "kaz", "kAz", "398"])
def test_country_code_forms_resolve_to_alpha_2(code: str) -> None:
    assert Place(country=code).country == "KZ"


@pytest.mark.parametrize("code", ["XX", "999", "", "KAZA", "K", "K2", "3980", "ZZZ", "кz"])
def test_unknown_country_codes_are_rejected_naming_the_code(code: str) -> None:
    with pytest.raises(ValidationError) as caught:
        Place(country=code)
    [error] = caught.value.errors()
    assert error["loc"] == ("country",)
    assert error["msg"] == (
        f"Value error, Unknown country code {code!r}. Use an ISO 3166-1 alpha-2 (KZ), "
        "alpha-3 (KAZ) or numeric (398) code."
    )


def test_country_codes_must_be_strings_and_may_be_optional() -> None:
    with pytest.raises(ValidationError, match="valid string"):
        Place.model_validate({"country": 398})
    assert Place(country="az", other=None).other is None
    assert Place(country="az", other="aze").other == "AZ"


def any_case(text: str) -> st.SearchStrategy[str]:
    """``text`` with each letter upper- or lower-cased at random."""

    def spell(lower: list[bool]) -> str:
        return "".join(c.lower() if low else c.upper() for c, low in zip(text, lower, strict=True))

    return st.lists(st.booleans(), min_size=len(text), max_size=len(text)).map(spell)


@given(st.data(), st.sampled_from(list(pycountry.countries)))
def test_every_country_resolves_from_each_form_in_any_case(data: st.DataObject, c: object) -> None:
    alpha_2, alpha_3, numeric = c.alpha_2, c.alpha_3, c.numeric  # type: ignore[attr-defined]
    for form in (alpha_2, alpha_3, numeric):
        assert Place(country=data.draw(any_case(form))).country == alpha_2


def test_the_three_forms_of_every_country_are_unambiguous() -> None:
    forms = [f for c in pycountry.countries for f in (c.alpha_2, c.alpha_3, c.numeric)]
    assert len(forms) == len(set(forms)) == 3 * 249


# --- Slug -----------------------------------------------------------------------------------


class Named(BaseModel):
    id: Slug


@pytest.mark.parametrize(
    "slug", ["un", "titr", "kz-az-strategic-partnership-2005", "a1", "x" * 120]
)
def test_valid_slugs(slug: str) -> None:
    assert Named(id=slug).id == slug


@pytest.mark.parametrize(
    "slug",
    ["", "UN", "a--b", "-a", "a-", "a_b", "a b", "é", "a.b", "titr\n", "x" * 121, "kz/az"],
)
def test_invalid_slugs(slug: str) -> None:
    with pytest.raises(ValidationError) as caught:
        Named(id=slug)
    [error] = caught.value.errors()
    assert error["loc"] == ("id",)


@given(st.from_regex(r"[a-z0-9]{1,10}(-[a-z0-9]{1,10}){0,5}", fullmatch=True))
def test_slug_grammar(slug: str) -> None:
    assert Named(id=slug).id == slug
    for bad in (slug.upper() if slug.upper() != slug else None, f"{slug}-", f"-{slug}"):
        if bad is not None:
            with pytest.raises(ValidationError):
                Named(id=bad)


# --- any input at all: a value or a ValidationError naming the field --------------------------
# (The parsers' contract: whatever comes in, a valid value or a message, never a crash.)

SLUG_FORM = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
CODE_FORMS = sorted(f for c in pycountry.countries for f in (c.alpha_2, c.alpha_3, c.numeric))


@given(
    st.text(max_size=6)
    | st.builds(
        lambda pad, code, upper: f"{pad}{code.upper() if upper else code.lower()}{pad}",
        st.sampled_from(["", " ", "\t", "\n", "\u00a0"]),
        st.sampled_from(CODE_FORMS),
        st.booleans(),
    )
)
@example("")
@example("\uff2b\uff3a")  # fullwidth KZ
@example("\uff13\uff19\uff18")  # fullwidth 398
@example("\u00b2")  # superscript two: a digit to str.isdigit
@example("ka\u0301z")
@example("\u00df")  # ß, whose upper case is SS (South Sudan)
def test_any_text_is_a_country_or_names_itself_unknown(text: str) -> None:
    try:
        code = Place(country=text).country
    except ValidationError as caught:
        [error] = caught.errors()
        assert error["loc"] == ("country",)
        assert error["msg"] == f"Value error, {UNKNOWN_COUNTRY.format(code=text)}"
        if text.strip().isascii():  # ("ß".upper() is "SS", yet "ß" names no country)
            assert text.strip().upper() not in {f.upper() for f in CODE_FORMS} - {""}
    else:
        country = pycountry.countries.get(alpha_2=code)
        form = text.strip().upper()
        assert form in (country.alpha_2, country.alpha_3) or (
            form.isascii() and form.isdigit() and form.zfill(3) == country.numeric
        )


@given(
    st.text(max_size=8)
    | st.text(alphabet=st.sampled_from("az09-_.A \n\u00e9"), max_size=12)
    | st.from_regex(r"[a-z0-9]{1,70}(-[a-z0-9]{1,70}){0,2}", fullmatch=True)
)
@example("x" * 120)
@example("x" * 121)
@example("a\n")
def test_any_text_is_a_slug_exactly_when_it_has_the_form(text: str) -> None:
    valid = SLUG_FORM.fullmatch(text) is not None and len(text) <= 120
    try:
        assert Named(id=text).id == text
    except ValidationError as caught:
        assert not valid, text
        assert {e["loc"] for e in caught.errors()} == {("id",)}
    else:
        assert valid, text


@given(
    st.text(max_size=4)
    | st.builds(
        lambda code, lower: code.lower() if lower else code,
        st.sampled_from(sorted(c.alpha_3 for c in pycountry.currencies)),
        st.booleans(),
    )
)
@example("u\u0073d")
@example("\u00dfsd")  # "ß".upper() is "SS": four letters from three
@example("us\u0131")  # dotless i
def test_any_text_is_a_currency_exactly_when_iso_4217_lists_it(text: str) -> None:
    known = len(text) == 3 and pycountry.currencies.get(alpha_3=text.upper()) is not None
    try:
        record = trade(currency=text)
    except ValidationError as caught:
        assert not known, text
        assert {e["loc"] for e in caught.errors()} == {("currency",)}
    else:
        assert known, text
        assert record.currency == text.upper()
        assert pycountry.currencies.get(alpha_3=record.currency) is not None


@given(
    st.integers()
    | st.floats()
    | st.integers(-2, 2)
    | st.sampled_from([10**18, 10**18 + 1, 1e18, 2.0**63])
)
def test_any_number_is_a_trade_value_exactly_when_whole_and_in_range(value: float) -> None:
    whole = isinstance(value, int) or (math.isfinite(value) and value.is_integer())
    valid = whole and 0 <= int(value) <= 10**18
    try:
        record = trade(value=value)
    except ValidationError as caught:
        assert not valid, value
        assert {e["loc"] for e in caught.errors()} == {("value",)}
    else:
        assert valid, value
        assert record.value == int(value) and type(record.value) is int
        assert TradeRecord.model_validate_json(record.model_dump_json()) == record


# Control characters left out: Python counts \x1c-\x1f as whitespace, pydantic does not strip them.
@given(
    st.integers() | st.floats(), st.text(st.characters(blacklist_categories=["Cc"]), max_size=45)
)
@example(float("nan"), "t")
@example(1.0, "x" * 40)
@example(1.0, "x" * 41)
def test_any_number_and_unit_is_a_figure_exactly_when_finite_and_named(
    value: float, unit: str
) -> None:
    named = 1 <= len(unit.strip()) <= 40 and not SURROGATE.search(unit)  # no UTF-8 for those
    valid = math.isfinite(value) and named
    try:
        record = figure(value=value, unit=unit)
    except ValidationError:
        assert not valid, (value, unit)
    else:
        assert valid, (value, unit)
        assert record.value == value and record.unit == unit.strip()
        assert FigureRecord.model_validate_json(record.model_dump_json()) == record


@given(st.integers())
@example(999)
@example(1000)
@example(9999)
@example(10_000)
def test_a_whole_number_is_a_partial_date_when_it_is_four_digits(year: int) -> None:
    try:
        value = PARTIAL_DATE.validate_python(year)
    except ValidationError:
        assert not 1000 <= year <= 9999
    else:
        assert 1000 <= year <= 9999
        assert value == PartialDate(year) and value.precision == "year"


@given(st.dates())
def test_any_date_is_a_partial_date_of_that_day(day: date) -> None:
    value = PARTIAL_DATE.validate_python(day)
    assert value.precision == "day"
    assert value.start == value.end == day
    assert PartialDate.parse(str(value)) == value
