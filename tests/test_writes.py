"""Writes to every collection: create, update and delete, with their problems, preconditions,
retries, the revision and change feed they move, and what readers see after them."""

from __future__ import annotations

import copy
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from conftest import make_client, ok, problem
from fastapi.testclient import TestClient

from app import api_keys
from app.db import create_db_engine
from app.records import ENTITY_TYPE

SOURCE = "azernews-2022-08-24-tokayev-baku"
TRADE = "az-kz-2021-turnover-azernews"
TREATY = "kz-az-strategic-partnership-2005"
CITE = [{"source": SOURCE, "quote": "A sentence of the source that says so."}]
# A new entity of each collection, in the write format.
NEW: dict[str, dict[str, Any]] = {
    "sources": {
        "id": "test-source",
        "title": "A test source",
        "publisher": "Test Press",
        "published_at": "2023-01-02T03:04:05+06:00",
        "url": "https://example.org/test",
        "language": "en",
    },
    "organizations": {"id": "test-org", "name": "Test Organization", "acronym": "TO"},
    "people": {
        "id": "test-person",
        "name": "Test Person",
        "roles": [
            {
                "id": "test-person-minister",
                "title": "Minister of Tests",
                "country": "kaz",
                "organization": "un",
                "as_of": "2023-05",
                "sources": CITE,
            }
        ],
    },
    "relations": {
        "id": "kz-uz",
        "countries": ["KZ", "UZB"],
        "established": "1992-11",
        "notes": [{"id": "kz-uz-neighbours", "text": "Neighbours.", "sources": CITE}],
        "sources": CITE,
    },
    "treaties": {
        "id": "test-treaty",
        "title": "Agreement on testing",
        "kind": "agreement",
        "signed": "2023-05",
        "parties": ["KZ", "031"],
        "sources": CITE,
    },
    "visits": {
        "id": "test-visit",
        "date": "2023-05-06",
        "kind": "working",
        "guest": "AZ",
        "host": "KZ",
        "participants": [{"person": "kassym-jomart-tokayev", "role": "welcomed_by"}],
        "sources": CITE,
    },
    "trade": {
        "id": "az-kz-2022-turnover-test",
        "reporter": "KZ",
        "partner": "AZ",
        "year": 2022,
        "flow": "turnover",
        "value": 500000000,
        "currency": "usd",
        "approximate": True,
        "sources": CITE,
    },
    "routes": {
        "id": "test-route",
        "name": "Test Corridor",
        "countries": ["KZ", "AZ", "GE"],
        "sources": CITE,
    },
    "memberships": {
        "id": "uz-un",
        "organization": "un",
        "country": "UZ",
        "since": "1992-03-02",
        "sources": CITE,
    },
    "figures": {
        "id": "az-kz-flights-2023",
        "metric": "flights_per_week",
        "value": 12,
        "unit": "flights",
        "countries": ["KZ", "AZ"],
        "as_of": "2023",
        "sources": CITE,
    },
}
PATCHES: dict[str, dict[str, Any]] = {
    "sources": {"title": "A retitled source", "notes": "Checked."},
    "organizations": {"name": "Renamed Organization", "kind": None},
    "people": {"name": "Renamed Person"},
    "relations": {"established": "1993"},
    "treaties": {"title": "Agreement on more testing", "signed_place": "Astana"},
    "visits": {"place": "Astana"},
    "trade": {"value": 510000000, "approximate": False},
    "routes": {"acronym": "TC", "countries": ["KZ", "AZ"]},
    "memberships": {"since": "1993"},
    "figures": {"value": 14.5},
}
# A field of each new entity that names another entity, set to an id nothing has.
MISSING: dict[str, tuple[list[str | int], str]] = {
    "people": (["roles", 0, "organization"], "no-such-organization"),
    "relations": (["notes", 0, "sources", 0, "source"], "no-such-source"),
    "treaties": (["sources", 0, "source"], "no-such-source"),
    "visits": (["participants", 0, "person"], "no-such-person"),
    "trade": (["sources", 0, "source"], "no-such-source"),
    "routes": (["sources", 0, "source"], "no-such-source"),
    "memberships": (["organization"], "no-such-organization"),
    "figures": (["sources", 0, "source"], "no-such-source"),
}
# A stored entity of each collection that the writes of the test never touch.
OTHER = {
    "sources": SOURCE,
    "organizations": "un",
    "people": "yevgeny-bolgert",
    "relations": "az-kz",
    "treaties": TREATY,
    "visits": "kz-az-2022-08-24-tokayev-baku",
    "trade": TRADE,
    "routes": "titr",
    "memberships": "kz-un",
    "figures": "az-kz-bilateral-agreements-2022",
}


