"""Keyset pages: ``next`` links carry a cursor, so a deep page reads no row it skips.

A generated dataset of a few hundred trade figures (ties on year, value and flow included)
is walked page by page through ``next`` links and compared with the same list read by
``offset``; tampered, stale and foreign cursors are 422 problems, never a 5xx.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from conftest import SEED, load_into, make_client, ok, problem
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from sqlalchemy import String, bindparam, delete, event, func, select

from app import pagination
from app.db import create_db_engine
from app.pagination import _page_statements, contains_text, text_pattern
from app.records import MAIN_TABLE

TRADE = MAIN_TABLE["trade"]

ROWS = 240
CODES = ["AZ", "KZ", "UZ", "TR", "GE"]


def generated() -> dict[str, Any]:
    """Trade figures over a few pairs and years, with many ties on year, value and flow."""
    data: dict[str, Any] = json.loads(SEED.read_text())
    source = data["sources"][0]["id"]
    quote = data["trade"][0]["sources"][0]["quote"]
    data["trade"] += [
        {
            "id": f"gen-{n:04d}",
            "reporter": CODES[n % 5],
            "partner": CODES[(n // 5) % 4 + 1] if CODES[(n // 5) % 4 + 1] != CODES[n % 5] else "RU",
            "year": 2000 + n % 7,
            "flow": ("export", "import")[n % 2],
            "value": (n * 37) % 11 * 1000,
            "currency": "USD",
            "approximate": False,
            "sources": [{"source": source, "quote": quote}],
        }
        for n in range(ROWS)
    ]
    return data


@pytest.fixture(scope="module")
def pages_client(loaded_url: Callable[[str, Any], str]) -> Iterator[TestClient]:
    """A client over the generated lists, shared by this module's tests: they only read."""
    with make_client(loaded_url("pages", generated), cache_enabled=False) as client:
        yield client


def walk(client: TestClient, url: str) -> list[str]:
    """Every id of a list, following ``next`` links from ``url``."""
    ids: list[str] = []
    next_url: str | None = url
    while next_url:
        body = ok(client.get(next_url))
        ids += [item["id"] for item in body["items"]]
        next_url = body["next"]
    return ids


def by_offset(client: TestClient, path: str, limit: int) -> list[str]:
    ids: list[str] = []
    offset = 0
    sep = "&" if "?" in path else "?"
    while True:
        body = ok(client.get(f"{path}{sep}limit={limit}&offset={offset}"))
        ids += [item["id"] for item in body["items"]]
        offset += limit
        if offset >= body["total"]:
            return ids


@pytest.mark.parametrize(
    "sort", [None, "-year", "year", "-value,flow", "flow,-year", "value", "-id", "value,value"]
)
def test_following_next_links_gives_every_item_once_in_order(
    pages_client: TestClient, sort: str | None
) -> None:
    path = "/v1/trade" + (f"?sort={sort}" if sort else "")
    sep = "&" if sort else "?"
    walked = walk(pages_client, f"{path}{sep}limit=17")
    assert walked == by_offset(pages_client, path, 17)
    assert len(walked) == len(set(walked)) == ROWS + 1


def test_next_links_carry_a_cursor_and_prev_links_do_not(pages_client: TestClient) -> None:
    first = pages_client.get("/v1/trade?limit=10")
    assert "cursor=" in ok(first)["next"] and "offset=10" in ok(first)["next"]
    second = pages_client.get(ok(first)["next"])
    assert ok(second)["offset"] == 10
    prev = [link for link in second.headers["link"].split(", ") if 'rel="prev"' in link]
    assert prev and "cursor=" not in prev[0] and "offset=0" in prev[0]


def test_a_filtered_list_pages_by_cursor_too(pages_client: TestClient) -> None:
    path = "/v1/trade?country=KZ&flow=export"
    assert walk(pages_client, path + "&limit=7") == by_offset(pages_client, path, 7)


def skipped_rows(statement: str, parameters: Any) -> int:
    """The OFFSET a page statement asks for (SQLite always renders one, PostgreSQL only
    when set)."""
    if "OFFSET" not in statement:
        return 0
    named = re.search(r"OFFSET %\((\w+)\)s", statement)
    return int(parameters[named.group(1)] if named else parameters[-1])


