"""Every table of the dataset, with the constraint naming convention they share.

Facts that both countries of a pair share (relations, pair figures) store the pair once,
in canonical order (``country_a < country_b``), so that ``A/B`` and ``B/A`` cannot
disagree. Partial dates are stored three times: the text the source gave, and the first
and last day it covers, so that SQL can sort and filter by interval on every engine.
Citations are one table for every kind of fact: ``(fact_type, fact_id)`` names the fact.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    Float,
    ForeignKey,
    Index,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlmodel import Field, SQLModel

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
SQLModel.metadata = MetaData(naming_convention=NAMING_CONVENTION)
metadata = SQLModel.metadata

FACT_TYPES = (
    "relation",
    "relation_note",
    "treaty",
    "visit",
    "trade",
    "route",
    "figure",
    "membership",
    "role",
)


def _country(*, nullable: bool = False, index: bool = False) -> Column[str]:
    return Column(
        String(2), ForeignKey("country.iso2", ondelete="RESTRICT"), nullable=nullable, index=index
    )


def _parent(table: str) -> Column[str]:
    return Column(String(120), ForeignKey(f"{table}.id", ondelete="CASCADE"), nullable=False)


class Country(SQLModel, table=True):
    """An ISO 3166-1 country: reference data loaded from pycountry by the first migration."""

    __tablename__ = "country"

    iso2: str = Field(primary_key=True, max_length=2)
    iso3: str = Field(max_length=3, unique=True)
    numeric: str = Field(max_length=3, unique=True)
    name: str = Field(max_length=200, index=True)
    official_name: str | None = Field(default=None, max_length=300)


class Source(SQLModel, table=True):
    """A document that facts are taken from."""

    __tablename__ = "source"

    id: str = Field(primary_key=True, max_length=120)
    title: str = Field(max_length=500)
    publisher: str | None = Field(default=None, max_length=200)
    author: str | None = Field(default=None, max_length=200)
    # ISO 8601 text with the UTC offset the source printed: engines disagree on keeping it.
    published_at: str | None = Field(default=None, max_length=40)
    published_utc: dt.datetime | None = Field(default=None, index=True)
    url: str | None = Field(default=None, max_length=2000)
    language: str | None = Field(default=None, max_length=20)
    notes: str | None = Field(default=None, sa_type=Text)


class Citation(SQLModel, table=True):
    """One fact supported by one source, with the sentence of the source that says it."""

    __tablename__ = "citation"
    __table_args__ = (
        UniqueConstraint("fact_type", "fact_id", "position"),  # also finds a fact's citations
        # A source's facts, a page at a time and in their order (also what a source's
        # foreign key needs to find them).
        Index("ix_citation_source_fact", "source_id", "fact_type", "fact_id", "position"),
        CheckConstraint(
            "fact_type IN (" + ", ".join(f"'{t}'" for t in FACT_TYPES) + ")", name="fact_type"
        ),
        CheckConstraint("length(quote) > 0", name="quote_not_empty"),
    )

    id: int | None = Field(default=None, primary_key=True)
    fact_type: str = Field(max_length=20)
    fact_id: str = Field(max_length=120)
    position: int = 0
    source_id: str = Field(
        sa_column=Column(String(120), ForeignKey("source.id", ondelete="RESTRICT"), nullable=False)
    )
    quote: str = Field(sa_type=Text)


class Organization(SQLModel, table=True):
    """An international or national body that countries belong to or people work for."""

    __tablename__ = "organization"

    id: str = Field(primary_key=True, max_length=120)
    name: str = Field(max_length=300)
    acronym: str | None = Field(default=None, max_length=40)
    kind: str | None = Field(default=None, max_length=40)


class Membership(SQLModel, table=True):
    """A country's membership of an organization."""

    __tablename__ = "membership"
    __table_args__ = (UniqueConstraint("organization_id", "country"),)

    id: str = Field(primary_key=True, max_length=120)
    organization_id: str = Field(sa_column=_parent("organization"))
    country: str = Field(sa_column=_country(index=True))
    since: str | None = Field(default=None, max_length=10)
    since_start: dt.date | None = None
    since_end: dt.date | None = None


class Person(SQLModel, table=True):
    """A person that facts name."""

    __tablename__ = "person"

    id: str = Field(primary_key=True, max_length=120)
    name: str = Field(max_length=200, index=True)


class Role(SQLModel, table=True):
    """A title a source gives a person, in a country and/or an organization."""

    __tablename__ = "role"
    # A person's roles are read with the person, an organization's with it: by these keys.
    __table_args__ = (
        Index("ix_role_person_id", "person_id"),
        Index("ix_role_organization_id", "organization_id"),
    )

    id: str = Field(primary_key=True, max_length=120)
    person_id: str = Field(sa_column=_parent("person"))
    title: str = Field(max_length=300)
    country: str | None = Field(default=None, sa_column=_country(nullable=True, index=True))
    organization_id: str | None = Field(
        default=None,
        sa_column=Column(
            String(120), ForeignKey("organization.id", ondelete="RESTRICT"), nullable=True
        ),
    )
    start: str | None = Field(default=None, max_length=10)
    start_start: dt.date | None = None
    start_end: dt.date | None = None
    end: str | None = Field(default=None, max_length=10)
    end_start: dt.date | None = None
    end_end: dt.date | None = None
    as_of: str | None = Field(default=None, max_length=10)
    as_of_start: dt.date | None = None
    as_of_end: dt.date | None = None


