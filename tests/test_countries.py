"""Countries: any ISO code form wherever a country is taken, names, `lang`, partners."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from typing import Any

import pytest
from conftest import load_into, make_client, problem
from fastapi.testclient import TestClient

KZ_FORMS = ["KZ", "kz", "Kz", "KAZ", "kaz", "kAz", "398"]
AZ_FORMS = ["AZ", "az", "AZE", "aze", "031"]
UNKNOWN_CODES = ["XX", "xx", "XXX", "999", "000", "KAZA", "K1", "1234"]
KZ_COUNTS = {
    "relations": 1,
    "treaties": 1,
    "visits": 1,
    "trade": 1,
    "figures": 2,
    "routes": 1,
    "organizations": 5,
    "total": 12,
}

# Every query parameter that takes a country, with a seed country it finds facts for.
COUNTRY_QUERIES = [
    ("/v1/treaties", "country", "KZ"),
    ("/v1/treaties", "partner", "KZ"),
    ("/v1/visits", "country", "KZ"),
    ("/v1/visits", "partner", "KZ"),
    ("/v1/visits", "guest", "KZ"),
    ("/v1/visits", "host", "AZ"),
    ("/v1/trade", "country", "KZ"),
    ("/v1/trade", "partner", "KZ"),
    ("/v1/routes", "country", "KZ"),
    ("/v1/organizations", "country", "KZ"),
    ("/v1/people", "country", "KZ"),
]
FORMS = {"KZ": KZ_FORMS, "AZ": AZ_FORMS}


def assert_names_code_and_forms(body: dict[str, Any], code: str) -> None:
    detail = body["detail"]
    assert repr(code) in detail
    for form in ("alpha-2", "alpha-3", "numeric"):
        assert form in detail


def iso2s(response: Any) -> list[str]:
    assert response.status_code == 200, response.text
    return [item["iso2"] for item in response.json()["items"]]


# --- one country, any code form -------------------------------------------------------


@pytest.mark.parametrize("code", KZ_FORMS)
def test_country_in_any_code_form(client: TestClient, code: str) -> None:
    response = client.get(f"/v1/countries/{code}")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert {k: body[k] for k in ("iso2", "iso3", "numeric", "name")} == {
        "iso2": "KZ",
        "iso3": "KAZ",
        "numeric": "398",
        "name": "Kazakhstan",
    }
    assert body["official_name"] == "Republic of Kazakhstan"
    assert body.get("local_name") is None


@pytest.mark.parametrize("code", AZ_FORMS)
def test_numeric_codes_keep_three_digits(client: TestClient, code: str) -> None:
    body = client.get(f"/v1/countries/{code}").json()
    assert (body["iso2"], body["iso3"], body["numeric"]) == ("AZ", "AZE", "031")


@pytest.mark.parametrize("code", UNKNOWN_CODES)
def test_unknown_code_in_path_is_a_404_problem(client: TestClient, code: str) -> None:
    for path in (f"/v1/countries/{code}", f"/v1/countries/{code}/partners"):
        body = problem(client.get(path), 404)
        assert_names_code_and_forms(body, code)


@pytest.mark.parametrize(("path", "param", "country"), COUNTRY_QUERIES)
def test_every_country_query_takes_any_code_form(
    client: TestClient, path: str, param: str, country: str
) -> None:
    answers = []
    for code in FORMS[country]:
        response = client.get(path, params={param: code})
        assert response.status_code == 200, response.text
        answers.append([item["id"] for item in response.json()["items"]])
    assert answers[0], f"{path}?{param}={country} should find seed facts"
    assert all(answer == answers[0] for answer in answers)
    other = client.get(path, params={param: "FR"})
    assert other.status_code == 200
    assert other.json()["items"] == []


@pytest.mark.parametrize(("path", "param", "country"), COUNTRY_QUERIES)
@pytest.mark.parametrize("code", ["XX", "999", "KAZA"])
def test_unknown_code_in_query_is_a_404_problem(
    client: TestClient, path: str, param: str, country: str, code: str
) -> None:
    body = problem(client.get(path, params={param: code}), 404)
    assert_names_code_and_forms(body, code)


def test_pair_path_takes_any_code_form(client: TestClient) -> None:
    expected = client.get("/v1/relations/KZ/AZ").json()
    for a in KZ_FORMS:
        for b in ("az", "AZE", "031"):
            response = client.get(f"/v1/relations/{a}/{b}")
            assert response.status_code == 200
            assert response.json() == expected


@pytest.mark.parametrize("code", ["XX", "999"])
def test_unknown_code_in_pair_path_is_a_404_problem(client: TestClient, code: str) -> None:
    for path in (f"/v1/relations/{code}/AZ", f"/v1/relations/KZ/{code}"):
        assert_names_code_and_forms(problem(client.get(path), 404), code)


# --- names in another language ------------------------------------------------------


def test_lang_adds_the_local_name(client: TestClient) -> None:
    body = client.get("/v1/countries/kaz", params={"lang": "de"}).json()
    assert body["name"] == "Kazakhstan"
    assert body["local_name"] == "Kasachstan"
    page = client.get("/v1/countries", params={"q": "kazakh", "lang": "de"}).json()
    assert [c["local_name"] for c in page["items"]] == ["Kasachstan"]
    partners = client.get("/v1/countries/KZ/partners", params={"lang": "de"}).json()
    assert partners["items"][0]["country"]["local_name"] == "Aserbaidschan"
    assert client.get("/v1/countries/KZ", params={"lang": "fr"}).json()["local_name"] == (
        "Kazakhstan"
    )


@pytest.mark.parametrize("lang", ["zz", "xx", "de!", "english", ""])
def test_unknown_lang_is_a_422_problem(client: TestClient, lang: str) -> None:
    for path in ("/v1/countries/KZ", "/v1/countries", "/v1/countries/KZ/partners"):
        body = problem(client.get(path, params={"lang": lang}), 422)
        assert [e.get("param") for e in body["errors"]] == ["lang"]


# --- the list of countries -----------------------------------------------------------


def test_every_iso_country_is_listed(client: TestClient) -> None:
    body = client.get("/v1/countries", params={"limit": 500}).json()
    assert body["total"] == 249
    assert len(body["items"]) == 249
    assert body["next"] is None
    assert len({c["iso2"] for c in body["items"]}) == 249
    for country in body["items"]:
        assert len(country["iso2"]) == 2 and len(country["iso3"]) == 3
        assert len(country["numeric"]) == 3 and country["numeric"].isdigit()
        assert country["name"]
    names = [c["name"] for c in body["items"]]
    assert names == sorted(names)  # the default order is by name


@pytest.mark.parametrize(
    "q", ["Kazakhstan", "kazakh", "KAZAKH", "akhst", "  kazakh ", "republic of kaz", "kz", "KAZ"]
)
def test_q_matches_names_in_any_case_and_part_and_codes(client: TestClient, q: str) -> None:
    assert "KZ" in iso2s(client.get("/v1/countries", params={"q": q}))


def test_q_matches_a_numeric_code(client: TestClient) -> None:
    assert iso2s(client.get("/v1/countries", params={"q": "398"})) == ["KZ"]
    assert iso2s(client.get("/v1/countries", params={"q": "031"})) == ["AZ"]


def test_q_matches_every_name_containing_it(client: TestClient) -> None:
    found = set(iso2s(client.get("/v1/countries", params={"q": "STAN", "limit": 500})))
    assert {"KZ", "UZ", "TJ", "TM", "KG", "AF", "PK"} <= found
    assert "AZ" not in found
    both = set(iso2s(client.get("/v1/countries", params={"q": "az", "limit": 500})))
    assert {"AZ", "KZ", "BR"} <= both  # the code AZ, and names containing "az"


@pytest.mark.parametrize("q", ["åland", "ÅLAND", "Åland", "TÜRKIYE", "côte d'ivoire", "CURAÇAO"])
def test_q_folds_the_case_of_any_letter(client: TestClient, q: str) -> None:
    # SQLite's lower() folds ASCII only; the match must not depend on the engine.
    assert len(iso2s(client.get("/v1/countries", params={"q": q}))) == 1


def test_q_without_a_match_is_an_empty_page(client: TestClient) -> None:
    body = client.get("/v1/countries", params={"q": "atlantis"}).json()
    assert body == {"items": [], "total": 0, "limit": 50, "offset": 0, "next": None}


def test_q_total_counts_every_match_over_pages(client: TestClient) -> None:
    first = client.get("/v1/countries", params={"q": "stan", "limit": 2}).json()
    assert first["total"] >= 7 and len(first["items"]) == 2
    assert "q=stan" in first["next"]
    second = client.get(first["next"]).json()
    assert {c["iso2"] for c in first["items"]}.isdisjoint(c["iso2"] for c in second["items"])


@pytest.mark.parametrize(
    ("sort", "first"),
    [("name", "AF"), ("iso2", "AD"), ("-iso2", "ZW"), ("iso3", "AW"), ("numeric", "AF")],
)
def test_countries_sort(client: TestClient, sort: str, first: str) -> None:
    assert iso2s(client.get("/v1/countries", params={"sort": sort, "limit": 1})) == [first]


def test_countries_sort_descending_by_numeric(client: TestClient) -> None:
    items = client.get("/v1/countries", params={"sort": "-numeric", "limit": 3}).json()["items"]
    numerics = [c["numeric"] for c in items]
    assert numerics == sorted(numerics, reverse=True)
    assert numerics[0] == "894"  # Zambia


@pytest.mark.parametrize("sort", ["population", "name,area", "-", "iso2,"])
def test_unknown_country_sort_is_a_422_problem(client: TestClient, sort: str) -> None:
    body = problem(client.get("/v1/countries", params={"sort": sort}), 422)
    assert [e.get("param") for e in body["errors"]] == ["sort"]


def test_countries_as_csv(client: TestClient) -> None:
    response = client.get("/v1/countries", params={"format": "csv", "limit": 500})
    assert response.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert len(rows) == 249
    kz = next(r for r in rows if r["iso2"] == "KZ")
    assert kz == {
        "iso2": "KZ",
        "iso3": "KAZ",
        "numeric": "398",
        "name": "Kazakhstan",
        "official_name": "Republic of Kazakhstan",
    }
    assert next(r for r in rows if r["iso2"] == "AF")["numeric"] == "004"


# --- partners ----------------------------------------------------------------------


@pytest.mark.parametrize("code", KZ_FORMS)
def test_partners_with_counts_per_kind(client: TestClient, code: str) -> None:
    body = client.get(f"/v1/countries/{code}/partners").json()
    assert body["total"] == 1 and body["next"] is None
    [partner] = body["items"]
    assert partner["country"]["iso2"] == "AZ"
    assert partner["country"]["iso3"] == "AZE"
    assert partner["counts"] == KZ_COUNTS


def test_partners_are_symmetric(client: TestClient) -> None:
    [partner] = client.get("/v1/countries/aze/partners").json()["items"]
    assert partner["country"]["iso2"] == "KZ"
    assert partner["counts"] == KZ_COUNTS


def test_a_country_without_facts_has_no_partners(client: TestClient) -> None:
    body = client.get("/v1/countries/FR/partners").json()
    assert body["items"] == [] and body["total"] == 0 and body["next"] is None


def test_partners_as_csv(client: TestClient) -> None:
    response = client.get("/v1/countries/KZ/partners", headers={"Accept": "text/csv"})
    assert response.headers["content-type"].startswith("text/csv")
    [row] = list(csv.DictReader(io.StringIO(response.text)))
    assert row["country"] == "AZE"
    assert {k.removeprefix("counts_"): int(v) for k, v in row.items() if k != "country"} == (
        KZ_COUNTS
    )


def test_unknown_partner_sort_is_a_422_problem(client: TestClient) -> None:
    body = problem(client.get("/v1/countries/KZ/partners", params={"sort": "size"}), 422)
    assert [e.get("param") for e in body["errors"]] == ["sort"]


SOURCE = "partners-test"
PARTNERS = {
    "sources": [{"id": SOURCE, "title": "Partners test"}],
    "treaties": [
        {
            "id": f"kz-{c.lower()}-treaty",
            "title": "A treaty",
            "parties": ["KZ", c],
            "sources": [{"source": SOURCE, "quote": "Signed."}],
        }
        for c in ("RU", "CN", "UZ")
    ],
    "visits": [
        {
            "id": f"kz-{c.lower()}-visit",
            "date": "2020",
            "guest": "KZ",
            "host": c,
            "sources": [{"source": SOURCE, "quote": "Visited."}],
        }
        for c in ("RU", "AZ")
    ],
    "trade": [
        {
            "id": "ru-kz-turnover",
            "reporter": "RU",
            "partner": "KZ",
            "year": 2020,
            "flow": "turnover",
            "value": 1,
            "currency": "USD",
            "sources": [{"source": SOURCE, "quote": "Traded."}],
        }
    ],
}


@pytest.fixture
def partners_client(fresh_url: str) -> Iterator[TestClient]:
    load_into(fresh_url, PARTNERS)
    with make_client(fresh_url) as test_client:
        yield test_client


def partner_codes(client: TestClient, **params: Any) -> list[str]:
    response = client.get("/v1/countries/KZ/partners", params=params)
    assert response.status_code == 200, response.text
    return [p["country"]["iso2"] for p in response.json()["items"]]


def test_partners_order_and_sort(partners_client: TestClient) -> None:
    # RU: 3 facts; AZ, CN, UZ: 1 each, ties by name (Azerbaijan, China, Uzbekistan).
    assert partner_codes(partners_client) == ["RU", "AZ", "CN", "UZ"]
    assert partner_codes(partners_client, sort="-total") == ["RU", "AZ", "CN", "UZ"]
    assert partner_codes(partners_client, sort="name") == ["AZ", "CN", "RU", "UZ"]
    assert partner_codes(partners_client, sort="-name") == ["UZ", "RU", "CN", "AZ"]
    assert partner_codes(partners_client, sort="-visits,name") == ["AZ", "RU", "CN", "UZ"]
    assert partner_codes(partners_client, sort="treaties,-name") == ["AZ", "UZ", "RU", "CN"]
    counts = partners_client.get("/v1/countries/KZ/partners").json()["items"][0]["counts"]
    assert counts == {
        "relations": 0,
        "treaties": 1,
        "visits": 1,
        "trade": 1,
        "figures": 0,
        "routes": 0,
        "organizations": 0,
        "total": 3,
    }


def test_partners_pages(partners_client: TestClient) -> None:
    response = partners_client.get("/v1/countries/KZ/partners", params={"limit": 3})
    body = response.json()
    assert body["total"] == 4 and len(body["items"]) == 3
    assert 'rel="next"' in response.headers["link"]
    last = partners_client.get(body["next"]).json()
    assert [p["country"]["iso2"] for p in last["items"]] == ["UZ"]
    assert last["next"] is None
