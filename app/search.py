"""Full-text search over every kind of fact: the index, kept in step by writes, and /v1/search.

Every entity is one document: a ``title`` (its name, or one made from the names of its
countries, organization or route) and a ``body`` holding every other text it carries, the
quote of each of its citations included. :func:`reindex` rewrites the documents of the
entities a write touched, inside that write's transaction.

SQLite indexes the documents with FTS5 (``unicode61 remove_diacritics 2``), PostgreSQL with
a ``simple`` tsvector under GIN (see the ``search_index`` migration). The contract is the
same on both: ``q`` is read as plain words (letters and digits; everything else separates
words and no query syntax is ever interpreted); a document matches when it holds every word,
the last one as a prefix; title matches weigh ten times body matches.
"""

from __future__ import annotations

import html
import re
import unicodedata
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Annotated, Any, Literal

import sqlalchemy as sa
from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field
from sqlalchemy import ColumnElement, Connection, Select, delete, select
from starlette.responses import Response

from app import models as m
from app.countries import EngineDep
from app.db import any_of, bulk_insert, fetch, fetch_all, read_connection
from app.models import table
from app.pagination import CSV_RESPONSE, Page, PageParams, order_by, page_response, sorted_page
from app.problems import InvalidInput, problem_responses
from app.readers import read_collection
from app.records import COLLECTIONS, ENTITY_TYPE, MAIN_TABLE

EntityType = Literal[
    "source",
    "organization",
    "person",
    "relation",
    "treaty",
    "visit",
    "trade",
    "route",
    "membership",
    "figure",
]
COLLECTION = {entity_type: collection for collection, entity_type in ENTITY_TYPE.items()}
MAX_QUERY = 500
MAX_TERMS = 16
MAX_TERM = 64
WORD = re.compile(r"[^\W_]+")  # letters and digits: what both engines' tokenizers keep
TITLE_WEIGHT, BODY_WEIGHT = 10.0, 1.0
MARK, UNMARK = "\x02", "\x03"  # highlight delimiters no stored text contains (see _clean)
SEPARATOR = " · "
DASH = "\u2013"  # en dash, between the names of a pair of countries
CHUNK = 500
HIT_COLUMNS = ("type", "id", "title", "snippet", "score")
DOCUMENT_COLUMNS = ("type", "id", "title", "body")

# What the documents are stored in: the FTS5 content table on SQLite, the indexed table on
# PostgreSQL; queries read ``search_document`` on both.
ENTRY = sa.table(
    "search_entry",
    sa.column("doc"),
    sa.column("type"),
    sa.column("id"),
    sa.column("title"),
    sa.column("body"),
)
DOCUMENT = sa.table(
    "search_document",
    sa.column("rowid"),
    sa.column("type", sa.String),
    sa.column("id", sa.String),
    sa.column("title"),
    sa.column("body"),
    sa.column("tsv"),
)
# FTS5 names the table itself as a hidden column: ``search_document MATCH ...``, ``bm25(...)``.
FTS: sa.ColumnClause[Any] = sa.literal_column("search_document")
SIMPLE: sa.ColumnClause[Any] = sa.literal_column("'simple'::regconfig")
RANK_WEIGHTS: sa.ColumnClause[Any] = sa.literal_column(
    f"'{{0, 0, {BODY_WEIGHT / 10}, {TITLE_WEIGHT / 10}}}'::float4[]"
)
SNIPPET_WORDS = 16
HEADLINE = f"StartSel={MARK}, StopSel={UNMARK}, MaxWords={SNIPPET_WORDS}, MinWords=10"
WHOLE = f"StartSel={MARK}, StopSel={UNMARK}, HighlightAll=true"

Record = dict[str, Any]


# --- documents ---------------------------------------------------------------------------


