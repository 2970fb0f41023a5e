"""The fact collections: shapes, filters, partial dates, sorting, pages and CSV.

Shapes and filters run on the shared seed; sorting, pages and CSV escaping load a small
dataset of their own (mixed-precision dates, ties, hostile titles) into a fresh database.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from conftest import SEED, load_into, make_client, ok, problem
from fastapi.testclient import TestClient

SEED_DATA: dict[str, Any] = json.loads(SEED.read_text())
SOURCE_ID = "azernews-2022-08-24-tokayev-baku"
TREATY_ID = "kz-az-strategic-partnership-2005"
VISIT_ID = "kz-az-2022-08-24-tokayev-baku"
TRADE_ID = "az-kz-2021-turnover-azernews"
ENVELOPE = {"items", "total", "limit", "offset", "next"}

# Every list of the contract, with how many items the seed gives it.
SEED_LISTS = {
    "/v1/countries": 249,
    "/v1/countries/KZ/partners": 1,
    "/v1/treaties": 1,
    "/v1/visits": 1,
    "/v1/trade": 1,
    "/v1/routes": 1,
    "/v1/organizations": 6,
    "/v1/people": 4,
    "/v1/sources": 1,
    "/v1/relations/KZ/AZ/timeline": 6,
}
GETS = {
    "treaties": TREATY_ID,
    "visits": VISIT_ID,
    "trade": TRADE_ID,
    "routes": "titr",
    "organizations": "un",
    "people": "kassym-jomart-tokayev",
    "sources": SOURCE_ID,
}


def ids(client: TestClient, path: str, **params: Any) -> list[str]:
    body = ok(client.get(path, params={"limit": 500, **params}))
    assert set(body) == ENVELOPE
    assert body["total"] == len(body["items"])
    return [item["id"] for item in body["items"]]


def assert_cited(fact: dict[str, Any], sources: set[str] | None = None) -> None:
    """A fact object: a non-empty ``sources`` of ``{source, quote}``."""
    assert isinstance(fact["sources"], list) and fact["sources"], fact
    for citation in fact["sources"]:
        assert set(citation) == {"source", "quote"}
        assert citation["source"] and citation["quote"]
        if sources is not None:
            assert citation["source"] in sources


def assert_country(value: dict[str, Any], iso2: str) -> None:
    assert value["iso2"] == iso2
    assert {"iso2", "iso3", "numeric", "name"} <= set(value)
    assert len(value["iso3"]) == 3 and len(value["numeric"]) == 3


def csv_rows(response: Any) -> tuple[list[str], list[dict[str, str]]]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    reader = csv.DictReader(io.StringIO(response.text))
    rows = list(reader)
    return list(reader.fieldnames or []), rows


def next_link(response: Any) -> str | None:
    match = re.search(r'<([^>]*)>;\s*rel="next"', response.headers.get("link", ""))
    return match.group(1) if match else None


# --- every GET of the contract on the seed ------------------------------------------


@pytest.mark.parametrize(("path", "total"), SEED_LISTS.items())
def test_every_list_answers_a_page(client: TestClient, path: str, total: int) -> None:
    body = ok(client.get(path, params={"limit": 500}))
    assert set(body) == ENVELOPE
    assert (body["total"], body["limit"], body["offset"], body["next"]) == (total, 500, 0, None)
    assert len(body["items"]) == total
    default = ok(client.get(path))
    assert default["limit"] == 50


def test_treaty(client: TestClient) -> None:
    treaty = ok(client.get(f"/v1/treaties/{TREATY_ID}"))
    assert treaty["id"] == TREATY_ID
    assert treaty["title"] == "Treaty on Strategic Partnership and Allied Relations"
    assert treaty["kind"] == "treaty"
    assert treaty["signed"] == "2005"
    assert treaty["signed_place"] == "Baku"
    assert [p["iso2"] for p in treaty["parties"]] == ["KZ", "AZ"]
    for party, iso2 in zip(treaty["parties"], ["KZ", "AZ"], strict=True):
        assert_country(party, iso2)
    assert_cited(treaty, {SOURCE_ID})
    assert len(treaty["sources"]) == 2
    assert ok(client.get("/v1/treaties"))["items"] == [treaty]


def test_visit(client: TestClient) -> None:
    visit = ok(client.get(f"/v1/visits/{VISIT_ID}"))
    assert (visit["date"], visit["kind"], visit["place"]) == ("2022-08-24", "official", "Baku")
    assert_country(visit["guest"], "KZ")
    assert_country(visit["host"], "AZ")
    assert visit["participants"] == [
        {"person": {"id": "kassym-jomart-tokayev", "name": "Kassym-Jomart Tokayev"},
         "role": "guest_leader"},
        {"person": {"id": "yagub-eyyubov", "name": "Yagub Eyyubov"}, "role": "welcomed_by"},
        {"person": {"id": "khalaf-khalafov", "name": "Khalaf Khalafov"}, "role": "welcomed_by"},
    ]  # fmt: skip
    assert_cited(visit, {SOURCE_ID})
    assert ok(client.get("/v1/visits"))["items"] == [visit]


def test_trade_figure(client: TestClient) -> None:
    figure = ok(client.get(f"/v1/trade/{TRADE_ID}"))
    assert_country(figure["reporter"], "AZ")
    assert_country(figure["partner"], "KZ")
    assert (figure["year"], figure["flow"], figure["value"], figure["currency"]) == (
        2021,
        "turnover",
        332200000,
        "USD",
    )
    assert figure["approximate"] is False
    assert_cited(figure, {SOURCE_ID})
    assert ok(client.get("/v1/trade"))["items"] == [figure]


def test_route(client: TestClient) -> None:
    route = ok(client.get("/v1/routes/titr"))
    assert route["name"] == "Trans-Caspian International Transport Route"
    assert route["acronym"] == "TITR"
    assert [c["iso2"] for c in route["countries"]] == ["KZ", "AZ"]  # in the order it runs
    [figure] = route["figures"]
    assert figure["id"] == "titr-throughput-2022"
    assert (figure["metric"], figure["value"], figure["unit"]) == (
        "throughput",
        6000000,
        "t/year",
    )
    assert isinstance(figure["value"], int)
    assert figure["approximate"] is True
    assert figure["as_of"] == "2022-08-24"
    assert_cited(route, {SOURCE_ID})
    assert_cited(figure, {SOURCE_ID})
    assert ok(client.get("/v1/routes"))["items"] == [route]


def test_organizations_with_members(client: TestClient) -> None:
    un = ok(client.get("/v1/organizations/un"))
    assert (un["name"], un["acronym"], un["kind"]) == ("United Nations", "UN", "international")
    assert [(m["id"], m["country"]["iso2"]) for m in un["members"]] == [
        ("az-un", "AZ"),
        ("kz-un", "KZ"),
    ]
    for membership in un["members"]:
        assert_cited(membership, {SOURCE_ID})
        assert membership["since"] is None
    listed = ok(client.get("/v1/organizations"))["items"]
    assert [o["id"] for o in listed] == [
        "association-of-freight-rail-carriers",  # ordered by name
        "cica",
        "turksoy",
        "oic",
        "osce",
        "un",
    ]
    assert next(o for o in listed if o["id"] == "un") == un
    assert listed[0]["members"] == []
    assert ids(client, "/v1/organizations", country="AZ") == [
        "cica",
        "turksoy",
        "oic",
        "osce",
        "un",
    ]


def test_people_with_roles(client: TestClient) -> None:
    tokayev = ok(client.get("/v1/people/kassym-jomart-tokayev"))
    [role] = tokayev["roles"]
    assert role["title"] == "President"
    assert_country(role["country"], "KZ")
    assert role["organization"] is None
    assert role["as_of"] == "2022-08-24"
    assert_cited(role, {SOURCE_ID})
    bolgert = ok(client.get("/v1/people/yevgeny-bolgert"))
    [role] = bolgert["roles"]
    assert role["country"] is None
    assert role["organization"] == {
        "id": "association-of-freight-rail-carriers",
        "name": "Association of Freight Rail Carriers",
    }
    people = ok(client.get("/v1/people"))["items"]
    assert [p["name"] for p in people] == sorted(p["name"] for p in SEED_DATA["people"])
    for person in people:
        for role in person["roles"]:
            assert_cited(role, {SOURCE_ID})


def seed_citations(source: str) -> list[tuple[str, str, str]]:
    """``(type, id, quote)`` of every citation of ``source`` anywhere in the seed file."""
    found: list[tuple[str, str, str]] = []

    def add(kind: str, fact: dict[str, Any]) -> None:
        found.extend(
            (kind, fact["id"], c["quote"]) for c in fact["sources"] if c["source"] == source
        )

    for person in SEED_DATA["people"]:
        for role in person["roles"]:
            add("role", role)
    for relation in SEED_DATA["relations"]:
        add("relation", relation)
        for note in relation["notes"]:
            add("relation_note", note)
    for collection, kind in [
        ("treaties", "treaty"),
        ("visits", "visit"),
        ("trade", "trade"),
        ("routes", "route"),
        ("memberships", "membership"),
        ("figures", "figure"),
    ]:
        for fact in SEED_DATA[collection]:
            add(kind, fact)
    return found


def test_source_with_every_fact_it_supports(client: TestClient) -> None:
    source = ok(client.get(f"/v1/sources/{SOURCE_ID}"))
    assert source["title"] == (
        "Kazakh President Kassym-Jomart Tokayev arrived in Baku on an official visit"
    )
    assert source["publisher"] == "Azernews"
    assert source["author"] == "Vugar Khalilov"
    assert source["published_at"] == "2022-08-24T11:00:00+04:00"
    assert source["url"] is None
    facts = [(f["type"], f["id"], f["quote"]) for f in source["facts"]]
    expected = seed_citations(SOURCE_ID)
    assert len(expected) > 30
    assert sorted(facts) == sorted(expected)
    assert {t for t, _, _ in facts} == {
        "relation",
        "relation_note",
        "treaty",
        "visit",
        "trade",
        "route",
        "membership",
        "figure",
        "role",
    }
    assert ok(client.get("/v1/sources"))["items"] == [source]


@pytest.mark.parametrize("collection", GETS)
def test_unknown_id_is_a_404_problem(client: TestClient, collection: str) -> None:
    assert ok(client.get(f"/v1/{collection}/{GETS[collection]}"))["id"] == GETS[collection]
    body = problem(client.get(f"/v1/{collection}/no-such-thing"), 404)
    assert "'no-such-thing'" in body["detail"]


@pytest.mark.parametrize("path", ["/v1/treaties", "/v1/visits", "/v1/trade", "/v1/routes"])
def test_every_fact_in_a_list_is_cited(client: TestClient, path: str) -> None:
    items = ok(client.get(path))["items"]
    assert items
    for fact in items:
        assert_cited(fact, {SOURCE_ID})
        for figure in fact.get("figures", []):
            assert_cited(figure, {SOURCE_ID})


def test_every_membership_and_role_is_cited(client: TestClient) -> None:
    members = [m for o in ok(client.get("/v1/organizations"))["items"] for m in o["members"]]
    roles = [r for p in ok(client.get("/v1/people"))["items"] for r in p["roles"]]
    assert len(members) == 10 and len(roles) == 4
    for fact in members + roles:
        assert_cited(fact, {SOURCE_ID})


# --- filters on the seed -------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "found"),
    [
        ({"country": "KZ", "partner": "AZ"}, True),
        ({"country": "aze", "partner": "398"}, True),  # either way round
        ({"country": "KZ", "partner": "FR"}, False),
        ({"signed_from": "2005-06"}, True),  # "2005" covers June 2005
        ({"signed_from": "2005-12-31"}, True),
        ({"signed_from": "2006"}, False),
        ({"signed_to": "2005-01"}, True),
        ({"signed_to": "2004-12-31"}, False),
        ({"signed_from": "2005", "signed_to": "2005"}, True),
        ({"q": "strategic partnership"}, True),
        ({"q": "ALLIED"}, True),
        ({"q": "deep roots"}, True),  # the description
        ({"q": "nonaggression"}, False),
    ],
)
def test_treaty_filters(client: TestClient, params: dict[str, str], found: bool) -> None:
    assert ids(client, "/v1/treaties", **params) == ([TREATY_ID] if found else [])


@pytest.mark.parametrize(
    ("params", "found"),
    [
        ({"country": "KZ"}, True),
        ({"country": "AZ", "partner": "KZ"}, True),  # either direction
        ({"country": "KZ", "partner": "AZ"}, True),
        ({"partner": "AZ"}, True),
        ({"country": "KZ", "partner": "RU"}, False),
        ({"host": "AZ"}, True),
        ({"host": "KZ"}, False),
        ({"guest": "kaz"}, True),
        ({"guest": "AZ"}, False),
        ({"guest": "KZ", "host": "AZ"}, True),
        ({"person": "kassym-jomart-tokayev"}, True),
        ({"person": "khalaf-khalafov"}, True),
        ({"person": "yevgeny-bolgert"}, False),
        ({"from": "2022-08"}, True),  # a month matches a day in it
        ({"from": "2022"}, True),
        ({"from": "2022-08-24", "to": "2022-08-24"}, True),
        ({"from": "2022-08-25"}, False),
        ({"from": "2022-09"}, False),
        ({"to": "2022-08"}, True),
        ({"to": "2022-08-23"}, False),
    ],
)
def test_visit_filters(client: TestClient, params: dict[str, str], found: bool) -> None:
    assert ids(client, "/v1/visits", **params) == ([VISIT_ID] if found else [])


@pytest.mark.parametrize(
    ("params", "found"),
    [
        ({"country": "KZ"}, True),
        ({"country": "AZ", "partner": "KZ"}, True),
        ({"country": "KZ", "partner": "AZ"}, True),  # turnover is the pair's, either way
        ({"country": "KZ", "partner": "RU"}, False),
        ({"flow": "turnover"}, True),
        ({"flow": "export"}, False),
        ({"year_from": 2021, "year_to": 2021}, True),
        ({"year_from": 2022}, False),
        ({"year_to": 2020}, False),
    ],
)
def test_trade_filters(client: TestClient, params: dict[str, Any], found: bool) -> None:
    assert ids(client, "/v1/trade", **params) == ([TRADE_ID] if found else [])


def test_route_filter(client: TestClient) -> None:
    assert ids(client, "/v1/routes", country="aze") == ["titr"]
    assert ids(client, "/v1/routes", country="398") == ["titr"]
    assert ids(client, "/v1/routes", country="CN") == []


@pytest.mark.parametrize(
    ("path", "param"),
    [
        ("/v1/treaties", "signed_from"),
        ("/v1/treaties", "signed_to"),
        ("/v1/visits", "from"),
        ("/v1/visits", "to"),
    ],
)
@pytest.mark.parametrize(
    "value",
    [
        "2022-13",
        "2022-00",
        "2022-02-30",
        "2023-02-29",
        "22",
        "2022-1",
        "2022-08-1",
        "20220",
        "2022/08",
        "abcd",
        "0000",
        "2022-08-24T10:00",
        "",
    ],
)
def test_malformed_dates_are_a_422_problem_naming_the_parameter(
    client: TestClient, path: str, param: str, value: str
) -> None:
    body = problem(client.get(path, params={param: value}), 422)
    assert [e.get("param") for e in body["errors"]] == [param]
    assert param in body["detail"]


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/v1/trade", {"flow": "re-export"}),
        ("/v1/trade", {"year_from": "twenty"}),
        ("/v1/trade", {"year_to": "1500"}),
    ],
)
def test_malformed_trade_filters_are_a_422_problem(
    client: TestClient, path: str, params: dict[str, str]
) -> None:
    body = problem(client.get(path, params=params), 422)
    assert [e.get("param") for e in body["errors"]] == list(params)


def test_a_leap_day_is_a_date(client: TestClient) -> None:
    assert ids(client, "/v1/visits", to="2024-02-29") == [VISIT_ID]


# --- a dataset of our own: sorting, filters, pages, CSV -----------------------------

SRC = "facts-test"
OTHER = "facts-test-other"


def cite(source: str = SRC) -> list[dict[str, str]]:
    return [{"source": source, "quote": "Said so."}]


def treaty(id_: str, title: str, signed: str | None, *parties: str, **more: Any) -> Any:
    return {"id": id_, "title": title, "signed": signed, "parties": list(parties),
            "sources": cite(), **more}  # fmt: skip


def visit(id_: str, date: str, guest: str, host: str, place: str, *people: str) -> Any:
    return {"id": id_, "date": date, "guest": guest, "host": host, "place": place,
            "participants": [{"person": p, "role": "delegate"} for p in people],
            "sources": cite()}  # fmt: skip


def trade(id_: str, reporter: str, partner: str, year: int, flow: str, value: int) -> Any:
    return {"id": id_, "reporter": reporter, "partner": partner, "year": year, "flow": flow,
            "value": value, "currency": "USD", "sources": cite()}  # fmt: skip


HOSTILE = ['=HYPERLINK("http://evil.example","click")', "@SUM(1)", "-2+3", "+1"]
EXTRA = {
    "sources": [
        {"id": SRC, "title": "Test source"},
        {"id": OTHER, "title": "Other source", "published_at": "2020-01-01T00:00:00+00:00"},
    ],
    "organizations": [
        {"id": "org-y", "name": "Ypsilon", "acronym": "AAA"},
        {"id": "org-z", "name": "Zeta union", "acronym": "ZU"},
    ],
    "people": [{"id": "person-a", "name": "Person A"}, {"id": "person-b", "name": "Person B"}],
    # Ids run against the dates so that a tie broken by id would show.
    "treaties": [
        treaty("treaty-a", "Alpha", "2005-03-01", "KZ", "AZ"),
        treaty("treaty-b", "Bravo", "2005-01-01", "KZ", "AZ"),
        treaty("treaty-c", "Charlie", "2005-01", "AZ", "KZ"),
        treaty("treaty-d", "Delta", "2005", "KZ", "AZ"),
        treaty("treaty-e", "Echo", "2010", "KZ", "AZ"),
        treaty("treaty-f", "Echo", "2010", "KZ", "AZ"),
        treaty("treaty-g", "Golf", None, "KZ", "AZ"),
        treaty("treaty-h", "Hotel", "2008", "KZ", "RU"),
        *(
            treaty(f"hostile-{i}", title, "2001", "FR", "DE", description="=1+1")
            for i, title in enumerate(HOSTILE)
        ),
    ],
    "visits": [
        visit("visit-a", "2022-09-01", "AZ", "KZ", "Astana", "person-b"),
        visit("visit-b", "2022-08-24", "KZ", "AZ", "Baku", "person-a"),
        visit("visit-c", "2022-08", "KZ", "AZ", "Baku"),
        visit("visit-d", "2022", "AZ", "KZ", "Astana"),
        visit("visit-e", "2021-12-31", "KZ", "RU", "Moscow", "person-a"),
        visit("visit-f", "2022-08-24", "AZ", "KZ", "Aktau"),
        visit("visit-0", "2022-08-01", "AZ", "KZ", "Baku"),  # starts with "2022-08"
    ],
    "trade": [
        trade("trade-a", "AZ", "KZ", 2019, "turnover", 100),
        trade("trade-b", "KZ", "AZ", 2019, "export", 300),
        trade("trade-c", "KZ", "AZ", 2020, "import", 200),
        trade("trade-d", "AZ", "KZ", 2020, "export", 50),
        trade("trade-e", "KZ", "AZ", 2021, "turnover", 400),
        trade("trade-f", "KZ", "RU", 2021, "export", 1000),
    ],
    "routes": [
        {"id": "route-b", "name": "Beta corridor", "countries": ["KZ", "RU"], "sources": cite()},
        {"id": "route-a", "name": "Alpha line", "countries": ["AZ", "GE"], "sources": cite()},
    ],
}
KZ_AZ_TREATIES = {"country": "KZ", "partner": "AZ"}


@pytest.fixture(scope="module")
def extra(loaded_url: Callable[[str, Any], str]) -> Iterator[TestClient]:
    """A client over EXTRA, shared by this module's tests: they only read."""
    with make_client(loaded_url("facts-extra", EXTRA)) as test_client:
        yield test_client