def test_a_cursor_page_skips_no_rows(pages_client: TestClient) -> None:
    """The regression guard for deep pages: with a cursor the page query skips nothing."""
    engine = pages_client.app.state.engine  # type: ignore[attr-defined]
    pages: list[tuple[str, Any]] = []

    def record(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if "trade_figure.id" in statement and "LIMIT" in statement:
            pages.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", record)
    try:
        next_url = ok(pages_client.get("/v1/trade?limit=20&offset=200"))["next"]
        ok(pages_client.get(next_url))
    finally:
        event.remove(engine, "before_cursor_execute", record)
    assert [skipped_rows(*page) for page in pages] == [200, 0]
    if engine.dialect.name == "sqlite":  # and it starts from an index position, not a scan
        with engine.connect() as connection:
            plan = connection.exec_driver_sql("EXPLAIN QUERY PLAN " + pages[1][0], pages[1][1])
            steps = [row[3] for row in plan]
        assert any(step.startswith("SEARCH trade_figure USING") for step in steps), steps


def cursor(data: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "query",
    [
        "limit=10&offset=10&cursor=not-a-cursor",
        "limit=10&offset=10&cursor=" + cursor([1, 2]),
        "limit=10&offset=10&cursor=" + cursor({"o": 10, "s": "", "k": ["x", "y"]}),
        "limit=10&offset=10&cursor=" + cursor({"o": 10, "s": "", "k": [2003]}),
        "limit=10&offset=10&cursor=" + cursor({"o": 10, "s": "", "k": [10**30, "x"]}),
        "limit=10&offset=10&cursor=" + cursor({"o": 11, "s": "", "k": [2003, "x"]}),
        "limit=10&offset=10&sort=value&cursor=" + cursor({"o": 10, "s": "", "k": [2003, "x"]}),
    ],
)
def test_a_bad_cursor_is_a_422_naming_it(pages_client: TestClient, query: str) -> None:
    body = problem(pages_client.get(f"/v1/trade?{query}"), 422)
    assert body["errors"][0]["param"] == "cursor"


def test_a_cursor_from_another_page_is_refused(pages_client: TestClient) -> None:
    next_url = ok(pages_client.get("/v1/trade?limit=10"))["next"]
    moved = next_url.replace("offset=10", "offset=30")
    assert problem(pages_client.get(moved), 422)["errors"][0]["param"] == "cursor"


def test_an_order_without_keyset_gives_offset_links(pages_client: TestClient) -> None:
    """Treaties sort by partial dates (two nullable columns): pages go by offset."""
    body = ok(pages_client.get("/v1/treaties?limit=1"))
    assert body["next"] is None or "cursor=" not in body["next"]
    problem(pages_client.get("/v1/treaties?cursor=" + cursor({"o": 0, "s": "", "k": []})), 422)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(token=st.text(max_size=80))
def test_any_cursor_is_a_page_or_a_422(pages_client: TestClient, token: str) -> None:
    response = pages_client.get("/v1/trade", params={"cursor": token, "offset": 10})
    assert response.status_code in (200, 422), response.text


def test_a_list_compiles_its_statements_once_per_set_of_filters(pages_client: TestClient) -> None:
    """The regression guard for building statements per request: other values of the same
    filters reuse the compiled statements (and still find their own rows)."""
    _page_statements.cache_clear()
    pairs = [("KZ", "AZ"), ("UZ", "TR"), ("GE", "KZ")]
    for country, partner in pairs:
        body = ok(pages_client.get(f"/v1/trade?country={country}&partner={partner}"))
        for item in body["items"]:
            assert {item["reporter"]["iso2"], item["partner"]["iso2"]} == {country, partner}
    assert _page_statements.cache_info().misses == 1
    ok(pages_client.get("/v1/trade?country=KZ&partner=AZ&flow=export"))
    assert _page_statements.cache_info().misses == 2


@settings(max_examples=300, deadline=None)
@given(needle=st.text(max_size=6), haystack=st.text(max_size=12))
def test_a_text_filter_matches_exactly_the_texts_holding_the_words(
    needle: str, haystack: str
) -> None:
    """``%``, ``_`` and the escape character in ``q`` are matched as themselves."""
    assume("\x00" not in needle + haystack)
    statement = select(contains_text("q", bindparam("h", type_=String)))
    with TEXT_ENGINE.connect() as connection:
        found = connection.execute(statement, {"q": text_pattern(needle), "h": haystack}).scalar()
    assert bool(found) == (needle.strip().lower() in haystack.lower())


TEXT_ENGINE = create_db_engine("sqlite://")


def test_unfiltered_totals_stay_exact_through_loads_and_deletes(seeded_url: str) -> None:
    """On PostgreSQL the total of an unfiltered list is the count its triggers keep (a count
    of the rows read them all); it must agree with the rows through every kind of write."""
    with make_client(seeded_url, cache_enabled=False) as client:
        engine = client.app.state.engine  # type: ignore[attr-defined]
        counts: list[str] = []

        def count(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
            if "AS total" in statement or "row_count" in statement:  # the page's count
                counts.append(statement)

        def agree() -> None:
            with engine.connect() as connection:
                for collection, main in MAIN_TABLE.items():
                    rows = connection.execute(select(func.count()).select_from(main)).scalar_one()
                    total = ok(client.get(f"/v1/{collection}?limit=1"))["total"]
                    assert total == rows, collection

        agree()
        load_into(seeded_url, generated())  # bulk writes: COPY on PostgreSQL
        event.listen(engine, "before_cursor_execute", count)
        agree()
        event.remove(engine, "before_cursor_execute", count)
        with engine.begin() as connection:
            connection.execute(delete(TRADE).where(TRADE.c.year < 2003))
        agree()
    if engine.dialect.name == "postgresql":
        assert counts and all("FROM row_count" in statement for statement in counts), counts


def test_a_load_fires_the_count_triggers_once_per_batch_not_per_row(seeded_url: str) -> None:
    """Each INSERT statement into a counted table fires its ``row_count`` trigger once: a
    load of many rows must write them in a few multi-row statements (a statement per row
    made loads into PostgreSQL ten times slower)."""
    engine = create_db_engine(seeded_url)
    if engine.dialect.name != "postgresql":
        engine.dispose()
        pytest.skip("the row-count triggers exist on PostgreSQL only")
    trade = TRADE.name
    with engine.begin() as connection:
        connection.exec_driver_sql("CREATE TABLE statement_log (name text)")
        connection.exec_driver_sql(
            "CREATE FUNCTION log_statement() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
            "INSERT INTO statement_log VALUES (TG_TABLE_NAME); RETURN NULL; END $$"
        )
        connection.exec_driver_sql(
            f"CREATE TRIGGER log_statement AFTER INSERT ON {trade} "
            "FOR EACH STATEMENT EXECUTE FUNCTION log_statement()"
        )
    load_into(seeded_url, generated())
    with engine.connect() as connection:
        statements = connection.exec_driver_sql("SELECT count(*) FROM statement_log").scalar()
        rows = connection.execute(select(func.count()).select_from(TRADE)).scalar_one()
    engine.dispose()
    assert rows > ROWS
    assert statements is not None and 1 <= statements <= 3, statements


def test_sqlite_counts_a_table_again_only_after_a_write(seeded_url: str) -> None:
    """An unfiltered total is counted once per pooled connection while no row changes; a
    commit through another connection, or a change through the same one, is counted again."""
    if not seeded_url.startswith("sqlite"):
        pytest.skip("PostgreSQL reads its totals from row_count")
    load_into(seeded_url, generated())
    with make_client(seeded_url, cache_enabled=False) as client:
        engine = client.app.state.engine  # type: ignore[attr-defined]
        counts: list[str] = []

        def count(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
            if "AS total" in statement:
                counts.append(statement)

        def totals() -> set[int]:
            return {int(ok(client.get("/v1/trade?limit=1"))["total"]) for _ in range(8)}

        event.listen(engine, "before_cursor_execute", count)
        try:
            (first,) = totals()  # each pooled connection counts once
            counted = len(counts)
            assert totals() == {first} and len(counts) == counted  # then keeps it
            other = create_db_engine(seeded_url)
            with other.begin() as connection:  # another connection commits
                connection.execute(
                    delete(TRADE).where(TRADE.c.id == "az-kz-2021-turnover-azernews")
                )
            other.dispose()
            assert totals() == {first - 1} and len(counts) > counted
            counted = len(counts)
            with engine.begin() as connection:  # one of the app's own connections writes
                gone = connection.execute(delete(TRADE).where(TRADE.c.id != "")).rowcount
            assert gone == first - 1 > 0
            assert totals() == {0} and len(counts) > counted
        finally:
            event.remove(engine, "before_cursor_execute", count)


def test_a_page_asks_for_its_count_and_its_ids_together(
    seeded_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A filtered page's count and its ids go to the database as one batch: one round trip
    on PostgreSQL (pipeline mode), where they were two."""
    batches: list[list[str]] = []
    fetch_all = pagination.fetch_all

    def recorded(connection: Any, queries: Any) -> Any:
        batches.append([str(statement) for statement, _ in queries])
        return fetch_all(connection, queries)

    monkeypatch.setattr(pagination, "fetch_all", recorded)
    with make_client(seeded_url) as client:
        page = ok(client.get("/v1/trade?country=KZ&limit=1"))
    assert page["total"] >= 1 and len(page["items"]) == 1
    assert len(batches) == 1
    count, ids = batches[0]
    assert "count" in count.lower() and "LIMIT" in ids