@dataclass
class Names:
    """Names of what documents mention by code or id, looked up in one query per kind."""

    country: dict[str, str] = field(default_factory=dict)
    organization: dict[str, tuple[str, str | None]] = field(default_factory=dict)
    person: dict[str, str] = field(default_factory=dict)
    route: dict[str, tuple[str, str | None]] = field(default_factory=dict)

    def countries(self, *codes: str | None) -> list[str]:
        return [self.country.get(c, c) for c in codes if c]

    def pair(self, a: str, b: str) -> str:
        return f" {DASH} ".join(self.countries(a, b))


def _references(collection: str, r: Record) -> Iterator[tuple[str, str | None]]:
    if collection == "people":
        for role in r["roles"]:
            yield "country", role["country"]
            yield "organization", role["organization"]
    elif collection in ("relations", "routes"):
        yield from (("country", c) for c in r["countries"])
    elif collection == "treaties":
        yield from (("country", c) for c in r["parties"])
    elif collection == "visits":
        yield from (("country", r["guest"]), ("country", r["host"]))
        yield from (("person", p["person"]) for p in r["participants"])
    elif collection == "trade":
        yield from (("country", r["reporter"]), ("country", r["partner"]))
    elif collection == "memberships":
        yield from (("country", r["country"]), ("organization", r["organization"]))
    elif collection == "figures":
        yield from (("country", c) for c in r["countries"] or ())
        yield "route", r["route"]


def _names(connection: Connection, records: Mapping[str, list[Record]]) -> Names:
    wanted: dict[str, set[str]] = defaultdict(set)
    for collection, items in records.items():
        for r in items:
            for kind, key in _references(collection, r):
                if key:
                    wanted[kind].add(key)
    country, org, person, route = (
        table(m.Country),
        table(m.Organization),
        table(m.Person),
        table(m.TransportRoute),
    )

    def rows(kind: str, *columns: Any) -> Iterator[Any]:
        ids = sorted(wanted[kind])
        for start in range(0, len(ids), CHUNK):
            chunk = ids[start : start + CHUNK]
            yield from connection.execute(select(*columns).where(columns[0].in_(chunk)))

    return Names(
        country={c: n for c, n in rows("country", country.c.iso2, country.c.name)},
        organization={
            i: (n, a) for i, n, a in rows("organization", org.c.id, org.c.name, org.c.acronym)
        },
        person={i: n for i, n in rows("person", person.c.id, person.c.name)},
        route={i: (n, a) for i, n, a in rows("route", route.c.id, route.c.name, route.c.acronym)},
    )


def _quotes(r: Record) -> list[str]:
    return [cite["quote"] for cite in r["sources"]]


def _words(identifier: str) -> str:
    """``bilateral_agreements`` -> ``Bilateral agreements``; ``guest_leader`` likewise."""
    text = identifier.replace("_", " ").strip()
    return text[:1].upper() + text[1:]


def document(collection: str, r: Record, names: Names) -> tuple[str, list[str | None]]:
    """The title and the body texts of one entity's document."""
    if collection == "sources":
        return r["title"], [r["publisher"], r["author"], r["notes"]]
    if collection == "organizations":
        return r["name"], [r["acronym"], r["kind"]]
    if collection == "people":
        body: list[str | None] = []
        for role in r["roles"]:
            org = names.organization.get(role["organization"] or "")
            where = [*names.countries(role["country"]), *(org or ())]
            body.append(", ".join([role["title"], *(w for w in where if w)]))
            body += _quotes(role)
        return r["name"], body
    if collection == "relations":
        a, b = r["countries"]
        body = [f"Established {r['established']}" if r["established"] else None]
        for note in r["notes"]:
            body += [note["text"], *_quotes(note)]
        return f"{names.pair(a, b)} diplomatic relations", [*body, *_quotes(r)]
    if collection == "treaties":
        facts = [r["kind"], r["signed"], r["signed_place"], *names.countries(*r["parties"])]
        return r["title"], [*facts, r["description"], *_quotes(r)]
    if collection == "visits":
        guest, host = names.countries(r["guest"], r["host"])
        kind = _words(r["kind"] or "visit")
        kind += "" if kind.lower().endswith("visit") else " visit"
        people = [names.person.get(p["person"]) for p in r["participants"]]
        title = f"{kind} of {guest} to {host}, {r['date']}"
        return title, [r["place"], r["description"], *people, *_quotes(r)]
    if collection == "trade":
        title = trade_title(names, r["reporter"], r["partner"], r["flow"], r["year"])
        return title, [f"{r['value']} {r['currency']}", *_quotes(r)]
    if collection == "routes":
        countries = names.countries(*r["countries"])
        return r["name"], [r["acronym"], r["description"], *countries, *_quotes(r)]
    if collection == "memberships":
        name, acronym = names.organization.get(r["organization"], (r["organization"], None))
        body = [acronym, f"Since {r['since']}" if r["since"] else None, *_quotes(r)]
        return f"{names.countries(r['country'])[0]} in {name}", body
    if collection == "figures":
        if r["route"]:
            subject, acronym = names.route.get(r["route"], (r["route"], None))
        else:
            subject, acronym = names.pair(*r["countries"]), None
        amount = f"{'About ' if r['approximate'] else ''}{r['value']} {r['unit']}"
        body = [acronym, amount, r["as_of"], r["description"], *_quotes(r)]
        return f"{_words(r['metric'])}: {subject}", body
    raise KeyError(collection)