@dataclass
class Api:
    """A client of a seeded database of the test's own, with a write key."""

    client: TestClient
    headers: dict[str, str]
    url: str

    def post(self, path: str, body: Any, **headers: str) -> Any:
        return self.client.post(path, json=body, headers={**self.headers, **headers})

    def patch(self, path: str, body: Any, **headers: str) -> Any:
        return self.client.patch(path, json=body, headers={**self.headers, **headers})

    def delete(self, path: str, **headers: str) -> Any:
        return self.client.delete(path, headers={**self.headers, **headers})

    def get(self, path: str, **params: Any) -> Any:
        return self.client.get(path, params=params)

    def revision(self) -> int:
        return int(ok(self.get("/v1/changes"))["revision"])

    def changes(self, since: int) -> list[tuple[int, str, str, str]]:
        items = ok(self.get("/v1/changes", since=since, limit=500))["items"]
        return [(c["revision"], c["action"], c["type"], c["id"]) for c in items]

    def state(self) -> tuple[bytes, int, list[tuple[int, str, str, str]]]:
        """Everything a write could change: the data, the revision, the change feed."""
        return self.get("/v1/export").content, self.revision(), self.changes(0)


def make_key(url: str, scope: api_keys.Scope = "write") -> dict[str, str]:
    engine = create_db_engine(url)
    try:
        secret, _ = api_keys.create_key(engine, f"tests {scope}", scope)
    finally:
        engine.dispose()
    return {"Authorization": f"Bearer {secret}"}


def warm(client: TestClient, headers: dict[str, str]) -> None:
    """One request first: FastAPI builds its routes on the first request, and doing that in
    several threads at once races on the process-wide warning filters, which make warnings
    errors under pytest."""
    problem(client.post("/v1/sources", json={}, headers=headers), 422)


@pytest.fixture
def api(seeded_url: str) -> Iterator[Api]:
    headers = make_key(seeded_url)
    with make_client(seeded_url) as client:
        yield Api(client, headers, seeded_url)


def with_value(record: dict[str, Any], path: list[str | int], value: Any) -> dict[str, Any]:
    changed = copy.deepcopy(record)
    node: Any = changed
    for step in path[:-1]:
        node = node[step]
    node[path[-1]] = value
    return changed


def pointers(body: dict[str, Any]) -> set[str]:
    return {e.get("pointer") for e in body["errors"]}


# --- every collection, through its whole life ------------------------------------------


