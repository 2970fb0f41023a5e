"""/v1/search: what it finds, how it ranks and pages, that hostile input never breaks it, and
that every write keeps the index in step, on SQLite (FTS5) and PostgreSQL (tsvector)."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from typing import Any, get_args

import pytest
from conftest import make_client, settle
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, event, text

from app import dataset, search
from app.db import create_db_engine, write_transaction
from app.records import ENTITY_TYPE
from app.settings import DEFAULT_SEED

VISIT = "kz-az-2022-08-24-tokayev-baku"
TOKAYEV = "kassym-jomart-tokayev"
SOURCE = "azernews-2022-08-24-tokayev-baku"
FTS_SYNTAX = ['"', "*", "NEAR(", "a OR", "-", "(", ")", ":", "^", "'", "%", "_", "\\"]
OPERATORS = [
    "NEAR",
    "AND",
    "OR",
    "NOT",
    "NEAR/2",
    "title:",
    "<->",
    ":*",
    "{",
    "}",
    "+",
    "&",
    "|",
    "!",
]
ODDITIES = ["Baku", "kaz", "\x00", "\u202e", "ي", "🙂", "1e10", "-0", "İ", "ß"]


def found(client: TestClient, q: str, **params: Any) -> list[tuple[str, str]]:
    response = client.get("/v1/search", params={"q": q, **params})
    assert response.status_code == 200, response.text
    return [(hit["type"], hit["id"]) for hit in response.json()["items"]]


def seed() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(DEFAULT_SEED.read_text())
    return data


# --- finding ------------------------------------------------------------------------------


def test_a_search_compiles_its_statements_once_per_filter_and_order(
    shared_seeded_url: str,
) -> None:
    """The regression guard for building a search's statements per request: other words
    and pages reuse them (and still find their own documents). No response cache: every
    request is searched."""
    search._statements.cache_clear()
    with make_client(shared_seeded_url, cache_enabled=False) as uncached:
        assert ("visit", VISIT) in found(uncached, "Tokayev")
        assert ("person", TOKAYEV) in found(uncached, "Kassym", limit=5)
        assert found(uncached, "Kassym", offset=50) == []
        assert search._statements.cache_info().misses == 1
        assert set(found(uncached, "Tokayev", type="visit")) == {("visit", VISIT)}
        assert search._statements.cache_info().misses == 2


def test_name_finds_the_person_and_the_visit(client: TestClient) -> None:
    hits = found(client, "Tokayev")
    assert ("person", TOKAYEV) in hits
    assert ("visit", VISIT) in hits
    assert ("source", SOURCE) in hits


def test_hits_have_a_type_id_title_snippet_and_score(client: TestClient) -> None:
    body = client.get("/v1/search", params={"q": "Tokayev"}).json()
    visit = next(hit for hit in body["items"] if hit["id"] == VISIT)
    assert visit["type"] == "visit"
    assert visit["title"] == "Official visit of Kazakhstan to Azerbaijan, 2022-08-24"
    assert "<mark>Tokayev</mark>" in visit["snippet"]
    assert isinstance(visit["score"], float)
    assert body["terms"] == ["Tokayev"]


def test_quotes_are_searched(client: TestClient) -> None:
    assert ("figure", "titr-throughput-2022") in found(client, "throughput")
    # "tons" is only in the figure's citation quote
    assert found(client, "million tons") == [("figure", "titr-throughput-2022")]


def test_relation_notes_and_their_quotes_are_searched(client: TestClient) -> None:
    assert found(client, "South Caucasus") == [("relation", "az-kz")]
    assert ("relation", "az-kz") in found(client, "locomotives")


@pytest.mark.parametrize(
    ("q", "hit"),
    [
        ("Trans-Caspian", ("route", "titr")),
        ("Kazakhstan in United Nations", ("membership", "kz-un")),
        ("Azerbaijan Kazakhstan trade turnover 2021", ("trade", "az-kz-2021-turnover-azernews")),
        ("Bilateral agreements", ("figure", "az-kz-bilateral-agreements-2022")),
        ("Deputy Foreign Minister", ("person", "khalaf-khalafov")),
        ("Khalafov", ("visit", VISIT)),
        ("Association of Freight Rail Carriers", ("person", "yevgeny-bolgert")),
        ("TURKSOY", ("organization", "turksoy")),
        ("Vugar Khalilov", ("source", SOURCE)),
        ("Strategic Partnership", ("treaty", "kz-az-strategic-partnership-2005")),
    ],
)
def test_every_kind_of_entity_is_found(client: TestClient, q: str, hit: tuple[str, str]) -> None:
    assert hit in found(client, q)


def test_the_last_word_is_a_prefix(client: TestClient) -> None:
    assert ("membership", "kz-un") in found(client, "Kazakh")
    assert found(client, "south cauc") == [("relation", "az-kz")]
    # only the last word: "cauc" in the middle must be a whole word
    assert found(client, "cauc south") == []


def test_case_and_accents_do_not_matter(client: TestClient) -> None:
    assert found(client, "TOKAYEV") == found(client, "tokayev")
    assert found(client, "Bakü") == found(client, "baku") != []


def test_every_word_must_match(client: TestClient) -> None:
    assert found(client, "Tokayev throughput") == []


def test_a_title_match_ranks_above_text_matches(client: TestClient) -> None:
    items = client.get("/v1/search", params={"q": "Tokayev"}).json()["items"]
    in_title = ["tokayev" in hit["title"].lower() for hit in items]
    assert in_title[0]
    assert in_title == sorted(in_title, reverse=True)
    scores = [hit["score"] for hit in items]
    assert scores == sorted(scores, reverse=True)


def test_ties_are_ordered_by_type_then_id(client: TestClient) -> None:
    items = client.get("/v1/search", params={"q": "multilateral", "limit": 500}).json()["items"]
    keys = [(-hit["score"], hit["type"], hit["id"]) for hit in items]
    assert keys == sorted(keys)


def test_sort(client: TestClient) -> None:
    ids = [i for _, i in found(client, "Kazakhstan", sort="id", limit=500)]
    assert ids == sorted(ids)
    response = client.get("/v1/search", params={"q": "Baku", "sort": "nope"})
    assert response.status_code == 422


# --- filtering and paging -----------------------------------------------------------------


def test_type_filter(client: TestClient) -> None:
    assert found(client, "Tokayev", type="visit") == [("visit", VISIT)]
    both = found(client, "Tokayev", type="person,visit")
    assert {type_ for type_, _ in both} == {"person", "visit"}
    assert ("person", TOKAYEV) in both
    assert both == [hit for hit in found(client, "Tokayev") if hit[0] in ("person", "visit")]
    response = client.get(
        "/v1/search", params=[("q", "Tokayev"), ("type", "person"), ("type", "visit")]
    )
    assert sorted((h["type"], h["id"]) for h in response.json()["items"]) == sorted(both)


def test_unknown_type_is_a_problem(client: TestClient) -> None:
    response = client.get("/v1/search", params={"q": "Tokayev", "type": "visit,planet"})
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert problem["errors"] == [{"param": "type", "message": "unknown type 'planet'"}]
    assert "treaty" in problem["detail"]


def test_pages(client: TestClient) -> None:
    everything = found(client, "Kazakhstan", limit=500)
    assert len(everything) > 2
    first = client.get("/v1/search", params={"q": "Kazakhstan", "limit": 1})
    body = first.json()
    assert body["total"] == len(everything)
    assert len(body["items"]) == 1
    assert body["next"] is not None and "offset=1" in body["next"]
    assert 'rel="next"' in first.headers["link"]
    walked = []
    url: str | None = "/v1/search?q=Kazakhstan&limit=2"
    while url:
        page = client.get(url).json()
        walked += [(hit["type"], hit["id"]) for hit in page["items"]]
        url = page["next"]
    assert walked == everything
    beyond = client.get("/v1/search", params={"q": "Kazakhstan", "offset": 1000}).json()
    assert beyond["items"] == [] and beyond["total"] == len(everything)


def test_csv(client: TestClient) -> None:
    response = client.get("/v1/search", params={"q": "Tokayev", "format": "csv"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    lines = response.text.splitlines()
    assert lines[0] == "type,id,title,snippet,score"
    assert len(lines) == 1 + len(found(client, "Tokayev"))


def test_hit_types_are_the_entity_types() -> None:
    assert set(get_args(search.EntityType)) == set(ENTITY_TYPE.values())


def test_openapi_describes_search(client: TestClient) -> None:
    operation = client.get("/openapi.json").json()["paths"]["/v1/search"]["get"]
    assert operation["operationId"] == "search"
    params = {p["name"] for p in operation["parameters"]}
    assert {"q", "type", "limit", "offset"} <= params
    assert "422" in operation["responses"]


# --- hostile input ------------------------------------------------------------------------


WITHOUT_WORDS = [q for q in FTS_SYNTAX if not any(c.isalnum() for c in q)]


@pytest.mark.parametrize("q", [*WITHOUT_WORDS, "\x00", "🙂", "!@#$%^&*()_+", '"" ** ::', "   "])
def test_queries_without_words_are_a_problem(client: TestClient, q: str) -> None:
    response = client.get("/v1/search", params={"q": q})
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert problem["errors"][0]["param"] == "q"
    assert "letters and digits" in problem["detail"]


@pytest.mark.parametrize(
    "q",
    [
        "NEAR(Baku, Tokayev)",
        "a OR",
        "Baku AND NOT Tokayev",
        '"Baku',
        "Baku*",
        "title:Baku",
        "^Baku",
        "Baku -Tokayev",
        "(Baku)",
        "Baku'",
        "100%",
        "Bak_",
        "Baku\\",
        "Baku\x00Tokayev",
        "Baku\x00",
        "كازاخستان",
        "שלום עולם",
        "Baku 🙂",
        "🇰🇿 Kazakhstan",
        "x²",
        "'; DROP TABLE search_document; --",
        "a & b | !c <-> d:*",
        " ".join(["Kazakhstan"] * 40),
        "k" * 500,
    ],
)
def test_hostile_queries_are_plain_words(client: TestClient, q: str) -> None:
    response = client.get("/v1/search", params={"q": q})
    assert response.status_code == 200, response.text
    assert len(response.json()["terms"]) <= search.MAX_TERMS


def test_syntax_is_not_interpreted(client: TestClient) -> None:
    assert found(client, '"Baku" NOT Tokayev') == []  # "not" is a word no document has
    assert found(client, "Baku\x00") == found(client, "Baku")
    assert found(client, "Kassym-Jomart") == found(client, "Kassym Jomart")


@pytest.mark.parametrize("q", ["", "x" * 501, "x" * 600])
def test_empty_and_long_queries_are_a_problem(client: TestClient, q: str) -> None:
    response = client.get("/v1/search", params={"q": q})
    assert response.status_code == 422
    assert response.json()["errors"][0]["param"] == "q"


def test_q_is_required(client: TestClient) -> None:
    assert client.get("/v1/search").status_code == 422


@settings(
    max_examples=150,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(q=st.text(max_size=60))
def test_no_text_breaks_search(client: TestClient, q: str) -> None:
    response = client.get("/v1/search", params={"q": q})
    assert response.status_code in (200, 422), response.text


@settings(
    max_examples=100,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    words=st.lists(
        st.sampled_from([*FTS_SYNTAX, *OPERATORS, *ODDITIES]),
        max_size=20,
    ),
    glue=st.sampled_from(["", " ", "\t", '"']),
)
def test_no_mix_of_syntax_breaks_search(client: TestClient, words: list[str], glue: str) -> None:
    response = client.get("/v1/search", params={"q": glue.join(words)})
    assert response.status_code in (200, 422), response.text


# --- keeping the index in step with writes -------------------------------------------------


@pytest.fixture
def engine(fresh_url: str) -> Iterator[Engine]:
    engine = create_db_engine(fresh_url)
    yield engine
    engine.dispose()


def load(engine: Engine, data: dict[str, Any]) -> dataset.LoadReport:
    return dataset.load(engine, dataset.parse_dataset(data))


def check_index(engine: Engine) -> None:
    """FTS5's own check that the index matches its content table."""
    if engine.dialect.name == "sqlite":
        with engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO search_document (search_document, rank)"
                    " VALUES ('integrity-check', 1)"
                )
            )