def trade_title(names: Names, reporter: str, partner: str, flow: str, year: int) -> str:
    """A trade figure's title; bulk imports call it once per row, hence no record dict."""
    a, b = names.country.get(reporter, reporter), names.country.get(partner, partner)
    if flow == "export":
        return f"{a} exports to {b} {year}"
    if flow == "import":
        return f"{a} imports from {b} {year}"
    if flow == "turnover":
        return f"{a} {DASH} {b} trade turnover {year}"
    raise KeyError(flow)


def _clean(text: str) -> str:
    # NUL cannot be stored in PostgreSQL text; the marks would forge highlights; the index
    # folds precomposed letters, so decomposed ones are composed first.
    text = text.replace("\x00", " ").replace(MARK, " ").replace(UNMARK, " ")
    return unicodedata.normalize("NFC", text)


def _documents(connection: Connection, ids: Mapping[str, set[str]]) -> Iterator[list[Record]]:
    """The documents of these entities, a batch (a few queries, whatever its size) at a time."""
    for entity_type, wanted in ids.items():
        collection, batch = COLLECTION[entity_type], sorted(wanted)
        for start in range(0, len(batch), CHUNK):
            records = read_collection(connection, collection, batch[start : start + CHUNK])
            names = _names(connection, {collection: records})
            yield [document_row(collection, r, names) for r in records]


def document_row(collection: str, r: Record, names: Names) -> Record:
    """The stored form of a record's document (its texts cleaned, each once); imports use it
    for the rows whose text needs cleaning."""
    title, body = document(collection, r, names)
    texts = dict.fromkeys(t.strip() for t in body if t and t.strip())  # each text once
    return {
        "type": ENTITY_TYPE[collection],
        "id": r["id"],
        "title": _clean(title),
        "body": _clean(SEPARATOR.join(texts)),
    }


# --- keeping the index in step ------------------------------------------------------------


def _store(connection: Connection) -> sa.TableClause:
    return ENTRY if connection.dialect.name == "sqlite" else DOCUMENT


def _dependents(connection: Connection, changed: Mapping[str, set[str]]) -> dict[str, set[str]]:
    """Entities whose documents show the names of changed ones (a visit its participants')."""
    links = [
        ("person", "visit", table(m.VisitParticipant).c.person_id, "visit_id"),
        ("organization", "membership", table(m.Membership).c.organization_id, "id"),
        ("organization", "person", table(m.Role).c.organization_id, "person_id"),
        ("route", "figure", table(m.Figure).c.route_id, "id"),
    ]
    found: dict[str, set[str]] = defaultdict(set)
    for changed_type, dependent_type, key, dependent in links:
        ids = sorted(changed.get(changed_type, ()))
        for start in range(0, len(ids), CHUNK):
            query = select(key.table.c[dependent]).where(key.in_(ids[start : start + CHUNK]))
            found[dependent_type].update(connection.execute(query).scalars())
    return found