@pytest.mark.parametrize("collection", NEW)
def test_create_read_update_delete(api: Api, collection: str) -> None:
    new, kind = NEW[collection], ENTITY_TYPE[collection]
    id_, path = new["id"], f"/v1/{collection}"
    start = api.revision()
    other = api.get(f"{path}/{OTHER[collection]}")
    assert other.status_code == 200

    # Problems first: none of them writes anything.
    before = api.state()
    for field in ("colour", "revision", "created_at", "updated_at"):
        body = problem(api.post(path, {**new, field: "2024-01-01T00:00:00Z"}), 422)
        assert f"/{field}" in pointers(body), body
    if collection in MISSING:
        where, missing = MISSING[collection]
        body = problem(api.post(path, with_value(new, where, missing)), 422)
        assert "/" + "/".join(map(str, where)) in pointers(body), body
        assert repr(missing) in body["detail"]
    problem(api.post(path, {**new, "id": OTHER[collection]}), 409)
    problem(api.patch(f"{path}/{id_}", PATCHES[collection]), 404)
    problem(api.delete(f"{path}/{id_}"), 404)
    assert api.state() == before
    total = ok(api.get(f"{path}?limit=1"))["total"]  # PostgreSQL's is kept by triggers

    # Create: 201, Location answering the same body, the ETag a GET gives.
    created = api.post(path, new)
    assert created.status_code == 201, created.text
    assert created.headers["location"] == f"{path}/{id_}"
    assert created.headers["cache-control"] == "no-store"
    read = api.get(created.headers["location"])
    assert read.status_code == 200
    assert read.json() == created.json()
    assert read.headers["etag"] == created.headers["etag"]
    assert api.revision() == start + 1
    problem(api.post(path, new), 409)  # the id exists now
    assert api.revision() == start + 1
    assert ok(api.get(f"{path}?limit=1"))["total"] == total + 1

    # Update: a stale If-Match is refused; the current one lets the change through.
    stale = problem(api.patch(f"{path}/{id_}", PATCHES[collection], **{"If-Match": '"stale"'}), 412)
    assert "ETag" in stale["detail"]
    etag = read.headers["etag"]
    updated = api.patch(f"{path}/{id_}", PATCHES[collection], **{"If-Match": etag})
    assert updated.status_code == 200, updated.text
    for field, value in PATCHES[collection].items():
        if field not in ("countries",):
            assert updated.json()[field] == value, field
    reread = api.get(f"{path}/{id_}")
    assert reread.json() == updated.json()
    assert reread.headers["etag"] == updated.headers["etag"] != etag
    assert api.get(f"{path}/{OTHER[collection]}").headers["etag"] == other.headers["etag"]
    assert api.revision() == start + 2
    problem(api.patch(f"{path}/{id_}", PATCHES[collection], **{"If-Match": etag}), 412)
    same = api.patch(f"{path}/{id_}", PATCHES[collection], **{"If-Match": "*"})
    assert same.status_code == 200
    assert same.headers["etag"] == updated.headers["etag"]
    assert api.revision() == start + 2  # nothing changed, no revision

    # Delete: a stale If-Match is refused; then 204, and the entity is gone.
    problem(api.delete(f"{path}/{id_}", **{"If-Match": etag}), 412)
    deleted = api.delete(f"{path}/{id_}", **{"If-Match": updated.headers["etag"]})
    assert deleted.status_code == 204, deleted.text
    assert deleted.content == b""
    problem(api.get(f"{path}/{id_}"), 404)
    problem(api.delete(f"{path}/{id_}"), 404)
    assert api.revision() == start + 3
    assert ok(api.get(f"{path}?limit=1"))["total"] == total
    assert api.changes(start) == [
        (start + 1, "create", kind, id_),
        (start + 2, "update", kind, id_),
        (start + 3, "delete", kind, id_),
    ]
    assert api.get(f"{path}/{OTHER[collection]}").headers["etag"] == other.headers["etag"]


@pytest.mark.parametrize("collection", NEW)
def test_update_bodies_refuse_ids_and_server_fields(api: Api, collection: str) -> None:
    path = f"/v1/{collection}/{OTHER[collection]}"
    before = api.state()
    for field in ("id", "revision", "updated_at", "colour"):
        body = problem(api.patch(path, {field: "x"}), 422)
        assert pointers(body) == {f"/{field}"}, body
    assert api.state() == before


def test_a_created_entity_is_listed_and_in_the_new_collections(api: Api) -> None:
    for collection in ("relations", "memberships", "figures"):
        assert api.post(f"/v1/{collection}", NEW[collection]).status_code == 201
    relation = ok(api.get("/v1/relations/kz-uz"))
    assert [c["iso2"] for c in relation["countries"]] == ["KZ", "UZ"]
    assert relation["notes"][0]["id"] == "kz-uz-neighbours"
    assert [r["id"] for r in ok(api.get("/v1/relations", country="UZ"))["items"]] == ["kz-uz"]
    membership = ok(api.get("/v1/memberships/uz-un"))
    assert membership["organization"] == {"id": "un", "name": "United Nations"}
    assert membership["country"]["iso3"] == "UZB"
    un = ok(api.get("/v1/organizations/un"))
    assert "uz-un" in [m["id"] for m in un["members"]]
    figure = ok(api.get("/v1/figures/az-kz-flights-2023"))
    assert figure["route"] is None
    assert [c["iso2"] for c in figure["countries"]] == ["AZ", "KZ"]
    dossier = ok(api.get("/v1/relations/KZ/AZ"))
    assert "az-kz-flights-2023" in [f["id"] for f in dossier["figures"]]