def test_treaty_sort(extra: TestClient) -> None:
    def order(sort: str | None) -> list[str]:
        params = {**KZ_AZ_TREATIES, **({"sort": sort} if sort else {})}
        return [i.removeprefix("treaty-") for i in ids(extra, "/v1/treaties", **params)]

    # Ascending: the coarser date first on the same first day; undated last either way.
    assert order("signed") == ["d", "c", "b", "a", "e", "f", "g"]
    assert order("-signed") == ["e", "f", "a", "b", "c", "d", "g"]
    assert order(None) == order("-signed")
    assert order("-signed,title") == ["e", "f", "a", "b", "c", "d", "g"]
    assert order("title") == ["a", "b", "c", "d", "e", "f", "g"]
    assert order("-title") == ["g", "e", "f", "d", "c", "b", "a"]  # Echo twice: id breaks it
    assert order("title,-signed") == ["a", "b", "c", "d", "e", "f", "g"]
    assert order("-id") == ["g", "f", "e", "d", "c", "b", "a"]


def test_treaty_filters_on_more_facts(extra: TestClient) -> None:
    assert ids(extra, "/v1/treaties", country="RU") == ["treaty-h"]
    assert ids(extra, "/v1/treaties", country="RU", partner="KZ") == ["treaty-h"]
    assert ids(extra, "/v1/treaties", country="RU", partner="AZ") == []
    assert len(ids(extra, "/v1/treaties", country="KZ")) == 8
    # "2005" overlaps February; "2005-01" and "2005-01-01" end before it.
    assert ids(extra, "/v1/treaties", sort="id", signed_from="2005-02", signed_to="2005-12") == [
        "treaty-a",
        "treaty-d",
    ]
    assert ids(extra, "/v1/treaties", sort="id", signed_from="2005-01", signed_to="2005-01") == [
        "treaty-b",
        "treaty-c",
        "treaty-d",
    ]
    assert ids(extra, "/v1/treaties", sort="id", signed_from="2009") == ["treaty-e", "treaty-f"]
    assert ids(extra, "/v1/treaties", sort="id", q="ECHO") == ["treaty-e", "treaty-f"]