# Deleting one of these deletes these documented entities too (ON DELETE CASCADE).
CASCADES = {"organization": ("membership",), "route": ("figure",)}


def reindex(connection: Connection, changes: Iterable[tuple[str, str, str]]) -> None:
    """Bring the search index in line with the entities a write created, updated or deleted."""
    gone: dict[str, set[str]] = defaultdict(set)
    fresh: dict[str, set[str]] = defaultdict(set)
    deleted_types: set[str] = set()
    for action, entity_type, id_ in changes:
        if entity_type not in COLLECTION:
            continue  # not a searchable entity
        gone[entity_type].add(id_)
        if action == "delete":
            deleted_types.add(entity_type)
        else:
            fresh[entity_type].add(id_)
    if not gone:
        return
    for entity_type, ids in _dependents(connection, gone).items():
        gone[entity_type] |= ids
        fresh[entity_type] |= ids
    store = _store(connection)
    for entity_type, ids in gone.items():
        batch = sorted(ids)
        for start in range(0, len(batch), CHUNK):
            chunk = batch[start : start + CHUNK]
            connection.execute(
                delete(store).where(store.c.type == entity_type, store.c.id.in_(chunk))
            )
    for entity_type in sorted({t for d in deleted_types for t in CASCADES.get(d, ())}):
        main = MAIN_TABLE[COLLECTION[entity_type]]
        connection.execute(
            delete(store).where(store.c.type == entity_type, store.c.id.not_in(select(main.c.id)))
        )
    _index(connection, fresh)


def _index(connection: Connection, ids: Mapping[str, set[str]]) -> None:
    """Write the documents of these entities, one statement per batch: FTS5 flushes its
    pending terms after every statement that writes it, and PostgreSQL computes the vector
    fastest in a COPY (an INSERT per row plans the vector's expression each time)."""
    store = _store(connection).name
    for documents in _documents(connection, ids):
        rows = [(d["type"], d["id"], d["title"], d["body"]) for d in documents]
        bulk_insert(connection, store, DOCUMENT_COLUMNS, rows)


def rebuild(connection: Connection) -> None:
    """Index every stored entity afresh (after a migration, or to repair the index)."""
    connection.execute(delete(_store(connection)))
    _index(
        connection,
        {
            ENTITY_TYPE[collection]: set(
                connection.execute(select(MAIN_TABLE[collection].c.id)).scalars()
            )
            for collection in COLLECTIONS
        },
    )


# --- querying -----------------------------------------------------------------------------


def _latin_diacritics() -> dict[int, str]:
    """Latin letters with diacritics -> their base letter, as the index folds them (FTS5's
    ``remove_diacritics``; on PostgreSQL the ``translate`` of the search_index migration)."""
    folding = {}
    for code in range(0x80, 0x10000):
        parts = unicodedata.normalize("NFD", chr(code))
        base, marks = parts[0], parts[1:]
        if marks and base.isascii() and base.isalpha() and all(map(unicodedata.combining, marks)):
            folding[code] = base
    return folding


FOLD = _latin_diacritics()


def terms(q: str) -> list[str]:
    """The words of ``q``: runs of letters and digits (Latin diacritics folded), at most
    16 of at most 64 characters. Case is left to the engine, which folds it as it indexed."""
    text = unicodedata.normalize("NFC", q).translate(FOLD)
    return [word[:MAX_TERM] for word in WORD.findall(text)[:MAX_TERMS]]