# --- what a write must not break -------------------------------------------------------


def test_patch_checks_the_merged_record(api: Api) -> None:
    before = api.state()
    body = problem(api.patch(f"/v1/trade/{TRADE}", {"partner": "AZ", "reporter": "AZE"}), 422)
    assert "different countries" in body["detail"]
    body = problem(api.patch(f"/v1/treaties/{TREATY}", {"title": None}), 422)
    assert pointers(body) == {"/title"}
    body = problem(api.patch(f"/v1/treaties/{TREATY}", {"sources": []}), 422)
    assert pointers(body) == {"/sources"}
    body = problem(api.patch(f"/v1/treaties/{TREATY}", {"parties": ["XX"]}), 422)
    assert pointers(body) == {"/parties/0"}
    body = problem(api.patch("/v1/relations/az-kz", {"countries": ["KZ", "KZ"]}), 422)
    assert "two different countries" in body["detail"]
    body = problem(api.post("/v1/relations", {**NEW["relations"], "countries": ["AZ", "KZ"]}), 409)
    assert pointers(body) == {"/countries"}
    assert "az-kz" in body["detail"]
    body = problem(api.post("/v1/memberships", {**NEW["memberships"], "country": "KZ"}), 409)
    assert "kz-un" in body["detail"]
    body = problem(api.post("/v1/treaties", {**NEW["treaties"], "title": "a\x00b"}), 422)
    assert pointers(body) == {"/title"}
    body = problem(api.post("/v1/figures", {**NEW["figures"], "value": 10**30}), 422)
    assert pointers(body) == {"/value"}
    body = problem(api.post("/v1/sources", {**NEW["sources"], "id": "Not A Slug"}), 422)
    assert pointers(body) == {"/id"}
    assert api.state() == before


def test_a_failing_write_changes_nothing(api: Api) -> None:
    before = api.state()
    import_key = make_key(api.url, "import")
    failures = [
        api.post("/v1/treaties", {**NEW["treaties"], "revision": 7}),
        api.post("/v1/treaties", {**NEW["treaties"], "id": TREATY}),
        api.post("/v1/trade", with_value(NEW["trade"], ["sources", 0, "source"], "nope")),
        api.post("/v1/treaties", "not an object"),
        api.client.post("/v1/treaties", content=b"{not json", headers=api.headers),
        api.patch(f"/v1/treaties/{TREATY}", {"title": "x"}, **{"If-Match": '"old"'}),
        api.patch("/v1/people/kassym-jomart-tokayev", {"roles": [{"id": "bad"}]}),
        api.delete(f"/v1/sources/{SOURCE}"),
        api.delete("/v1/people/kassym-jomart-tokayev"),
        api.delete("/v1/treaties/nothing-here"),
        api.client.post("/v1/treaties", json=NEW["treaties"]),
        api.client.post("/v1/treaties", json=NEW["treaties"], headers=import_key),
    ]
    assert [r.status_code for r in failures] == [
        422,
        409,
        422,
        422,
        422,
        412,
        422,
        409,
        409,
        404,
        401,
        403,
    ]
    for response in failures:
        problem(response, response.status_code)
    assert api.state() == before


# --- deletes ---------------------------------------------------------------------------