def treaty_dataset(title: str, description: str | None = None) -> dict[str, Any]:
    data = seed()
    return {
        "sources": data["sources"],
        "treaties": [
            {
                "id": "test-treaty",
                "title": title,
                "parties": ["KZ", "AZ"],
                "description": description,
                "sources": [{"source": SOURCE, "quote": "A quote that names no title."}],
            }
        ],
    }


def test_an_update_replaces_the_document(fresh_url: str, engine: Engine) -> None:
    load(engine, treaty_dataset("Treaty of Zanzibarian Concord"))
    with make_client(fresh_url) as client:
        assert found(client, "Zanzibarian") == [("treaty", "test-treaty")]
        report = load(engine, treaty_dataset("Pact of Quixotic Harmony"))
        assert report.updated == 1
        settle(client)
        assert found(client, "Zanzibarian") == []
        assert found(client, "Quixotic Harmony") == [("treaty", "test-treaty")]
        hit = client.get("/v1/search", params={"q": "Quixotic"}).json()["items"][0]
        assert hit["title"] == "Pact of Quixotic Harmony"
        load(engine, treaty_dataset("Traité de Yamoussoukro, Côte d'Ivoire"))
        settle(client)
        assert found(client, "traite cote") == [("treaty", "test-treaty")]
        assert found(client, "TRAITÉ Côte") == [("treaty", "test-treaty")]
        assert found(client, "Quixotic") == []
    check_index(engine)