class Fts5:
    """SQLite: ``search_document`` MATCH the words, each quoted, the last a prefix query."""

    @staticmethod
    def query_text(words: Sequence[str]) -> str:
        return " ".join(f'"{w}"' for w in words) + "*"

    @staticmethod
    def match() -> ColumnElement[Any]:
        return FTS.op("MATCH")(sa.bindparam("q", type_=sa.String))

    @classmethod
    def matches(cls, typed: bool) -> Select[Any]:
        """The matching documents, their columns read from the content table: read through
        FTS5 they cost a lookup of its own per row, most of the time of a query that many
        documents match (every trade figure, say)."""
        found = select(ENTRY.c.type, ENTRY.c.id, ENTRY.c.title, ENTRY.c.doc)
        found = found.join_from(DOCUMENT, ENTRY, ENTRY.c.doc == DOCUMENT.c.rowid)
        found = found.where(cls.match())
        # ``type || ''``: with the type's index usable, SQLite would drive the join from it
        # and probe FTS5 once per document of that type (seconds for every trade figure).
        return found.where(any_of(ENTRY.c.type.concat(""), "types", "sqlite")) if typed else found

    @staticmethod
    def score() -> ColumnElement[Any]:
        return -sa.func.bm25(FTS, 0.0, 0.0, TITLE_WEIGHT, BODY_WEIGHT)

    @classmethod
    def snippets(cls) -> Select[Any]:
        """Title and body of the page's documents, ``docs``, each marked where it matched.
        ``rowid + 0``: one pass over the matches, the page's rows picked out as it goes.
        Given the rowids themselves, FTS5 runs the query again for each one, and a prefix
        query matching 100,000 documents took 1.8 ms a row that way."""
        return select(
            DOCUMENT.c.type,
            DOCUMENT.c.id,
            sa.func.highlight(FTS, 2, MARK, UNMARK),
            sa.func.snippet(FTS, 3, MARK, UNMARK, "…", SNIPPET_WORDS),
            sa.literal_column("''").label("body"),  # as PostgreSQL's: nothing to ellipsize
        ).where(cls.match(), any_of(DOCUMENT.c.rowid + 0, "docs", "sqlite"))

    @staticmethod
    def snippet_params(rows: Sequence[Any]) -> dict[str, Any]:
        return {"docs": [row.doc for row in rows]}


class Tsvector:
    """PostgreSQL: ``tsv @@ to_tsquery('simple', 'w1' & 'w2':*)``, the words quoted."""

    @staticmethod
    def query_text(words: Sequence[str]) -> str:
        return " & ".join(f"'{w}'" for w in words) + ":*"

    @staticmethod
    def query() -> ColumnElement[Any]:
        return sa.func.to_tsquery(SIMPLE, sa.bindparam("q", type_=sa.String))

    @classmethod
    def match(cls) -> ColumnElement[Any]:
        return DOCUMENT.c.tsv.op("@@")(cls.query())

    @classmethod
    def matches(cls, typed: bool) -> Select[Any]:
        found = select(DOCUMENT.c.type, DOCUMENT.c.id, DOCUMENT.c.title).where(cls.match())
        return found.where(any_of(DOCUMENT.c.type, "types", "postgresql")) if typed else found

    @classmethod
    def score(cls) -> ColumnElement[Any]:
        # Normalization 1 divides by 1 + log(length): BM25 too favours shorter documents.
        return sa.func.ts_rank_cd(RANK_WEIGHTS, DOCUMENT.c.tsv, cls.query(), 1)

    @classmethod
    def snippets(cls) -> Select[Any]:
        """Title and body of the page's documents, found by key: every id of the page under
        every type of the page (a few more than the page, by the primary key)."""
        return select(
            DOCUMENT.c.type,
            DOCUMENT.c.id,
            sa.func.ts_headline(SIMPLE, DOCUMENT.c.title, cls.query(), WHOLE),
            sa.func.ts_headline(SIMPLE, DOCUMENT.c.body, cls.query(), HEADLINE),
            DOCUMENT.c.body,
        ).where(
            any_of(DOCUMENT.c.type, "types", "postgresql"),
            any_of(DOCUMENT.c.id, "ids", "postgresql"),
        )

    @staticmethod
    def snippet_params(rows: Sequence[Any]) -> dict[str, Any]:
        return {"types": sorted({row.type for row in rows}), "ids": [row.id for row in rows]}