class DiplomaticRelation(SQLModel, table=True):
    """Diplomatic relations of a pair, stored once in canonical order."""

    __tablename__ = "diplomatic_relation"
    __table_args__ = (
        UniqueConstraint("country_a", "country_b"),
        CheckConstraint("country_a < country_b", name="canonical_pair"),
        Index("ix_diplomatic_relation_country_b", "country_b"),
    )

    id: str = Field(primary_key=True, max_length=120)
    country_a: str = Field(sa_column=_country())
    country_b: str = Field(sa_column=_country())
    established: str | None = Field(default=None, max_length=10)
    established_start: dt.date | None = None
    established_end: dt.date | None = None


class RelationNote(SQLModel, table=True):
    """A qualitative statement a source makes about a pair's relations."""

    __tablename__ = "relation_note"
    # Notes are read by their relation, in order (the dossier scanned them all without it).
    __table_args__ = (Index("ix_relation_note_relation_id", "relation_id", "position"),)

    id: str = Field(primary_key=True, max_length=120)
    relation_id: str = Field(sa_column=_parent("diplomatic_relation"))
    text: str = Field(sa_type=Text)
    position: int = 0


class Treaty(SQLModel, table=True):
    """A treaty or agreement between countries."""

    __tablename__ = "treaty"

    id: str = Field(primary_key=True, max_length=120)
    title: str = Field(max_length=500)
    kind: str | None = Field(default=None, max_length=40)
    signed: str | None = Field(default=None, max_length=10)
    signed_start: dt.date | None = Field(default=None, index=True)
    signed_end: dt.date | None = None
    signed_place: str | None = Field(default=None, max_length=200)
    description: str | None = Field(default=None, sa_type=Text)


class TreatyParty(SQLModel, table=True):
    """A country that is party to a treaty."""

    __tablename__ = "treaty_party"
    __table_args__ = (Index("ix_treaty_party_country", "country", "treaty_id"),)

    treaty_id: str = Field(
        sa_column=Column(String(120), ForeignKey("treaty.id", ondelete="CASCADE"), primary_key=True)
    )
    country: str = Field(
        sa_column=Column(
            String(2), ForeignKey("country.iso2", ondelete="RESTRICT"), primary_key=True
        )
    )
    position: int = 0


class Visit(SQLModel, table=True):
    """A visit of a guest country's delegation to a host country."""

    __tablename__ = "visit"
    __table_args__ = (
        Index("ix_visit_guest_host", "guest", "host"),
        Index("ix_visit_host_guest", "host", "guest"),
        CheckConstraint("guest <> host", name="distinct_countries"),
    )

    id: str = Field(primary_key=True, max_length=120)
    date: str = Field(max_length=10)
    date_start: dt.date = Field(index=True)
    date_end: dt.date
    kind: str | None = Field(default=None, max_length=40)
    guest: str = Field(sa_column=_country())
    host: str = Field(sa_column=_country())
    place: str | None = Field(default=None, max_length=200)
    description: str | None = Field(default=None, sa_type=Text)


class VisitParticipant(SQLModel, table=True):
    """A person taking part in a visit, and in what role (guest leader, welcomed by, ...)."""

    __tablename__ = "visit_participant"
    __table_args__ = (Index("ix_visit_participant_person_id", "person_id"),)

    visit_id: str = Field(
        sa_column=Column(String(120), ForeignKey("visit.id", ondelete="CASCADE"), primary_key=True)
    )
    person_id: str = Field(
        sa_column=Column(
            String(120), ForeignKey("person.id", ondelete="RESTRICT"), primary_key=True
        )
    )
    role: str = Field(max_length=60)
    position: int = 0


class TradeFigure(SQLModel, table=True):
    """A yearly trade flow. ``turnover`` is the pair's total, stored in canonical order;
    ``export``/``import`` are as reported by ``reporter``. Two sources that disagree are
    two rows."""

    __tablename__ = "trade_figure"
    __table_args__ = (
        Index("ix_trade_figure_pair", "reporter", "partner", "year"),
        Index("ix_trade_figure_partner", "partner", "reporter", "year"),
        CheckConstraint("flow IN ('turnover', 'export', 'import')", name="flow"),
        CheckConstraint("reporter <> partner", name="distinct_countries"),
        CheckConstraint("value >= 0", name="value_not_negative"),
    )

    id: str = Field(primary_key=True, max_length=120)
    reporter: str = Field(sa_column=_country())
    partner: str = Field(sa_column=_country())
    year: int
    flow: str = Field(max_length=10)
    value: int = Field(sa_type=BigInteger)
    currency: str = Field(max_length=3)
    approximate: bool = False