def test_only_latin_letters_lose_their_accents(fresh_url: str, engine: Engine) -> None:
    """Letters that decompose into an ASCII letter and accents are found by that letter;
    others keep theirs (PostgreSQL decomposes a text to drop them, then composes it again:
    a Cyrillic й left decomposed would not match the query's й)."""
    load(engine, treaty_dataset("Treaty of Kraków and Йошкар-Ола"))
    with make_client(fresh_url) as client:
        assert found(client, "krakow") == found(client, "KRAKÓW") == [("treaty", "test-treaty")]
        assert found(client, "йошкар") == [("treaty", "test-treaty")]
        assert found(client, "иошкар") == []
    check_index(engine)


def test_seed_loads_are_indexed_and_new_entities_found(fresh_url: str, engine: Engine) -> None:
    load(engine, seed())
    data = {
        "sources": seed()["sources"],
        "routes": [
            {
                "id": "middle-corridor-test",
                "name": "Xyzzy Middle Corridor",
                "acronym": "XMC",
                "countries": ["KZ", "AZ", "GE"],
                "sources": [{"source": SOURCE, "quote": "The Xyzzy corridor crosses Georgia."}],
            }
        ],
    }
    with make_client(fresh_url) as client:
        assert ("visit", VISIT) in found(client, "Tokayev")
        assert found(client, "Xyzzy") == []
        load(engine, data)
        settle(client)
        assert found(client, "Xyzzy") == [("route", "middle-corridor-test")]
        assert found(client, "XMC Georgia") == [("route", "middle-corridor-test")]
        load(engine, data)  # unchanged: the index stays as it is
        assert found(client, "Xyzzy") == [("route", "middle-corridor-test")]
    check_index(engine)