def test_visit_sort(extra: TestClient) -> None:
    def order(sort: str | None) -> list[str]:
        params = {"sort": sort} if sort else {}
        return [i.removeprefix("visit-") for i in ids(extra, "/v1/visits", **params)]

    # "2022-08" and "2022-08-01" start the same day: the month first, then the day.
    assert order("date") == ["e", "d", "c", "0", "b", "f", "a"]
    assert order("-date") == ["a", "b", "f", "0", "c", "d", "e"]
    assert order(None) == order("-date")
    assert order("place") == ["f", "a", "d", "0", "b", "c", "e"]
    assert order("place,-date") == ["f", "a", "d", "b", "0", "c", "e"]
    assert order("-place,date") == ["e", "c", "0", "b", "d", "a", "f"]


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"from": "2022-08"}, "0abcdf"),
        ({"to": "2022-08"}, "0bcdef"),
        ({"from": "2022-08", "to": "2022-08"}, "0bcdf"),
        ({"from": "2022-08-25"}, "acd"),
        ({"to": "2022-07"}, "de"),
        ({"from": "2021", "to": "2021"}, "e"),
        ({"host": "KZ"}, "0adf"),
        ({"host": "kaz"}, "0adf"),
        ({"guest": "KZ"}, "bce"),
        ({"guest": "KZ", "host": "AZ"}, "bc"),
        ({"country": "KZ", "partner": "AZ"}, "0abcdf"),
        ({"country": "AZ", "partner": "KZ"}, "0abcdf"),
        ({"partner": "RU"}, "e"),
        ({"country": "ru"}, "e"),
        ({"country": "KZ"}, "0abcdef"),
        ({"person": "person-a"}, "be"),
        ({"person": "person-b"}, "a"),
        ({"person": "person-a", "host": "AZ"}, "b"),
    ],
)
def test_visit_filters_on_more_facts(
    extra: TestClient, params: dict[str, str], expected: str
) -> None:
    found = ids(extra, "/v1/visits", sort="id", **params)
    assert found == [f"visit-{x}" for x in expected]


