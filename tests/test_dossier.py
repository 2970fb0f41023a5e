"""The pair dossier and timeline: sections, symmetry, bounded SQL, chronological order."""

from __future__ import annotations

import csv
import io
import itertools
import json
from collections.abc import Iterator
from typing import Any

import pytest
from conftest import SEED, load_into, make_client, ok, problem
from fastapi.testclient import TestClient
from sqlalchemy import Engine, event

from app import dataset, readers
from app.db import create_db_engine, read_connection
from app.dossier import build_dossier, timeline

SEED_DATA: dict[str, Any] = json.loads(SEED.read_text())
SOURCE_ID = "azernews-2022-08-24-tokayev-baku"
SECTIONS = [
    "diplomatic_relations",
    "treaties",
    "visits",
    "trade",
    "figures",
    "shared_organizations",
    "routes",
    "sources",
]
ORGS = ["cica", "oic", "osce", "turksoy", "un"]


def seed_pairs() -> list[tuple[str, str]]:
    """Every pair of countries the seed has at least one fact about."""
    pairs: set[tuple[str, str]] = set()

    def add(codes: list[str]) -> None:
        for a, b in itertools.combinations(sorted(set(codes)), 2):
            pairs.add((a, b))

    for record in SEED_DATA["relations"]:
        add(record["countries"])
    for record in SEED_DATA["treaties"]:
        add(record["parties"])
    for record in SEED_DATA["visits"]:
        add([record["guest"], record["host"]])
    for record in SEED_DATA["trade"]:
        add([record["reporter"], record["partner"]])
    for record in SEED_DATA["routes"]:
        add(record["countries"])
    for record in SEED_DATA["figures"]:
        if record["countries"]:
            add(record["countries"])
    members: dict[str, list[str]] = {}
    for record in SEED_DATA["memberships"]:
        members.setdefault(record["organization"], []).append(record["country"])
    for codes in members.values():
        add(codes)
    return sorted(pairs)


SEED_PAIRS = seed_pairs()


def citations(value: Any) -> Iterator[dict[str, str]]:
    """Every ``{source, quote}`` anywhere in an answer."""
    if isinstance(value, dict):
        if set(value) == {"source", "quote"}:
            yield value
            return
        for item in value.values():
            yield from citations(item)
    elif isinstance(value, list):
        for item in value:
            yield from citations(item)