def test_renaming_updates_the_documents_that_show_the_name(fresh_url: str, engine: Engine) -> None:
    data = seed()
    load(engine, data)
    renamed = copy.deepcopy(data)
    person = next(p for p in renamed["people"] if p["id"] == "yagub-eyyubov")
    person["name"] = "Yagub Quetzalcoatl"
    org = next(o for o in renamed["organizations"] if o["id"] == "un")
    org["name"] = "Uniquely Named Nations"
    route = renamed["routes"][0]
    route["name"] = "Zigzag Caspian Route"
    load(engine, renamed)
    with make_client(fresh_url) as client:
        assert sorted(found(client, "Quetzalcoatl")) == [
            ("person", "yagub-eyyubov"),
            ("visit", VISIT),
        ]
        assert sorted(found(client, "Uniquely Named")) == [
            ("membership", "az-un"),
            ("membership", "kz-un"),
            ("organization", "un"),
        ]
        assert ("figure", "titr-throughput-2022") in found(client, "Zigzag")
        titles = [hit["title"] for hit in client.get("/v1/search?q=Eyyubov").json()["items"]]
        assert "Yagub Quetzalcoatl" in titles and "Yagub Eyyubov" not in titles
    check_index(engine)


def test_deletes_remove_documents_with_cascaded_ones(fresh_url: str, engine: Engine) -> None:
    load(engine, seed())
    with write_transaction(engine) as connection:
        dataset.delete_entity(connection, "organizations", "un")  # memberships cascade
        dataset.delete_entity(connection, "treaties", "kz-az-strategic-partnership-2005")
        search.reindex(
            connection,
            [
                ("delete", "organization", "un"),
                ("delete", "treaty", "kz-az-strategic-partnership-2005"),
            ],
        )
    with make_client(fresh_url) as client:
        assert found(client, "United Nations", type="organization") == []
        memberships = found(client, "United Nations", type="membership")
        assert ("membership", "kz-un") not in memberships
        assert ("membership", "kz-oic") in memberships
        assert found(client, "Strategic Partnership", type="treaty") == []
        assert ("membership", "kz-osce") in found(client, "OSCE")
    check_index(engine)


