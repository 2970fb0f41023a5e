"""Value types with their validation: partial dates, numbers, country and currency codes, slugs."""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import date
from typing import Annotated, Any, Literal

import pycountry
from pydantic import (
    AfterValidator,
    BeforeValidator,
    Field,
    GetCoreSchemaHandler,
    GetJsonSchemaHandler,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import PydanticCustomError, core_schema

Precision = Literal["year", "month", "day"]
# ASCII digits only, and fullmatch: ``$`` alone would let "2022\n" through.
_PARTIAL_DATE = re.compile(r"(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?", re.ASCII)
_SLUG = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
PARTIAL_DATE_PATTERN = r"^\d{4}(-\d{2}(-\d{2})?)?$"


@dataclass(frozen=True, slots=True, order=False)
class PartialDate:
    """An ISO 8601 date of reduced precision (``1992``, ``2022-08``, ``2022-08-24``).

    A partial date stands for the interval of days it covers, so ``start`` and ``end``
    are what SQL sorts and filters on; ``text`` is what the source said, kept as given.
    """

    year: int
    month: int | None = None
    day: int | None = None

    def __post_init__(self) -> None:
        if not 1 <= self.year <= 9999:
            raise ValueError("year must be between 0001 and 9999")
        if self.month is None and self.day is not None:
            raise ValueError("a day needs a month")
        if self.month is not None and not 1 <= self.month <= 12:
            raise ValueError("month must be between 01 and 12")
        if self.day is not None:
            assert self.month is not None
            last = calendar.monthrange(self.year, self.month)[1]
            if not 1 <= self.day <= last:
                raise ValueError(f"day must be between 01 and {last:02d} in that month")

    @classmethod
    def parse(cls, text: str) -> PartialDate:
        """Parse ``YYYY``, ``YYYY-MM`` or ``YYYY-MM-DD``; anything else is a ``ValueError``."""
        match = _PARTIAL_DATE.fullmatch(text)
        if match is None:
            raise ValueError(f"{text!r} is not a date of the form YYYY, YYYY-MM or YYYY-MM-DD")
        year, month, day = match.groups()
        return cls(int(year), int(month) if month else None, int(day) if day else None)

    @property
    def precision(self) -> Precision:
        if self.day is not None:
            return "day"
        return "month" if self.month is not None else "year"

    @property
    def start(self) -> date:
        """The first day the date covers."""
        return date(self.year, self.month or 1, self.day or 1)

    @property
    def end(self) -> date:
        """The last day the date covers."""
        if self.day is not None:
            return self.start
        month = self.month or 12
        return date(self.year, month, calendar.monthrange(self.year, month)[1])

    def __str__(self) -> str:
        text = f"{self.year:04d}"
        if self.month is not None:
            text += f"-{self.month:02d}"
        if self.day is not None:
            text += f"-{self.day:02d}"
        return text

    def sort_key(self) -> tuple[date, int]:
        """Earlier first day first; on the same first day, the coarser date first."""
        return (self.start, -self.end.toordinal())

    @classmethod
    def __get_pydantic_core_schema__(
        cls, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        def validate(value: Any) -> PartialDate:
            if isinstance(value, PartialDate):
                return value
            if isinstance(value, int) and not isinstance(value, bool):
                value = str(value)
            if isinstance(value, date):
                return cls(value.year, value.month, value.day)
            if not isinstance(value, str):
                raise PydanticCustomError("partial_date", "a partial date must be a string")
            try:
                return cls.parse(value)
            except ValueError as exc:
                raise PydanticCustomError("partial_date", str(exc)) from None

        return core_schema.no_info_plain_validator_function(
            validate, serialization=core_schema.to_string_ser_schema()
        )

    @classmethod
    def __get_pydantic_json_schema__(
        cls, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        return {
            "type": "string",
            "pattern": PARTIAL_DATE_PATTERN,
            "description": "ISO 8601 date of the precision the source gives: YYYY, YYYY-MM or "
            "YYYY-MM-DD. It stands for every day it covers.",
            "examples": ["1992", "2022-08", "2022-08-24"],
        }


def _check_slug(value: str) -> str:
    if not _SLUG.fullmatch(value):
        raise ValueError("an id is lowercase letters and digits separated by single hyphens")
    return value


Slug = Annotated[
    str,
    Field(min_length=1, max_length=120, examples=["kz-az-strategic-partnership-2005"]),
    AfterValidator(_check_slug),
]


def _check_currency(value: str) -> str:
    code = value.upper()
    if pycountry.currencies.get(alpha_3=code) is None:
        raise ValueError(f"{value!r} is not an ISO 4217 currency code")
    return code


CurrencyCode = Annotated[
    str,
    Field(min_length=3, max_length=3, examples=["USD"]),
    AfterValidator(_check_currency),
]


def plain_number(value: float | int) -> float | int:
    """Integral numbers as ``int`` so that ``6000000`` never reads back as ``6000000.0``."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return int(value)
    return value


Number = Annotated[float | int, AfterValidator(plain_number)]


def lookup_country(code: str) -> Any | None:
    """The pycountry record for an alpha-2, alpha-3 or numeric code, in any case."""
    code = code.strip()
    if code.isdigit() and len(code) <= 3:
        return pycountry.countries.get(numeric=code.zfill(3))
    if not (code.isascii() and code.isalpha()):
        return None
    if len(code) == 2:
        return pycountry.countries.get(alpha_2=code.upper())
    if len(code) == 3:
        return pycountry.countries.get(alpha_3=code.upper())
    return None


UNKNOWN_COUNTRY = (
    "Unknown country code {code!r}. Use an ISO 3166-1 alpha-2 (KZ), alpha-3 (KAZ) or "
    "numeric (398) code."
)


def _to_iso2(value: Any) -> Any:
    if not isinstance(value, str):
        return value  # left to the string schema, which says what is expected
    found = lookup_country(value)
    if found is None:
        raise ValueError(UNKNOWN_COUNTRY.format(code=value))
    return str(found.alpha_2)


# Resolved before the length constraints, so that "" and "KAZA" get the same helpful
# message as "XX"; the constraints still document the accepted forms in the schema.
CountryCode = Annotated[
    str,
    Field(
        min_length=1,
        max_length=3,
        description="ISO 3166-1 code in any form and case: alpha-2, alpha-3 or numeric.",
        examples=["KZ"],
    ),
    BeforeValidator(_to_iso2),
]