def test_a_cited_source_cannot_be_deleted(api: Api) -> None:
    before = api.state()
    body = problem(api.delete(f"/v1/sources/{SOURCE}"), 409)
    cited_by = {(r["type"], r["id"]) for r in body["referenced_by"]}
    assert {
        ("trade", TRADE),
        ("treaty", TREATY),
        ("visit", "kz-az-2022-08-24-tokayev-baku"),
        ("route", "titr"),
        ("figure", "titr-throughput-2022"),
        ("membership", "kz-un"),
        ("relation", "az-kz"),  # the relation and its notes
        ("person", "kassym-jomart-tokayev"),  # through the citation of a role
    } <= cited_by
    assert "figure az-kz-bilateral-agreements-2022" in body["detail"]  # the first few
    assert f"and {len(cited_by) - 10} more" in body["detail"]
    assert "without sources" in body["detail"]
    assert api.state() == before

    # Cited by one fact only: name it; once the fact goes, the source can go.
    assert api.post("/v1/sources", NEW["sources"]).status_code == 201
    cite = [{"source": "test-source", "quote": "Says so."}]
    assert api.post("/v1/treaties", {**NEW["treaties"], "sources": cite}).status_code == 201
    body = problem(api.delete("/v1/sources/test-source"), 409)
    assert body["referenced_by"] == [{"type": "treaty", "id": "test-treaty"}]
    assert "treaty test-treaty" in body["detail"]
    assert api.delete("/v1/treaties/test-treaty").status_code == 204
    assert api.delete("/v1/sources/test-source").status_code == 204


def test_people_in_visits_and_organizations_with_roles_cannot_be_deleted(api: Api) -> None:
    body = problem(api.delete("/v1/people/kassym-jomart-tokayev"), 409)
    assert body["referenced_by"] == [{"type": "visit", "id": "kz-az-2022-08-24-tokayev-baku"}]
    body = problem(api.delete("/v1/organizations/association-of-freight-rail-carriers"), 409)
    assert body["referenced_by"] == [{"type": "person", "id": "yevgeny-bolgert"}]
    # A person in no visit goes, with the person's roles.
    start = api.revision()
    assert api.delete("/v1/people/yevgeny-bolgert").status_code == 204
    assert api.changes(start) == [(start + 1, "delete", "person", "yevgeny-bolgert")]
    assert api.delete("/v1/organizations/association-of-freight-rail-carriers").status_code == 204


def test_what_goes_with_an_entity_is_in_the_change_feed(api: Api) -> None:
    start = api.revision()
    assert api.delete("/v1/organizations/turksoy").status_code == 204
    assert api.changes(start) == [
        (start + 1, "delete", "organization", "turksoy"),
        (start + 1, "delete", "membership", "az-turksoy"),
        (start + 1, "delete", "membership", "kz-turksoy"),
    ]
    problem(api.get("/v1/memberships/kz-turksoy"), 404)
    assert api.delete("/v1/routes/titr").status_code == 204
    assert api.changes(start + 1) == [
        (start + 2, "delete", "route", "titr"),
        (start + 2, "delete", "figure", "titr-throughput-2022"),
    ]
    problem(api.get("/v1/figures/titr-throughput-2022"), 404)
    hits = ok(api.get("/v1/search", q="TURKSOY"))["items"]
    assert not [h for h in hits if h["id"] in ("turksoy", "az-turksoy", "kz-turksoy")]
    hits = ok(api.get("/v1/search", q="throughput"))["items"]
    assert not [h for h in hits if h["id"] == "titr-throughput-2022"]
    dossier = ok(api.get("/v1/relations/KZ/AZ"))
    assert dossier["routes"] == []
    assert "turksoy" not in [o["id"] for o in dossier["shared_organizations"]]


# --- readers see writes at once --------------------------------------------------------


def test_the_dossier_and_search_follow_writes(api: Api) -> None:
    treaty = {**NEW["treaties"], "title": "Quokkaland Accord on Caspian ferries"}
    dossier = api.get("/v1/relations/AZ/KZ")
    assert api.post("/v1/treaties", treaty).status_code == 201
    changed = api.get("/v1/relations/AZ/KZ")
    assert changed.headers["etag"] != dossier.headers["etag"]
    assert "test-treaty" in [t["id"] for t in changed.json()["treaties"]]
    hits = ok(api.get("/v1/search", q="Quokkaland"))["items"]
    assert [(h["type"], h["id"]) for h in hits] == [("treaty", "test-treaty")]

    assert api.patch("/v1/treaties/test-treaty", {"title": "Wombat Accord"}).status_code == 200
    assert ok(api.get("/v1/search", q="Quokkaland"))["items"] == []
    assert [h["id"] for h in ok(api.get("/v1/search", q="Wombat"))["items"]] == ["test-treaty"]

    assert api.delete("/v1/treaties/test-treaty").status_code == 204
    assert ok(api.get("/v1/search", q="Wombat"))["items"] == []
    after = api.get("/v1/relations/AZ/KZ")
    assert after.json() == dossier.json()
    assert after.headers["etag"] == dossier.headers["etag"]  # the same data, the same tag