def test_trade_sort(extra: TestClient) -> None:
    def order(sort: str | None) -> list[str]:
        params = {"sort": sort} if sort else {}
        return [i.removeprefix("trade-") for i in ids(extra, "/v1/trade", **params)]

    assert order(None) == ["e", "f", "c", "d", "a", "b"]  # -year, ties by id
    assert order("year") == ["a", "b", "c", "d", "e", "f"]
    assert order("value") == ["d", "a", "c", "b", "e", "f"]
    assert order("-value") == ["f", "e", "b", "c", "a", "d"]
    assert order("flow,-value") == ["f", "b", "d", "c", "e", "a"]
    assert order("-year,-value") == ["f", "e", "c", "d", "b", "a"]


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"country": "KZ", "partner": "AZ"}, "abce"),  # KZ's own reports, the turnovers
        ({"country": "AZ", "partner": "KZ"}, "ade"),
        ({"country": "KZ"}, "abcdef"),
        ({"country": "RU"}, "f"),
        ({"partner": "RU"}, "f"),
        ({"flow": "turnover"}, "ae"),
        ({"flow": "export"}, "bdf"),
        ({"country": "KZ", "partner": "AZ", "flow": "export"}, "b"),
        ({"year_from": 2020}, "cdef"),
        ({"year_to": 2019}, "ab"),
        ({"year_from": 2020, "year_to": 2020}, "cd"),
    ],
)
def test_trade_filters_on_more_facts(
    extra: TestClient, params: dict[str, Any], expected: str
) -> None:
    assert ids(extra, "/v1/trade", sort="id", **params) == [f"trade-{x}" for x in expected]