# The default order of /v1/trade (newest year first, then id) read off an index: a page
# needs no sort, and a deep page skips entries of this index only.
_TRADE = TradeFigure.__table__  # type: ignore[attr-defined]
Index("ix_trade_figure_year_id", _TRADE.c.year.desc(), _TRADE.c.id)


class TransportRoute(SQLModel, table=True):
    """A transport corridor and the countries on it."""

    __tablename__ = "transport_route"

    id: str = Field(primary_key=True, max_length=120)
    name: str = Field(max_length=300)
    acronym: str | None = Field(default=None, max_length=40)
    description: str | None = Field(default=None, sa_type=Text)


class RouteCountry(SQLModel, table=True):
    """A country on a route, in the order the route runs."""

    __tablename__ = "route_country"
    __table_args__ = (Index("ix_route_country_country", "country", "route_id"),)

    route_id: str = Field(
        sa_column=Column(
            String(120), ForeignKey("transport_route.id", ondelete="CASCADE"), primary_key=True
        )
    )
    country: str = Field(
        sa_column=Column(
            String(2), ForeignKey("country.iso2", ondelete="RESTRICT"), primary_key=True
        )
    )
    position: int = 0


class Figure(SQLModel, table=True):
    """A quantity about a pair (e.g. the number of bilateral agreements) or a route."""

    __tablename__ = "figure"
    __table_args__ = (
        Index("ix_figure_pair", "country_a", "country_b"),
        Index("ix_figure_country_b", "country_b"),  # a country's figures, either side
        CheckConstraint(
            "(route_id IS NULL AND country_a IS NOT NULL AND country_b IS NOT NULL"
            " AND country_a < country_b)"
            " OR (route_id IS NOT NULL AND country_a IS NULL AND country_b IS NULL)",
            name="one_subject",
        ),
    )

    id: str = Field(primary_key=True, max_length=120)
    metric: str = Field(max_length=80)
    value: float = Field(sa_type=Float)
    unit: str = Field(max_length=40)
    approximate: bool = False
    as_of: str | None = Field(default=None, max_length=10)
    as_of_start: dt.date | None = None
    as_of_end: dt.date | None = None
    country_a: str | None = Field(default=None, sa_column=_country(nullable=True))
    country_b: str | None = Field(default=None, sa_column=_country(nullable=True))
    route_id: str | None = Field(
        default=None,
        sa_column=Column(
            String(120),
            ForeignKey("transport_route.id", ondelete="CASCADE"),
            nullable=True,
            index=True,
        ),
    )
    description: str | None = Field(default=None, sa_type=Text)


class DatasetState(SQLModel, table=True):
    """The single row that holds the dataset revision, bumped by every write."""

    __tablename__ = "dataset_state"
    __table_args__ = (CheckConstraint("id = 1", name="single_row"),)

    id: int = Field(default=1, primary_key=True)
    revision: int = 0
    seed_digest: str | None = Field(default=None, max_length=64)
    updated_at: dt.datetime | None = None


class DatasetChange(SQLModel, table=True):
    """The change feed: one row per entity a write touched, under the revision it made."""

    __tablename__ = "dataset_change"

    seq: int | None = Field(default=None, primary_key=True)
    revision: int = Field(index=True)
    at: dt.datetime
    action: str = Field(max_length=10)
    entity_type: str = Field(max_length=20)
    entity_id: str = Field(max_length=120)


class ApiKey(SQLModel, table=True):
    """A key for writes: only the SHA-256 of the secret is stored, never the secret."""

    __tablename__ = "api_key"
    __table_args__ = (CheckConstraint("scope IN ('write', 'import')", name="scope"),)

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=100)
    scope: str = Field(max_length=10)
    digest: str = Field(max_length=64, unique=True)
    prefix: str = Field(max_length=16, description="The first characters, to tell keys apart.")
    created_at: dt.datetime
    expires_at: dt.datetime | None = None
    revoked_at: dt.datetime | None = None


class IdempotentResponse(SQLModel, table=True):
    """The first answer to a POST sent with an ``Idempotency-Key``, replayed on retries."""

    __tablename__ = "idempotent_response"

    api_key_id: int = Field(
        sa_column=Column(ForeignKey("api_key.id", ondelete="CASCADE"), primary_key=True)
    )
    key: str = Field(sa_column=Column(String(200), primary_key=True))
    fingerprint: str = Field(max_length=64, description="SHA-256 of method, path and body.")
    status: int
    headers: str = Field(sa_type=Text, description="JSON object of the answer's headers.")
    body: bytes = Field(sa_type=LargeBinary)
    created_at: dt.datetime


def table(model: type[SQLModel]) -> Table:
    """The Core table of a model: read paths use Core SQL, never ORM objects."""
    return model.__table__  # type: ignore[attr-defined,no-any-return]