def test_disagreeing_sources_are_two_claims_side_by_side(api: Api) -> None:
    """A second turnover for AZ-KZ 2021, from another source, is stored beside the first."""
    first = api.get(f"/v1/trade/{TRADE}")
    other = {
        "id": "kz-stat-2022",
        "title": "Foreign trade of Kazakhstan with Azerbaijan, 2021",
        "publisher": "Bureau of National Statistics",
    }
    assert api.post("/v1/sources", other).status_code == 201
    second = {
        "id": "az-kz-2021-turnover-kz-stat",
        "reporter": "KZ",
        "partner": "AZ",
        "year": 2021,
        "flow": "turnover",
        "value": 456100000,
        "currency": "USD",
        "sources": [{"source": "kz-stat-2022", "quote": "Turnover 2021: 456.1 million USD."}],
    }
    assert api.post("/v1/trade", second).status_code == 201
    assert api.get(f"/v1/trade/{TRADE}").headers["etag"] == first.headers["etag"]

    dossier = ok(api.get("/v1/relations/KZ/AZ"))
    claims = {
        t["id"]: (t["value"], [c["source"] for c in t["sources"]])
        for t in dossier["trade"]
        if (t["year"], t["flow"]) == (2021, "turnover")
    }
    assert claims == {
        TRADE: (332200000, [SOURCE]),
        "az-kz-2021-turnover-kz-stat": (456100000, ["kz-stat-2022"]),
    }
    assert {SOURCE, "kz-stat-2022"} <= {s["id"] for s in dossier["sources"]}
    listed = ok(api.get("/v1/trade", country="AZ", partner="KZ", year_from=2021, year_to=2021))
    assert {t["id"] for t in listed["items"]} == set(claims)


# --- retries ---------------------------------------------------------------------------


def test_an_idempotency_key_replays_the_first_answer(api: Api) -> None:
    start = api.revision()
    first = api.post("/v1/treaties", NEW["treaties"], **{"Idempotency-Key": "k-1"})
    assert first.status_code == 201
    again = api.post("/v1/treaties", NEW["treaties"], **{"Idempotency-Key": "k-1"})
    assert again.status_code == 201
    assert again.content == first.content
    for header in ("location", "etag", "content-type"):
        assert again.headers[header] == first.headers[header]
    assert again.headers["idempotent-replayed"] == "true"
    assert api.changes(start) == [(start + 1, "create", "treaty", "test-treaty")]

    other = {**NEW["treaties"], "title": "Another body"}
    body = problem(api.post("/v1/treaties", other, **{"Idempotency-Key": "k-1"}), 422)
    assert body["errors"] == [
        {"param": "Idempotency-Key", "message": "used before with another request"}
    ]
    elsewhere = api.post("/v1/sources", NEW["sources"], **{"Idempotency-Key": "k-1"})
    assert problem(elsewhere, 422)["errors"][0]["param"] == "Idempotency-Key"  # another path
    body = problem(api.post("/v1/treaties", other, **{"Idempotency-Key": "k" * 201}), 422)
    assert body["errors"][0]["param"] == "Idempotency-Key"
    # Without a key, or with a new one, the same body is a second create: 409.
    problem(api.post("/v1/treaties", NEW["treaties"]), 409)
    problem(api.post("/v1/treaties", NEW["treaties"], **{"Idempotency-Key": "k-2"}), 409)
    # Keys belong to an API key: another key's k-1 is a request of its own.
    other_key = make_key(api.url)
    response = api.client.post(
        "/v1/sources", json=NEW["sources"], headers={**other_key, "Idempotency-Key": "k-1"}
    )
    assert response.status_code == 201
    assert api.revision() == start + 2