def test_other_lists_sort(extra: TestClient) -> None:
    assert ids(extra, "/v1/routes") == ["route-a", "route-b"]
    assert ids(extra, "/v1/routes", sort="-name") == ["route-b", "route-a"]
    assert ids(extra, "/v1/routes", country="KZ") == ["route-b"]
    assert ids(extra, "/v1/routes", country="GE") == ["route-a"]
    assert ids(extra, "/v1/organizations") == ["org-y", "org-z"]
    assert ids(extra, "/v1/organizations", sort="-name") == ["org-z", "org-y"]
    assert ids(extra, "/v1/organizations", sort="-acronym") == ["org-z", "org-y"]
    assert ids(extra, "/v1/people", sort="-name") == ["person-b", "person-a"]
    assert ids(extra, "/v1/people", sort="id") == ["person-a", "person-b"]
    # Undated sources come last whichever way.
    assert ids(extra, "/v1/sources") == [OTHER, SRC]
    assert ids(extra, "/v1/sources", sort="published_at") == [OTHER, SRC]
    assert ids(extra, "/v1/sources", sort="-title") == [SRC, OTHER]


SORTABLE = [
    "/v1/countries",
    "/v1/countries/KZ/partners",
    "/v1/treaties",
    "/v1/visits",
    "/v1/trade",
    "/v1/routes",
    "/v1/organizations",
    "/v1/people",
    "/v1/sources",
    "/v1/relations/KZ/AZ/timeline",
]