def test_unknown_entity_types_are_ignored(engine: Engine) -> None:
    with write_transaction(engine) as connection:
        search.reindex(connection, [("create", "country", "KZ"), ("update", "planet", "x")])
        search.reindex(connection, [])


def test_rebuild_gives_the_same_index(fresh_url: str, engine: Engine) -> None:
    load(engine, seed())
    with make_client(fresh_url) as client:
        before = {q: found(client, q, limit=500) for q in ("Kazakhstan", "Tokayev", "route")}
        with write_transaction(engine) as connection:
            search.rebuild(connection)
        after = {q: found(client, q, limit=500) for q in before}
    assert after == before
    check_index(engine)


def test_snippets_escape_html(fresh_url: str, engine: Engine) -> None:
    load(
        engine,
        treaty_dataset(
            "Treaty of Ampersands",
            description="Whether <script>alert(1)</script> & Quixotic \x02 markers \x03 show.",
        ),
    )
    with make_client(fresh_url) as client:
        hit = client.get("/v1/search", params={"q": "Quixotic"}).json()["items"][0]
    assert "<script>" not in hit["snippet"]
    assert "<mark>Quixotic</mark>" in hit["snippet"]
    assert "&amp;" in hit["snippet"]
    assert "\x02" not in hit["snippet"] and "\x03" not in hit["snippet"]
    without_marks = hit["snippet"].replace("<mark>", "").replace("</mark>", "")
    assert "<" not in without_marks


def test_search_types_are_the_dataset_entity_types() -> None:
    """The `type` filter's documented choices are exactly the kinds the index holds."""
    from typing import get_args

    from app.records import ENTITY_TYPE
    from app.search import EntityType

    assert set(get_args(EntityType)) == set(ENTITY_TYPE.values())


def test_sqlite_reads_the_matches_once_from_the_full_text_index(
    engine_kind: str, shared_seeded_url: str
) -> None:
    """Each statement starts from FTS5's matches and visits them once: driving the join
    from the type index instead probed FTS5 once per document of that type, and snippets
    asked for by rowid ran the query again for each (5 s and 35 ms with 100k matches)."""
    if engine_kind != "sqlite":
        pytest.skip("FTS5 is SQLite's")
    statements: list[tuple[str, Any]] = []

    def record(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if "MATCH" in statement:
            statements.append((statement, parameters))

    with make_client(shared_seeded_url, cache_enabled=False) as client:
        engine = client.app.state.engine  # type: ignore[attr-defined]
        event.listen(engine, "before_cursor_execute", record)
        try:
            assert found(client, "Tokayev", type="visit")  # one type: its index looks best
        finally:
            event.remove(engine, "before_cursor_execute", record)
    assert len(statements) == 3  # the count, the page, its snippets
    with engine.connect() as connection:
        for statement, parameters in statements:
            plan = connection.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters)
            steps = [row[3] for row in plan]
            assert steps[0].startswith("SCAN search_document VIRTUAL TABLE INDEX 0:M"), steps
