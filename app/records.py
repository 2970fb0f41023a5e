"""The dataset format of ``data/seed.json`` and ``GET /v1/export``: one record per entity.

Records mirror the public shape of each resource: countries as ISO codes (any form in,
alpha-2 out), related entities by id, and every fact's citations as ``{source, quote}``.
"""

from __future__ import annotations

import json
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints, model_validator
from sqlalchemy import Table

from app import models as m
from app.models import table
from app.values import CountryCode, CurrencyCode, Number, PartialDate, Slug

FORMAT: Literal["dyad-dataset/1"] = "dyad-dataset/1"

# Lengths are those of the columns: PostgreSQL enforces them, SQLite would not.
Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=10_000)]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=300)]
ShortName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Label = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=40)]


class Record(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Cite(Record):
    """A fact's support: the source and the sentence of it that says the fact."""

    source: Slug
    quote: Text = Field(examples=["The trade turnover between Azerbaijan and Kazakhstan …"])


Sources = Annotated[list[Cite], Field(min_length=1, description="At least one citation.")]


class SourceRecord(Record):
    id: Slug
    title: Name
    publisher: ShortName | None = None
    author: ShortName | None = None
    published_at: AwareDatetime | None = Field(
        default=None, description="Date and time with the UTC offset the source printed."
    )
    url: Annotated[str, StringConstraints(pattern=r"^https?://\S+$", max_length=2000)] | None = None
    language: (
        Annotated[str, StringConstraints(pattern=r"^[a-z]{2,3}(-[A-Za-z0-9]+)*$", max_length=20)]
        | None
    ) = None
    notes: Text | None = None


class OrganizationRecord(Record):
    id: Slug
    name: Name
    acronym: Label | None = None
    kind: Label | None = None


class RoleRecord(Record):
    id: Slug
    title: Name
    country: CountryCode | None = None
    organization: Slug | None = None
    start: PartialDate | None = None
    end: PartialDate | None = None
    as_of: PartialDate | None = Field(default=None, description="When the source gives the title.")
    sources: Sources


class PersonRecord(Record):
    id: Slug
    name: ShortName
    roles: list[RoleRecord] = []


class NoteRecord(Record):
    id: Slug
    text: Text
    sources: Sources


class RelationRecord(Record):
    id: Slug
    countries: tuple[CountryCode, CountryCode]
    established: PartialDate | None = None
    notes: list[NoteRecord] = []
    sources: Sources

    @model_validator(mode="after")
    def _pair(self) -> RelationRecord:
        if self.countries[0] == self.countries[1]:
            raise ValueError("a relation needs two different countries")
        return self


class TreatyRecord(Record):
    id: Slug
    title: Name
    kind: Label | None = None
    signed: PartialDate | None = None
    signed_place: ShortName | None = None
    parties: Annotated[list[CountryCode], Field(min_length=1)]
    description: Text | None = None
    sources: Sources


class ParticipantRecord(Record):
    person: Slug
    role: Annotated[str, StringConstraints(pattern=r"^[a-z][a-z_]*$", max_length=60)] = Field(
        examples=["guest_leader", "welcomed_by"]
    )


class VisitRecord(Record):
    id: Slug
    date: PartialDate
    kind: Label | None = None
    guest: CountryCode
    host: CountryCode
    place: ShortName | None = None
    description: Text | None = None
    participants: list[ParticipantRecord] = []
    sources: Sources

    @model_validator(mode="after")
    def _distinct(self) -> VisitRecord:
        if self.guest == self.host:
            raise ValueError("guest and host must be different countries")
        return self


class TradeRecord(Record):
    id: Slug
    reporter: CountryCode
    partner: CountryCode
    year: int = Field(ge=1800, le=2200)
    flow: Literal["turnover", "export", "import"]
    value: int = Field(ge=0, le=10**18, description="Whole currency units.")
    currency: CurrencyCode
    approximate: bool = False
    sources: Sources

    @model_validator(mode="after")
    def _distinct(self) -> TradeRecord:
        if self.reporter == self.partner:
            raise ValueError("reporter and partner must be different countries")
        return self


class RouteRecord(Record):
    id: Slug
    name: Name
    acronym: Label | None = None
    description: Text | None = None
    countries: list[CountryCode] = Field(description="In the order the route runs.")
    sources: Sources


class MembershipRecord(Record):
    id: Slug
    organization: Slug
    country: CountryCode
    since: PartialDate | None = None
    sources: Sources


class FigureRecord(Record):
    id: Slug
    metric: Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]*$", max_length=80)]
    value: Number = Field(allow_inf_nan=False)
    unit: Label
    approximate: bool = False
    as_of: PartialDate | None = None
    countries: tuple[CountryCode, CountryCode] | None = None
    route: Slug | None = None
    description: Text | None = None
    sources: Sources

    @model_validator(mode="after")
    def _one_subject(self) -> FigureRecord:
        if (self.countries is None) == (self.route is None):
            raise ValueError("a figure is about either a pair of `countries` or a `route`")
        if self.countries is not None and self.countries[0] == self.countries[1]:
            raise ValueError("a pair needs two different countries")
        return self


class Dataset(Record):
    """Everything Dyad knows, in the format of ``data/seed.json`` and ``GET /v1/export``."""

    model_config = ConfigDict(extra="forbid", frozen=True, title="Dyad dataset")

    format: Literal["dyad-dataset/1"] = FORMAT
    sources: list[SourceRecord] = []
    organizations: list[OrganizationRecord] = []
    people: list[PersonRecord] = []
    relations: list[RelationRecord] = []
    treaties: list[TreatyRecord] = []
    visits: list[VisitRecord] = []
    trade: list[TradeRecord] = []
    routes: list[RouteRecord] = []
    memberships: list[MembershipRecord] = []
    figures: list[FigureRecord] = []


# Loading order: everything a record refers to comes before it.
COLLECTIONS = (
    "sources",
    "organizations",
    "people",
    "relations",
    "treaties",
    "visits",
    "trade",
    "routes",
    "memberships",
    "figures",
)
ENTITY_TYPE = {
    "sources": "source",
    "organizations": "organization",
    "people": "person",
    "relations": "relation",
    "treaties": "treaty",
    "visits": "visit",
    "trade": "trade",
    "routes": "route",
    "memberships": "membership",
    "figures": "figure",
}
MAIN_TABLE: dict[str, Table] = {
    "sources": table(m.Source),
    "organizations": table(m.Organization),
    "people": table(m.Person),
    "relations": table(m.DiplomaticRelation),
    "treaties": table(m.Treaty),
    "visits": table(m.Visit),
    "trade": table(m.TradeFigure),
    "routes": table(m.TransportRoute),
    "memberships": table(m.Membership),
    "figures": table(m.Figure),
}


def json_schema() -> str:
    return json.dumps(Dataset.model_json_schema(), indent=2, ensure_ascii=False) + "\n"