@pytest.mark.parametrize("path", SORTABLE)
@pytest.mark.parametrize("sort", ["bogus", "-bogus", "id,bogus", "title;drop", ","])
def test_unknown_sort_field_is_a_422_problem(client: TestClient, path: str, sort: str) -> None:
    body = problem(client.get(path, params={"sort": sort}), 422)
    assert [e.get("param") for e in body["errors"]] == ["sort"]


@pytest.mark.parametrize(
    ("path", "sort"),
    [
        ("/v1/treaties", "-signed,title"),
        ("/v1/visits", "date,place,id"),
        ("/v1/trade", "-year,flow"),
        ("/v1/routes", "name"),
        ("/v1/organizations", "acronym"),
        ("/v1/people", "-name"),
        ("/v1/sources", "-published_at"),
        ("/v1/countries", "-iso3"),
        ("/v1/countries/KZ/partners", "-total,name"),
        ("/v1/relations/KZ/AZ/timeline", "-date"),
    ],
)
def test_known_sort_fields_are_accepted(client: TestClient, path: str, sort: str) -> None:
    assert ok(client.get(path, params={"sort": sort}))["items"]


# --- pages -------------------------------------------------------------------------


def test_pages_follow_next_to_the_end(extra: TestClient) -> None:
    everything = ids(extra, "/v1/treaties", sort="signed")
    assert len(everything) == 12
    seen: list[str] = []
    url: str | None = "/v1/treaties?sort=signed&limit=5"
    offsets = []
    while url is not None:
        response = extra.get(url)
        body = ok(response)
        assert set(body) == ENVELOPE
        assert body["total"] == 12 and body["limit"] == 5
        offsets.append(body["offset"])
        seen += [t["id"] for t in body["items"]]
        assert next_link(response) == body["next"]
        if body["next"] is not None:
            assert "sort=signed" in body["next"] and "limit=5" in body["next"]
        url = body["next"]
    assert offsets == [0, 5, 10]
    assert seen == everything


def test_last_page_has_no_next(extra: TestClient) -> None:
    response = extra.get("/v1/treaties", params={"limit": 5, "offset": 10})
    body = ok(response)
    assert len(body["items"]) == 2 and body["next"] is None
    assert next_link(response) is None
    exact = extra.get("/v1/treaties", params={"limit": 12})
    assert ok(exact)["next"] is None and next_link(exact) is None
    beyond = ok(extra.get("/v1/treaties", params={"offset": 100}))
    assert beyond["items"] == [] and beyond["total"] == 12 and beyond["next"] is None