def test_concurrent_duplicates_make_one_entity(api: Api) -> None:
    """Two apps on one database (as two processes would be), six requests each at once."""
    start = api.revision()
    answers: list[Any] = []

    def send(client: TestClient, key: str | None) -> None:
        headers = {**api.headers, **({"Idempotency-Key": key} if key else {})}
        body = {**NEW["treaties"], "id": f"treaty-{key or 'plain'}"}
        answers.append(client.post("/v1/treaties", json=body, headers=headers))

    with make_client(api.url) as second:
        warm(api.client, api.headers)
        warm(second, api.headers)
        threads = [
            threading.Thread(target=send, args=(client, key))
            for client in (api.client, second)
            for key in ["same"] * 3 + [None] * 3
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    keyed = [a for a in answers if a.headers.get("location") == "/v1/treaties/treaty-same"]
    assert len(keyed) == 6 and {a.status_code for a in keyed} == {201}
    assert len({a.content for a in keyed}) == 1
    plain = sorted(a.status_code for a in answers if a not in keyed)
    assert plain == [201, 409, 409, 409, 409, 409]
    assert sorted(c[3] for c in api.changes(start)) == ["treaty-plain", "treaty-same"]
    assert api.revision() == start + 2


def test_concurrent_writes_make_one_revision_each(fresh_url: str) -> None:
    """Even the first writes of an empty database, from two apps at once: each write is
    one revision, none lost, none shared, in the order they committed."""
    headers = make_key(fresh_url)
    answers: list[Any] = []

    def send(client: TestClient, n: int) -> None:
        body = {"id": f"source-{n}", "title": f"Source {n}"}
        answers.append(client.post("/v1/sources", json=body, headers=headers))

    with make_client(fresh_url) as first, make_client(fresh_url) as second:
        warm(first, headers)
        warm(second, headers)
        threads = [
            threading.Thread(target=send, args=(client, n))
            for n, client in enumerate([first, second] * 4)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(a.status_code for a in answers) == [201] * 8
        feed = ok(first.get("/v1/changes"))
    assert feed["revision"] == 8
    assert [c["revision"] for c in feed["items"]] == list(range(1, 9))
    assert sorted(c["id"] for c in feed["items"]) == sorted(f"source-{n}" for n in range(8))


# --- the collections that gained read routes -------------------------------------------


def test_memberships_figures_and_relations_can_be_listed(client: TestClient) -> None:
    memberships = ok(client.get("/v1/memberships", params={"country": "KAZ"}))
    assert memberships["total"] == 5
    assert {m["organization"]["id"] for m in memberships["items"]} == {
        "cica",
        "oic",
        "osce",
        "turksoy",
        "un",
    }
    assert ok(client.get("/v1/memberships", params={"organization": "un"}))["total"] == 2
    figures = ok(client.get("/v1/figures", params={"country": "AZ", "partner": "KZ"}))
    assert {f["id"] for f in figures["items"]} == {
        "az-kz-bilateral-agreements-2022",
        "az-kz-diplomatic-relations-anniversary-2022",
    }
    route_figures = ok(client.get("/v1/figures", params={"route": "titr"}))["items"]
    assert route_figures[0]["route"]["id"] == "titr" and route_figures[0]["countries"] is None
    relations = ok(client.get("/v1/relations", params={"country": "398"}))["items"]
    assert [r["id"] for r in relations] == ["az-kz"]
    assert relations[0]["established"] == "1992"
    assert ok(client.get("/v1/relations/az-kz")) == relations[0]
    for path in ("/v1/memberships", "/v1/figures", "/v1/relations"):
        response = client.get(path, params={"format": "csv"})
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/csv")
        problem(client.get(path, params={"sort": "bogus"}), 422)
    for path in ("/v1/memberships/nope", "/v1/figures/nope", "/v1/relations/nope"):
        assert "'nope'" in problem(client.get(path), 404)["detail"]