def _ellipsize(fragment: str, body: str) -> str:
    """Mark with ``…`` where a headline cuts the body, as FTS5's ``snippet`` does."""
    plain = fragment.replace(MARK, "").replace(UNMARK, "").strip()
    at = body.find(plain) if plain else -1
    if at < 0:
        return fragment
    head = "…" if body[:at].strip() else ""
    tail = "…" if body[at + len(plain) :].strip() else ""
    return f"{head}{fragment.strip()}{tail}"


def snippet(title: str, fragment: str) -> str:
    """The body fragment if the words matched there, else the title; HTML-escaped, marked."""
    text = fragment if MARK in fragment or MARK not in title else title
    escaped = html.escape(text, quote=False)
    return escaped.replace(MARK, "<mark>").replace(UNMARK, "</mark>")


BACKENDS: dict[str, type[Fts5] | type[Tsvector]] = {"sqlite": Fts5, "postgresql": Tsvector}


@dataclass(frozen=True)
class _Statements:
    count: Select[Any]
    page: Select[Any]
    snippets: Select[Any]


@lru_cache(maxsize=64)
def _statements(dialect: str, typed: bool, sort: str | None) -> _Statements:
    """A search's statements, built once per engine, type filter and order (building them
    cost a search for a rare word three times what running them did). An unknown sort
    field is a 422 problem, raised before anything is cached."""
    backend = BACKENDS[dialect]
    found = backend.matches(typed)
    if typed:
        count = select(sa.func.count()).select_from(found.subquery())
    else:  # the matches alone: on SQLite, without reading the content table
        count = select(sa.func.count()).select_from(DOCUMENT).where(backend.match())
    scored = found.add_columns(backend.score().label("score")).subquery()
    fields = {name: scored.c[name] for name in ("score", "type", "id", "title")}
    order = [*order_by(sort, fields, "-score", scored.c.type), scored.c.id.asc()]
    page = select(scored).order_by(*order)
    page = page.limit(sa.bindparam("page_limit", type_=sa.Integer))
    page = page.offset(sa.bindparam("page_offset", type_=sa.Integer))
    return _Statements(count, page, backend.snippets())


def search_documents(
    connection: Connection, words: Sequence[str], types: Sequence[str], page: PageParams
) -> tuple[list[Record], int]:
    """One page of hits, best first, and how many documents match in all: the count and
    the page in one batch (one round trip on PostgreSQL), then the page's snippets."""
    dialect = connection.dialect.name
    backend = BACKENDS[dialect]
    statements = _statements(dialect, bool(types), page.sort)
    params: dict[str, Any] = {"q": backend.query_text(words)}
    if types:
        params["types"] = list(types)
    pages = {"page_limit": page.limit, "page_offset": page.offset}
    (counted,), rows = fetch_all(
        connection, [(statements.count, params), (statements.page, {**params, **pages})]
    )
    snippets = {}
    if rows:
        marked = fetch(
            connection, statements.snippets, q=params["q"], **backend.snippet_params(rows)
        )
        snippets = {
            (t, i): (title, _ellipsize(fragment, body)) for t, i, title, fragment, body in marked
        }
    hits = []
    for row in rows:
        title, fragment = snippets.get((row.type, row.id), (row.title, ""))
        hits.append(
            {
                "type": row.type,
                "id": row.id,
                "title": row.title,
                "snippet": snippet(title, fragment),
                "score": float(f"{row.score:.6g}"),
            }
        )
    return hits, int(counted[0])


# --- the route ----------------------------------------------------------------------------


class SearchHit(BaseModel):
    """One matching entity: what it is, its id, a title and where the words matched."""

    type: EntityType = Field(
        description="The kind of entity; with `id` it names the resource.", examples=["visit"]
    )
    id: str = Field(examples=["kz-az-2022-08-24-tokayev-baku"])
    title: str = Field(
        description="Plain text: the entity's name or title, or one made from the names of "
        "its countries, organization or route.",
        examples=["Official visit of Kazakhstan to Azerbaijan, 2022-08-24"],
    )
    snippet: str = Field(
        description="An HTML fragment: the passage that matched (or the title, when only the "
        "title did), HTML-escaped, with each matching word in `<mark>`…`</mark>` and `…` "
        "where the passage is cut.",
        examples=["…Kazakh President Kassym-Jomart <mark>Tokayev</mark> arrived in Baku…"],
    )
    score: float = Field(
        description="Relevance, higher is better. Compare scores within one answer only: "
        "the scale is the engine's own."
    )