def test_limit_500_is_allowed(client: TestClient) -> None:
    body = ok(client.get("/v1/countries", params={"limit": 500}))
    assert body["limit"] == 500 and len(body["items"]) == 249


@pytest.mark.parametrize("path", SORTABLE)
@pytest.mark.parametrize(
    ("param", "value"),
    [("limit", "0"), ("limit", "501"), ("limit", "-1"), ("limit", "ten"), ("offset", "-1")],
)
def test_bad_page_parameters_are_a_422_problem(
    client: TestClient, path: str, param: str, value: str
) -> None:
    body = problem(client.get(path, params={param: value}), 422)
    assert [e.get("param") for e in body["errors"]] == [param]


# --- CSV ---------------------------------------------------------------------------

ROW_KEY = {"/v1/countries": "iso2", "/v1/countries/KZ/partners": "country"}


@pytest.mark.parametrize("path", SORTABLE)
@pytest.mark.parametrize("how", ["format", "accept"])
def test_every_list_answers_csv(client: TestClient, path: str, how: str) -> None:
    body = ok(client.get(path, params={"limit": 500}))
    if how == "format":
        response = client.get(path, params={"limit": 500, "format": "csv"})
    else:
        response = client.get(path, params={"limit": 500}, headers={"Accept": "text/csv"})
    header, rows = csv_rows(response)
    assert header and len(rows) == body["total"] == len(body["items"])
    key = ROW_KEY.get(path, "id")
    assert key in header
    expected = [
        item["country"]["iso3"] if key == "country" else item[key] for item in body["items"]
    ]
    assert [row[key] for row in rows] == expected


def test_json_is_the_default_and_format_wins_over_accept(client: TestClient) -> None:
    as_json = client.get("/v1/treaties", headers={"Accept": "application/json"})
    assert as_json.headers["content-type"] == "application/json"
    explicit = client.get("/v1/treaties?format=json", headers={"Accept": "text/csv"})
    assert explicit.headers["content-type"] == "application/json"
    assert problem(client.get("/v1/treaties?format=xml"), 422)["errors"][0]["param"] == "format"


def test_csv_flattens_countries_sources_and_references(client: TestClient) -> None:
    [treaty_row] = csv_rows(client.get("/v1/treaties?format=csv"))[1]
    assert treaty_row["parties"] == "KAZ;AZE"
    assert treaty_row["sources"] == SOURCE_ID  # two quotes of one source: the source once
    assert treaty_row["signed"] == "2005"
    [visit_row] = csv_rows(client.get("/v1/visits?format=csv"))[1]
    assert (visit_row["guest"], visit_row["host"]) == ("KAZ", "AZE")
    assert visit_row["participants"].split(";") == [
        "kassym-jomart-tokayev:guest_leader",
        "yagub-eyyubov:welcomed_by",
        "khalaf-khalafov:welcomed_by",
    ]
    [trade_row] = csv_rows(client.get("/v1/trade?format=csv"))[1]
    assert (trade_row["reporter"], trade_row["partner"], trade_row["value"]) == (
        "AZE",
        "KAZ",
        "332200000",
    )
    assert trade_row["approximate"] == "false"
    assert trade_row["sources"] == SOURCE_ID
    [route_row] = csv_rows(client.get("/v1/routes?format=csv"))[1]
    assert route_row["countries"] == "KAZ;AZE"
    assert route_row["figures"] == "titr-throughput-2022"
    orgs = csv_rows(client.get("/v1/organizations?format=csv"))[1]
    assert next(r for r in orgs if r["id"] == "un")["members"] == "az-un;kz-un"
    people = csv_rows(client.get("/v1/people?format=csv"))[1]
    tokayev = next(r for r in people if r["id"] == "kassym-jomart-tokayev")
    assert tokayev["roles"] == "kassym-jomart-tokayev-president-kz"
    timeline = csv_rows(client.get("/v1/relations/KZ/AZ/timeline?format=csv"))[1]
    assert [r["date"] for r in timeline][:2] == ["1992", "2005"]
    assert timeline[0]["sources"] == SOURCE_ID


@pytest.mark.parametrize(
    ("path", "columns"),
    [
        ("/v1/treaties?country=FR", {"id", "title", "signed", "parties", "sources"}),
        ("/v1/visits?host=FR", {"id", "date", "guest", "host", "participants", "sources"}),
        ("/v1/trade?country=FR", {"id", "reporter", "partner", "year", "value", "sources"}),
        ("/v1/countries/FR/partners", {"country", "counts_total", "counts_treaties"}),
        ("/v1/relations/FR/DE/timeline", {"date", "type", "id", "title", "sources"}),
    ],
)
def test_an_empty_csv_still_has_its_header(
    client: TestClient, path: str, columns: set[str]
) -> None:
    header, rows = csv_rows(client.get(path, headers={"Accept": "text/csv"}))
    assert rows == []
    assert columns <= set(header)