def facts_of(dossier: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every fact object of a dossier: each must carry its sources."""
    for relation in dossier["diplomatic_relations"]:
        yield relation
        yield from relation["notes"]
    for section in ("treaties", "visits", "trade", "figures", "routes"):
        yield from dossier[section]
    for route in dossier["routes"]:
        yield from route["figures"]
    for organization in dossier["shared_organizations"]:
        yield from organization["members"]


def assert_sources_listed_once(dossier: dict[str, Any]) -> None:
    cited = {c["source"] for section in SECTIONS[:-1] for c in citations(dossier[section])}
    listed = [s["id"] for s in dossier["sources"]]
    assert len(listed) == len(set(listed)), "a source is listed twice"
    assert set(listed) == cited
    for fact in facts_of(dossier):
        assert fact["sources"], fact
        for citation in fact["sources"]:
            assert set(citation) == {"source", "quote"} and citation["quote"]


def without_countries(dossier: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in dossier.items() if k != "countries"}


# --- the seed's dossier --------------------------------------------------------------


def test_dossier_sections(client: TestClient) -> None:
    dossier = ok(client.get("/v1/relations/KZ/AZ"))
    assert {"countries", *SECTIONS} <= set(dossier)
    assert [c["iso2"] for c in dossier["countries"]] == ["KZ", "AZ"]
    for country in dossier["countries"]:
        assert {"iso2", "iso3", "numeric", "name"} <= set(country)

    [relation] = dossier["diplomatic_relations"]
    assert relation["established"] == "1992"
    assert len(relation["notes"]) == 7
    assert {n["id"] for n in relation["notes"]} == {
        n["id"] for n in SEED_DATA["relations"][0]["notes"]
    }
    for note in relation["notes"]:
        assert note["text"] and note["sources"]

    assert [t["id"] for t in dossier["treaties"]] == ["kz-az-strategic-partnership-2005"]
    assert dossier["treaties"][0]["signed"] == "2005"
    assert [v["id"] for v in dossier["visits"]] == ["kz-az-2022-08-24-tokayev-baku"]
    assert dossier["visits"][0]["guest"]["iso2"] == "KZ"
    assert [t["id"] for t in dossier["trade"]] == ["az-kz-2021-turnover-azernews"]
    assert dossier["trade"][0]["value"] == 332200000

    figures = {f["id"]: f for f in dossier["figures"]}
    assert set(figures) == {
        "az-kz-bilateral-agreements-2022",
        "az-kz-diplomatic-relations-anniversary-2022",
    }  # pair figures only: the route's throughput is under its route
    agreements = figures["az-kz-bilateral-agreements-2022"]
    assert (agreements["metric"], agreements["value"], agreements["unit"]) == (
        "bilateral_agreements",
        90,
        "agreements",
    )
    assert agreements["approximate"] is True

    shared = dossier["shared_organizations"]
    assert sorted(o["id"] for o in shared) == ORGS
    for organization in shared:
        assert organization["name"]
        members = organization["members"]
        assert sorted(m["country"]["iso2"] for m in members) == ["AZ", "KZ"]
        assert sorted(m["id"] for m in members) == [
            f"az-{organization['id']}",
            f"kz-{organization['id']}",
        ]

    [route] = dossier["routes"]
    assert route["id"] == "titr"
    assert [c["iso2"] for c in route["countries"]] == ["KZ", "AZ"]
    assert route["figures"][0]["value"] == 6000000

    [source] = dossier["sources"]
    assert source["id"] == SOURCE_ID
    assert source["publisher"] == "Azernews"
    assert source["published_at"] == "2022-08-24T11:00:00+04:00"
    assert_sources_listed_once(dossier)


@pytest.mark.parametrize(("a", "b"), SEED_PAIRS)
def test_every_seed_pair_is_symmetric(client: TestClient, a: str, b: str) -> None:
    forward = ok(client.get(f"/v1/relations/{a}/{b}"))
    backward = ok(client.get(f"/v1/relations/{b}/{a}"))
    assert [c["iso2"] for c in forward["countries"]] == [a, b]
    assert [c["iso2"] for c in backward["countries"]] == [b, a]
    assert without_countries(forward) == without_countries(backward)
    assert any(forward[section] for section in SECTIONS)
    assert_sources_listed_once(forward)
    timeline_ab = ok(client.get(f"/v1/relations/{a}/{b}/timeline"))
    timeline_ba = ok(client.get(f"/v1/relations/{b}/{a}/timeline"))
    assert timeline_ab["items"] and timeline_ab == timeline_ba


def test_seed_pairs_are_derived() -> None:
    assert ("AZ", "KZ") in SEED_PAIRS


@pytest.mark.parametrize(
    ("a", "b", "order"),
    [
        ("aze", "398", ["AZ", "KZ"]),
        ("kaz", "031", ["KZ", "AZ"]),
        ("398", "AZE", ["KZ", "AZ"]),
        ("Az", "kZ", ["AZ", "KZ"]),
    ],
)
def test_any_code_form_gives_the_same_facts(
    client: TestClient, a: str, b: str, order: list[str]
) -> None:
    expected = without_countries(ok(client.get("/v1/relations/KZ/AZ")))
    dossier = ok(client.get(f"/v1/relations/{a}/{b}"))
    assert [c["iso2"] for c in dossier["countries"]] == order  # the order asked
    assert without_countries(dossier) == expected


@pytest.mark.parametrize(("a", "b"), [("KZ", "kaz"), ("kz", "KZ"), ("398", "KAZ"), ("AZ", "031")])
def test_the_same_country_twice_is_a_422_problem(client: TestClient, a: str, b: str) -> None:
    for path in (f"/v1/relations/{a}/{b}", f"/v1/relations/{a}/{b}/timeline"):
        body = problem(client.get(path), 422)
        assert body["errors"]


def test_a_pair_without_facts_is_empty_not_missing(client: TestClient) -> None:
    dossier = ok(client.get("/v1/relations/FR/DE"))
    assert [c["iso2"] for c in dossier["countries"]] == ["FR", "DE"]
    for section in SECTIONS:
        assert dossier[section] == [], section
    timeline = ok(client.get("/v1/relations/fra/276/timeline"))
    assert timeline["items"] == [] and timeline["total"] == 0 and timeline["next"] is None


@pytest.mark.parametrize("path", ["/v1/relations/XX/AZ", "/v1/relations/KZ/XX"])
def test_an_unknown_code_is_a_404_problem(client: TestClient, path: str) -> None:
    for suffix in ("", "/timeline"):
        body = problem(client.get(path + suffix), 404)
        assert "'XX'" in body["detail"]


# --- bounded SQL -------------------------------------------------------------------

OTHER_SOURCE = "many-facts-source"


def cite(i: int) -> list[dict[str, str]]:
    """Alternate the seed's source and another one, so that both are cited."""
    source = OTHER_SOURCE if i % 2 else SOURCE_ID
    return [{"source": source, "quote": f"Fact number {i}."}]


def many_facts(n: int = 30) -> dict[str, Any]:
    """Many more facts about KZ and AZ (and a few about RU), each cited."""
    pair = ["KZ", "AZ"]
    return {
        "sources": [{"id": OTHER_SOURCE, "title": "Many facts"}],
        "organizations": [{"id": f"org-{i}", "name": f"Organization {i}"} for i in range(5)],
        "treaties": [
            {"id": f"many-treaty-{i}", "title": f"Treaty {i}", "signed": f"{1990 + i}",
             "parties": pair if i % 3 else [*pair, "RU"], "sources": cite(i)}
            for i in range(n)
        ],
        "visits": [
            {"id": f"many-visit-{i}", "date": f"{1990 + i}-05", "guest": pair[i % 2],
             "host": pair[(i + 1) % 2], "participants": [
                 {"person": "kassym-jomart-tokayev", "role": "guest_leader"}
             ], "sources": cite(i)}
            for i in range(n)
        ],
        "trade": [
            {"id": f"many-trade-{i}", "reporter": pair[i % 2], "partner": pair[(i + 1) % 2],
             "year": 1990 + i, "flow": ["turnover", "export", "import"][i % 3],
             "value": 1000 + i, "currency": "USD", "sources": cite(i)}
            for i in range(n)
        ],
        "routes": [
            {"id": f"many-route-{i}", "name": f"Route {i}", "countries": [*pair, "RU"][: 2 + i],
             "sources": cite(i)}
            for i in range(2)
        ],
        "memberships": [
            {"id": f"many-{c.lower()}-org-{i}", "organization": f"org-{i}", "country": c,
             "since": f"{2000 + i}", "sources": cite(i)}
            for i in range(5)
            for c in ("KZ", "AZ", "RU")
        ],
        "figures": [
            *({"id": f"many-figure-{i}", "metric": f"metric_{i}", "value": i, "unit": "units",
               "as_of": f"{2000 + i}-01-01", "countries": pair, "sources": cite(i)}
              for i in range(10)),
            *({"id": f"many-route-figure-{i}", "metric": "length", "value": 100 + i,
               "unit": "km", "route": f"many-route-{i}", "sources": cite(i)}
              for i in range(2)),
        ],
    }  # fmt: skip


class StatementCounter:
    def __init__(self, engine: Engine) -> None:
        self.statements: list[str] = []
        self.engine = engine
        event.listen(engine, "before_cursor_execute", self._count)

    def _count(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        self.statements.append(statement)

    def close(self) -> None:
        event.remove(self.engine, "before_cursor_execute", self._count)


def count_dossier_statements(engine: Engine, a: str, b: str) -> tuple[int, dict[str, Any]]:
    counter = StatementCounter(engine)
    try:
        with engine.connect() as connection:
            dossier = build_dossier(connection, a, b)
    finally:
        counter.close()
    return len(counter.statements), dossier


def test_dossier_sql_does_not_grow_with_the_facts(seeded_url: str) -> None:
    engine = create_db_engine(seeded_url)
    try:
        count_dossier_statements(engine, "KZ", "AZ")  # warm the in-memory country index
        before, small = count_dossier_statements(engine, "KZ", "AZ")
        dataset.load(engine, dataset.parse_dataset(many_facts()))
        after, large = count_dossier_statements(engine, "KZ", "AZ")
        reverse, large_reversed = count_dossier_statements(engine, "AZ", "KZ")
    finally:
        engine.dispose()
    assert len(large["treaties"]) == len(small["treaties"]) + 30
    assert len(large["visits"]) == len(small["visits"]) + 30
    assert len(large["trade"]) == len(small["trade"]) + 30
    assert len(large["figures"]) == len(small["figures"]) + 10
    assert len(large["shared_organizations"]) == len(small["shared_organizations"]) + 5
    assert len(large["routes"]) == len(small["routes"]) + 2
    assert before == after == reverse
    assert before <= 16  # BEGIN, per section its rows and children, the sources and names
    assert without_countries(large) == without_countries(large_reversed)


def test_dossier_sql_over_http_does_not_grow_with_the_facts(seeded_url: str) -> None:
    # The response cache would answer the repeat without SQL; this measures the handler.
    with make_client(seeded_url, cache_enabled=False) as client:
        engine: Engine = client.app.state.engine  # type: ignore[attr-defined]
        ok(client.get("/v1/relations/KZ/AZ"))  # warm up

        def count() -> tuple[int, dict[str, Any]]:
            counter = StatementCounter(engine)
            try:
                dossier = ok(client.get("/v1/relations/KZ/AZ"))
            finally:
                counter.close()
            return len(counter.statements), dossier

        before, small = count()
        load_into(seeded_url, many_facts())
        after, large = count()
    assert len(large["treaties"]) == len(small["treaties"]) + 30
    assert before == after


def test_postgresql_keeps_the_dossier_statements_prepared(shared_seeded_url: str) -> None:
    """Reads end with COMMIT: a ROLLBACK makes psycopg deallocate every prepared statement,
    and each request parsed and planned its statements again. Once prepared, they are not
    planned again either: the dossier asks for their generic plans."""
    if shared_seeded_url.startswith("sqlite"):
        pytest.skip("prepared statements on the server are a PostgreSQL matter")
    with make_client(shared_seeded_url, cache_enabled=False) as client:
        for _ in range(8):  # psycopg prepares a statement on its fifth execution
            ok(client.get("/v1/relations/KZ/AZ"))
        engine: Engine = client.app.state.engine  # type: ignore[attr-defined]
        assert engine.pool.checkedin() == 1  # one connection served them all
        with engine.connect() as connection:
            prepared, generic, custom = connection.exec_driver_sql(
                "SELECT count(*), sum(generic_plans), sum(custom_plans) FROM pg_prepared_statements"
            ).one()
    assert prepared >= 15
    assert generic >= prepared and custom == 0


def test_many_facts_dossier(seeded_url: str) -> None:
    load_into(seeded_url, many_facts())
    with make_client(seeded_url) as client:
        dossier = ok(client.get("/v1/relations/AZ/KZ"))
        assert without_countries(dossier) == without_countries(
            ok(client.get("/v1/relations/kaz/aze"))
        )
    assert [s["id"] for s in dossier["sources"]] == sorted([SOURCE_ID, OTHER_SOURCE])
    assert_sources_listed_once(dossier)
    # Organizations RU also belongs to show only the pair's two memberships.
    for organization in dossier["shared_organizations"]:
        assert sorted(m["country"]["iso2"] for m in organization["members"]) == ["AZ", "KZ"]
    # A treaty with a third party is still the pair's; routes through both are listed.
    assert "many-treaty-0" in {t["id"] for t in dossier["treaties"]}
    assert {"many-route-0", "many-route-1"} <= {r["id"] for r in dossier["routes"]}

    # Each section in its order (ids break ties).
    def in_order(section: str, *fields: str) -> None:
        keys = [(*(item[f] for f in fields), item["id"]) for item in dossier[section]]
        assert keys == sorted(keys), section

    in_order("treaties", "signed")
    in_order("visits", "date")
    in_order("trade", "year", "flow")
    in_order("figures", "metric")
    in_order("shared_organizations", "name")
    in_order("routes", "name")
    assert len(dossier["trade"]) >= 30 and len(dossier["visits"]) >= 30


def one_source_per_place() -> dict[str, Any]:
    """A pair whose every kind of citation cites a source of its own."""
    places: list[str] = []

    def cite(place: str) -> list[dict[str, str]]:
        places.append(place)
        return [{"source": place, "quote": f"Said of the {place}."}]

    pair = ["KZ", "AZ"]
    data: dict[str, Any] = {
        "format": "dyad-dataset/1",
        "organizations": [{"id": "org", "name": "Organization"}],
        "relations": [
            {"id": "az-kz", "countries": pair, "established": "1992",
             "notes": [{"id": "note", "text": "A note.", "sources": cite("note")}],
             "sources": cite("relation")}
        ],
        "treaties": [
            {"id": "t", "title": "T", "signed": "2000", "parties": pair, "sources": cite("treaty")}
        ],
        "visits": [
            {"id": "v", "date": "2001-05", "guest": "KZ", "host": "AZ", "participants": [],
             "sources": cite("visit")}
        ],
        "trade": [
            {"id": "tr", "reporter": "KZ", "partner": "AZ", "year": 2001, "flow": "turnover",
             "value": 5, "currency": "USD", "sources": cite("trade")}
        ],
        "routes": [{"id": "r", "name": "Route", "countries": pair, "sources": cite("route")}],
        "memberships": [
            {"id": f"m-{c.lower()}", "organization": "org", "country": c, "since": "2000",
             "sources": cite(f"membership-{c.lower()}")}
            for c in pair
        ],
        "figures": [
            {"id": "f", "metric": "m", "value": 1, "unit": "u", "as_of": "2001-01-01",
             "countries": pair, "sources": cite("figure")},
            {"id": "rf", "metric": "length", "value": 2, "unit": "km", "route": "r",
             "sources": cite("route-figure")},
        ],
    }  # fmt: skip
    data["sources"] = [{"id": place, "title": place} for place in places]
    return data


def test_every_kind_of_citation_lists_its_source(fresh_url: str) -> None:
    data = one_source_per_place()
    load_into(fresh_url, data)
    with make_client(fresh_url) as client:
        dossier = ok(client.get("/v1/relations/KZ/AZ"))
    assert_sources_listed_once(dossier)
    assert [s["id"] for s in dossier["sources"]] == sorted(s["id"] for s in data["sources"])


# --- the timeline ------------------------------------------------------------------

SEED_TIMELINE = [
    ("1992", "relation", "az-kz"),
    ("2005", "treaty", "kz-az-strategic-partnership-2005"),
    ("2021", "trade", "az-kz-2021-turnover-azernews"),
    ("2022", "figure", "az-kz-diplomatic-relations-anniversary-2022"),
    ("2022-08-24", "visit", "kz-az-2022-08-24-tokayev-baku"),
    ("2022-08-24", "figure", "az-kz-bilateral-agreements-2022"),
]


def entries(client: TestClient, path: str, **params: Any) -> list[tuple[str, str, str]]:
    body = ok(client.get(path, params={"limit": 500, **params}))
    assert set(body) == {"items", "total", "limit", "offset", "next"}
    assert body["total"] == len(body["items"])
    return [(e["date"], e["type"], e["id"]) for e in body["items"]]


def test_seed_timeline(client: TestClient) -> None:
    body = ok(client.get("/v1/relations/KZ/AZ/timeline"))
    for entry in body["items"]:
        assert set(entry) == {"date", "type", "id", "title", "sources"}
        assert entry["title"]
        assert entry["sources"] and all(c["source"] == SOURCE_ID for c in entry["sources"])
    assert entries(client, "/v1/relations/KZ/AZ/timeline") == SEED_TIMELINE
    assert ok(client.get("/v1/relations/AZ/KZ/timeline")) == body
    assert entries(client, "/v1/relations/aze/398/timeline", sort="date") == SEED_TIMELINE
    newest_first = entries(client, "/v1/relations/KZ/AZ/timeline", sort="-date")
    assert newest_first == SEED_TIMELINE[::-1]


@pytest.mark.parametrize("sort", ["title", "-title", "date,id", "type", "bogus"])
def test_timeline_unknown_sort_is_a_422_problem(client: TestClient, sort: str) -> None:
    body = problem(client.get("/v1/relations/KZ/AZ/timeline", params={"sort": sort}), 422)
    assert [e.get("param") for e in body["errors"]] == ["sort"]


def test_timeline_pages(client: TestClient) -> None:
    first = client.get("/v1/relations/KZ/AZ/timeline", params={"limit": 4})
    body = ok(first)
    assert body["total"] == 6 and len(body["items"]) == 4
    assert 'rel="next"' in first.headers["link"]
    rest = ok(client.get(body["next"]))
    assert rest["next"] is None
    dates = [e["date"] for e in body["items"] + rest["items"]]
    assert dates == [d for d, _, _ in SEED_TIMELINE]


def test_timeline_as_csv(client: TestClient) -> None:
    response = client.get("/v1/relations/KZ/AZ/timeline", headers={"Accept": "text/csv"})
    assert response.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert [(r["date"], r["type"], r["id"]) for r in rows] == SEED_TIMELINE
    assert all(r["sources"] == SOURCE_ID for r in rows)


SRC = "timeline-test"
MIXED = {
    "sources": [{"id": SRC, "title": "Timeline test"}],
    "organizations": [{"id": "zeta", "name": "Zeta union"}],
    "relations": [
        {"id": "az-kz", "countries": ["KZ", "AZ"], "established": "2005-01",
         "sources": [{"source": SRC, "quote": "Relations since January 2005."}]}
    ],
    # Ids and titles run against the dates, so that neither could give the order.
    "treaties": [
        {"id": f"treaty-{x}", "title": f"Treaty {x.upper()}", "signed": signed,
         "parties": ["KZ", "AZ"], "sources": [{"source": SRC, "quote": f"Signed {signed}."}]}
        for x, signed in [("a", "2005-03-01"), ("b", "2005-01-01"), ("c", "2005-01"),
                          ("d", "2005")]
    ] + [
        {"id": "treaty-0", "title": "Treaty undated", "parties": ["KZ", "AZ"],
         "sources": [{"source": SRC, "quote": "Signed once."}]}
    ],
    "visits": [
        {"id": "visit-a", "date": "2005-01-01", "guest": "AZ", "host": "KZ",
         "sources": [{"source": SRC, "quote": "Visited."}]}
    ],
    "trade": [
        {"id": "trade-a", "reporter": "KZ", "partner": "AZ", "year": 2005, "flow": "export",
         "value": 7, "currency": "USD", "sources": [{"source": SRC, "quote": "Exported."}]}
    ],
    "memberships": [
        {"id": "kz-zeta", "organization": "zeta", "country": "KZ", "since": "2005",
         "sources": [{"source": SRC, "quote": "Member."}]},
        {"id": "az-zeta", "organization": "zeta", "country": "AZ",
         "sources": [{"source": SRC, "quote": "Member."}]},
    ],
    "figures": [
        {"id": "figure-a", "metric": "agreements", "value": 3, "unit": "agreements",
         "as_of": "2004-12-31", "countries": ["AZ", "KZ"],
         "sources": [{"source": SRC, "quote": "Three."}]}
    ],
}  # fmt: skip
MIXED_TIMELINE = [
    ("2004-12-31", "figure", "figure-a"),
    ("2005", "treaty", "treaty-d"),
    ("2005", "membership", "kz-zeta"),
    ("2005", "trade", "trade-a"),
    ("2005-01", "relation", "az-kz"),
    ("2005-01", "treaty", "treaty-c"),
    ("2005-01-01", "treaty", "treaty-b"),
    ("2005-01-01", "visit", "visit-a"),
    ("2005-03-01", "treaty", "treaty-a"),
]


@pytest.fixture
def mixed(fresh_url: str) -> Iterator[TestClient]:
    load_into(fresh_url, MIXED)
    with make_client(fresh_url) as test_client:
        yield test_client


def test_dossier_sections_keep_their_order(mixed: TestClient) -> None:
    # Treaties by the start of their date, then id, the undated last on both engines (as
    # the lists sort them); trade by year, flow and id.
    dossier = ok(mixed.get("/v1/relations/KZ/AZ"))
    treaty_ids = [t["id"] for t in dossier["treaties"]]
    assert treaty_ids == ["treaty-b", "treaty-c", "treaty-d", "treaty-a", "treaty-0"]
    listed = ok(mixed.get("/v1/treaties", params={"sort": "signed", "country": "KZ"}))
    assert [t["id"] for t in listed["items"]][-1] == "treaty-0"


def test_timeline_orders_mixed_precisions(mixed: TestClient) -> None:
    # "2005" before "2005-01" before "2005-01-01" before "2005-03-01"; on the same date,
    # relation, treaty, membership, visit, trade, figure. Undated facts are left out.
    assert entries(mixed, "/v1/relations/KZ/AZ/timeline") == MIXED_TIMELINE
    assert entries(mixed, "/v1/relations/AZ/KZ/timeline") == MIXED_TIMELINE
    assert ok(mixed.get("/v1/relations/KZ/AZ/timeline")) == ok(
        mixed.get("/v1/relations/AZ/KZ/timeline")
    )
    assert entries(mixed, "/v1/relations/KZ/AZ/timeline", sort="-date") == MIXED_TIMELINE[::-1]
    page = ok(mixed.get("/v1/relations/KZ/AZ/timeline", params={"limit": 3, "offset": 3}))
    assert page["total"] == len(MIXED_TIMELINE)
    assert [(e["date"], e["type"], e["id"]) for e in page["items"]] == MIXED_TIMELINE[3:6]


def test_the_dossier_reads_in_two_rounds(seeded_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every section (no round for their ids first), then sources and names: each round's
    statements go to the database as one batch (on PostgreSQL one round trip), whatever
    the number of facts."""
    rounds: list[int] = []
    fetch_all = readers.fetch_all

    def counted(connection: Any, queries: Any) -> Any:
        rounds.append(len(queries))
        return fetch_all(connection, queries)

    engine = create_db_engine(seeded_url)
    try:
        dataset.load(engine, dataset.parse_dataset(many_facts()))
        monkeypatch.setattr(readers, "fetch_all", counted)
        statements, dossier = count_dossier_statements(engine, "KZ", "AZ")
    finally:
        engine.dispose()
    assert dossier["visits"] and dossier["sources"]
    assert len(rounds) == 2
    assert rounds[0] >= 10 and rounds[1] == 2
    assert sum(rounds) <= statements  # every statement of a round was sent


def test_the_timeline_reads_only_what_it_shows(seeded_url: str) -> None:
    """The timeline's dossier leaves out routes, the sources' records and the names of the
    visits' people (five statements fewer); its entries are those of the whole dossier."""
    engine = create_db_engine(seeded_url)
    try:
        dataset.load(engine, dataset.parse_dataset(many_facts()))
        count_dossier_statements(engine, "KZ", "AZ")  # warm the in-memory country index
        whole_count, whole = count_dossier_statements(engine, "KZ", "AZ")
        counter = StatementCounter(engine)
        try:
            with engine.connect() as connection:
                part = build_dossier(connection, "KZ", "AZ", whole=False)
        finally:
            counter.close()
    finally:
        engine.dispose()
    assert len(counter.statements) == whole_count - 5
    assert "sources" not in part and not part["routes"] and whole["routes"]
    assert len(timeline(whole)) > 100
    assert timeline(part) == timeline(whole)


def test_postgresql_sends_each_round_of_the_dossier_in_one_pipeline(
    shared_seeded_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each of the dossier's two rounds is one psycopg pipeline (one round trip), the
    first with the setting for generic plans."""
    if shared_seeded_url.startswith("sqlite"):
        pytest.skip("pipelines are psycopg's")
    import psycopg

    pipelines: list[int] = []
    pipeline = psycopg.Connection.pipeline

    def counted(self: psycopg.Connection[Any]) -> Any:
        pipelines.append(1)
        return pipeline(self)

    monkeypatch.setattr(psycopg.Connection, "pipeline", counted)
    statements: list[str] = []
    engine = create_db_engine(shared_seeded_url)
    event.listen(engine, "before_cursor_execute", lambda *args: statements.append(args[2]))
    try:
        with read_connection(engine) as connection:
            dossier = build_dossier(connection, "KZ", "AZ")
    finally:
        engine.dispose()
    assert dossier["sources"] and dossier["visits"]
    assert len(pipelines) == 2
    assert not any("plan_cache_mode" in statement for statement in statements)  # sent inside