class SearchPage(Page[SearchHit]):
    terms: list[str] = Field(
        description="The words `q` was read as, in order; the last one matches as a prefix.",
        examples=[["South", "Caucas"]],
    )


QueryText = Annotated[
    str,
    Query(
        min_length=1,
        max_length=MAX_QUERY,
        description=f"The words to look for, up to {MAX_QUERY} characters. Words are runs of "
        "letters and digits; anything else only separates them, and nothing is an operator "
        "(`OR`, `NOT`, `NEAR` are words like any other; quotes, `*`, `-`, `:` separate "
        f"words). The first {MAX_TERMS} words count, each up to {MAX_TERM} characters. Case "
        "and the diacritics of Latin letters do not matter (`bakü` finds `Baku`). A `q` "
        "without a letter or digit is `422`.",
        examples=["Tokayev Baku"],
        # Documents what the handler checks (a letter or digit somewhere); not validated by
        # the regex, whose idea of a letter differs between regex engines.
        json_schema_extra={"pattern": WORD.pattern},
    ),
]
TYPE_NAMES = "|".join(COLLECTION)
TYPE_LIST = re.compile(rf"^\s*({TYPE_NAMES})?\s*(,\s*({TYPE_NAMES})?\s*)*$")
TypeFilter = Annotated[
    list[str] | None,
    Query(
        alias="type",
        description="Only these kinds of entity: "
        + ", ".join(f"`{t}`" for t in COLLECTION)
        + ". Comma-separated, repeated, or both.",
        examples=[["treaty,visit"]],
        # Documents what _types checks, which answers with the list of known types.
        json_schema_extra={
            "anyOf": [
                {"type": "array", "items": {"type": "string", "pattern": TYPE_LIST.pattern}},
                {"type": "null"},
            ]
        },
    ),
]
SearchPageDep = Annotated[PageParams, sorted_page(("score", "type", "id", "title"), "-score")]

router = APIRouter(prefix="/v1", tags=["search"])


def _types(values: list[str] | None) -> list[str]:
    types = [t.strip() for value in values or () for t in value.split(",") if t.strip()]
    unknown = [t for t in types if t not in COLLECTION]
    if unknown:
        allowed = ", ".join(COLLECTION)
        raise InvalidInput(
            f"Unknown type {unknown[0]!r}. Use one or more of: {allowed}.",
            errors=[{"param": "type", "message": f"unknown type {t!r}"} for t in unknown],
        )
    return list(dict.fromkeys(types))


@router.get(
    "/search",
    operation_id="search",
    summary="Search every kind of fact",
    description="Full-text search over the names and titles of every entity and all their "
    "texts: descriptions, relation notes, role titles, places, participants and the quote of "
    "every citation. A hit holds **every** word of `q` (the last one also as the start of a "
    "longer word: `Kazakh` finds `Kazakhstan`), in its title or its text. Hits come best "
    "first (a match in the title weighs ten times one in the text; ties by `type`, then "
    "`id`); `sort` can order them by `score`, `type`, `id` or `title` instead. A `q` "
    "without any letter or digit is `422`.",
    response_model=SearchPage,
    responses={**CSV_RESPONSE, **problem_responses(422)},
)
def search_facts(
    request: Request, engine: EngineDep, page: SearchPageDep, q: QueryText, kinds: TypeFilter = None
) -> Response:
    words = terms(q)
    if not words:
        raise InvalidInput(
            "The search query has no words to look for. Words are made of letters and digits; "
            "punctuation and symbols only separate them.",
            errors=[{"param": "q", "message": "no letters or digits"}],
        )
    types = _types(kinds)
    with read_connection(engine) as connection:
        hits, total = search_documents(connection, words, types, page)
    return page_response(request, page, hits, total, columns=HIT_COLUMNS, extra={"terms": words})