def test_csv_pages_carry_the_link_header(client: TestClient) -> None:
    response = client.get("/v1/countries?format=csv&limit=10")
    assert len(csv_rows(response)[1]) == 10
    link = next_link(response)
    assert link is not None and "format=csv" in link and "offset=10" in link


def test_csv_neutralises_formulas(extra: TestClient) -> None:
    params = {"country": "FR", "sort": "id"}
    treaties = ok(extra.get("/v1/treaties", params=params))["items"]
    assert [t["title"] for t in treaties] == HOSTILE  # JSON keeps the text as given
    _, rows = csv_rows(extra.get("/v1/treaties", params={**params, "format": "csv"}))
    assert [r["title"] for r in rows] == ["'" + title for title in HOSTILE]
    for row in rows:
        assert row["description"] == "'=1+1"
        for cell in row.values():
            assert not cell.startswith(("=", "+", "-", "@")), cell


RUSSIAN_TITLE = "Договор о дружбе"  # noqa: RUF001 (Cyrillic on purpose)


def test_text_filters_ignore_case_beyond_ascii(fresh_url: str) -> None:
    """`q` folds case for every letter on SQLite too (its own lower() is ASCII-only)."""
    load_into(
        fresh_url,
        {
            "sources": [{"id": SRC, "title": "Test source"}],
            "organizations": [{"id": "oes", "name": "Österreichische Union"}],
            "people": [{"id": "emine", "name": "Émine Ğül"}],
            "treaties": [treaty("dogovor", RUSSIAN_TITLE, "1995", "KZ", "RU")],
        },
    )
    with make_client(fresh_url) as client:
        assert ids(client, "/v1/treaties", q="ДОГОВОР") == ["dogovor"]
        assert ids(client, "/v1/organizations", q="ÖSTERREICH") == ["oes"]
        assert ids(client, "/v1/people", q="émine ğ") == ["emine"]
        assert ids(client, "/v1/treaties", q="договор x") == []


BIG, IDLE = "big-source", "idle-source"
PARTNERS = ["AZ", "RU", "CN", "TR", "GE", "UZ", "KG", "TJ", "TM", "MN"]


def big_source(n: int) -> dict[str, Any]:
    """A source cited by ``n`` trade figures, every 50th twice, and one cited by none."""

    def cites(i: int) -> list[dict[str, str]]:
        again = [{"source": BIG, "quote": f"Row {i}, again."}] if i % 50 == 0 else []
        return [{"source": BIG, "quote": f"Row {i}."}, *again]

    return {
        "sources": [{"id": BIG, "title": "Big"}, {"id": IDLE, "title": "Cites nothing"}],
        "trade": [
            {"id": f"big-{i:03}", "reporter": "KZ", "partner": PARTNERS[i % 10],
             "year": 1980 + i // 10, "flow": "export", "value": i, "currency": "USD",
             "sources": cites(i)}
            for i in range(n)
        ],
    }  # fmt: skip


def test_a_source_lists_its_first_facts_and_pages_through_all(fresh_url: str) -> None:
    data = big_source(230)
    load_into(fresh_url, data)
    # By type, then id, then the fact's order of citations.
    expected = [
        {"type": "trade", "id": fact["id"], "quote": c["quote"]}
        for fact in data["trade"]
        for c in fact["sources"]
    ]
    assert len(expected) == 235
    with make_client(fresh_url) as client:
        source = ok(client.get(f"/v1/sources/{BIG}"))
        assert source["fact_count"] == 235
        assert source["facts"] == expected[:100]
        listed = {s["id"]: s for s in ok(client.get("/v1/sources"))["items"]}
        assert listed[BIG] == source
        assert listed[IDLE]["facts"] == [] and listed[IDLE]["fact_count"] == 0

        walked, url, pages = [], f"/v1/sources/{BIG}/facts?limit=40", 0
        while url:
            page = ok(client.get(url))
            assert page["total"] == 235
            walked += page["items"]
            url, pages = page["next"], pages + 1
        assert walked == expected and pages == 6

        deep = ok(client.get(f"/v1/sources/{BIG}/facts", params={"offset": 200, "limit": 10}))
        assert deep["items"] == expected[200:210]
        empty = ok(client.get(f"/v1/sources/{IDLE}/facts"))
        assert (empty["items"], empty["total"], empty["next"]) == ([], 0, None)

        answer = client.get(f"/v1/sources/{BIG}/facts", params={"limit": 2, "format": "csv"})
        assert answer.status_code == 200
        rows = list(csv.DictReader(io.StringIO(answer.text)))
        assert rows == [{k: str(v) for k, v in item.items()} for item in expected[:2]]

        assert "no source" in problem(client.get("/v1/sources/nowhere/facts"), 404)["detail"]
        bad = problem(client.get(f"/v1/sources/{BIG}/facts", params={"cursor": "x"}), 422)
        assert bad["errors"][0]["param"] == "cursor"
        assert problem(client.get(f"/v1/sources/{BIG}/facts?limit=501"), 422)
