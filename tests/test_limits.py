"""Rate limits: headers on every answer, 429 problems, writes stricter, Redis shared."""

from __future__ import annotations

import pytest
from conftest import make_client, problem
from fastapi.testclient import TestClient
from hypothesis import example, given
from hypothesis import strategies as st

from app import api_keys, limits
from app.db import create_db_engine


def limited(url: str, **overrides: object) -> TestClient:
    return make_client(url, rate_limit_enabled=True, **overrides)


def test_every_answer_says_the_budget(shared_seeded_url: str) -> None:
    with limited(shared_seeded_url, rate_limit_reads=5) as client:
        first = client.get("/v1/countries/KZ")
        assert first.headers["ratelimit-limit"] == "5"
        assert first.headers["ratelimit-remaining"] == "4"
        assert 1 <= int(first.headers["ratelimit-reset"]) <= 60
        assert client.get("/v1/nothing").headers["ratelimit-remaining"] == "3"  # 404s count


def test_over_the_limit_is_a_429_problem(shared_seeded_url: str) -> None:
    with limited(shared_seeded_url, rate_limit_reads=3) as client:
        for _ in range(3):
            assert client.get("/v1/countries/KZ").status_code == 200
        response = client.get("/v1/countries/KZ")
        body = problem(response, 429)
        assert body["type"] == "/problems/rate-limited"
        assert int(response.headers["retry-after"]) >= 1
        assert response.headers["ratelimit-remaining"] == "0"
        assert client.get("/healthz").status_code == 200  # operations are never limited


def _key(url: str, scope: api_keys.Scope = "write") -> dict[str, str]:
    engine = create_db_engine(url)
    try:
        secret, _ = api_keys.create_key(engine, "limits", scope)
    finally:
        engine.dispose()
    return {"Authorization": f"Bearer {secret}"}


def test_clients_are_counted_apart(seeded_url: str) -> None:
    """A valid key is a client of its own, apart from its address, for reads and writes."""
    key = _key(seeded_url)
    with limited(seeded_url, rate_limit_reads=1, rate_limit_writes=1) as client:
        assert client.get("/v1/countries/KZ").status_code == 200
        assert client.get("/v1/countries/KZ").status_code == 429
        assert client.get("/v1/countries/KZ", headers=key).status_code == 200
        assert client.get("/v1/countries/KZ", headers=key).status_code == 429
        assert client.delete("/v1/treaties/nothing").status_code != 429
        assert client.delete("/v1/treaties/nothing", headers=key).status_code == 404


def test_a_made_up_key_buys_no_budget_of_its_own(seeded_url: str) -> None:
    """Reads look at no key: a new invented key on every request must still be counted
    under the address, as must a revoked key and anything else that is not a valid key."""
    revoked = _key(seeded_url)
    engine = create_db_engine(seeded_url)
    try:
        assert api_keys.revoke_key(engine, api_keys.list_keys(engine)[0].id)
    finally:
        engine.dispose()
    with limited(seeded_url, rate_limit_reads=3, rate_limit_writes=2) as client:
        made_up = [{"Authorization": f"Bearer dyad_{n:043d}"} for n in range(3)]
        for headers in made_up:
            assert client.get("/v1/countries/KZ", headers=headers).status_code == 200
        for headers in (revoked, {"Authorization": "Basic x"}, made_up[0], {}):
            assert client.get("/v1/countries/KZ", headers=headers).status_code == 429
        for n in range(2):  # a write with a made-up key is refused, and counted too
            assert client.delete("/v1/treaties/x", headers=made_up[n]).status_code == 401
        assert client.delete("/v1/treaties/x", headers=made_up[2]).status_code == 429


def test_writes_have_their_own_stricter_budget(shared_seeded_url: str) -> None:
    with limited(shared_seeded_url, rate_limit_reads=100, rate_limit_writes=2) as client:
        for _ in range(2):
            assert client.post("/v1/countries").status_code != 429
        assert client.post("/v1/countries").status_code == 429
        assert client.get("/v1/countries/KZ").status_code == 200


def test_cors_headers_on_429(shared_seeded_url: str) -> None:
    with limited(shared_seeded_url, rate_limit_reads=1) as client:
        client.get("/v1/countries/KZ")
        response = client.get("/v1/countries/KZ", headers={"Origin": "https://example.org"})
        assert response.status_code == 429
        assert response.headers["access-control-allow-origin"] == "*"


def test_off_only_when_configured(shared_seeded_url: str) -> None:
    with make_client(shared_seeded_url, rate_limit_reads=1) as client:  # switched off
        assert client.get("/v1/countries/KZ").status_code == 200
        assert client.get("/v1/countries/KZ").status_code == 200
        assert "ratelimit-limit" not in client.get("/v1/countries/KZ").headers


def test_a_new_minute_is_not_a_new_budget(
    shared_seeded_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = [60 * 1000 + 50.0]  # ten seconds before a minute ends
    monkeypatch.setattr(limits, "clock", lambda: now[0])
    with limited(shared_seeded_url, rate_limit_reads=4) as client:
        for _ in range(4):
            assert client.get("/v1/countries/KZ").status_code == 200
        now[0] += 15  # five seconds into the next minute: 4 * 55/60 of the old ones still count
        response = client.get("/v1/countries/KZ")
        problem(response, 429)
        # One more fits once 4 * (1 - t/60) + 1 (the refused one) ≤ 3: at t = 30 s, 25 s away.
        assert response.headers["retry-after"] == "25"
        now[0] += 24
        assert client.get("/v1/countries/KZ").status_code == 429  # and it counts too
        now[0] += 30
        assert client.get("/v1/countries/KZ").status_code == 200


def _estimate_after(usage: limits.Usage, seconds: float) -> float:
    """What the estimate will be ``seconds`` later if no request comes."""
    elapsed = usage.elapsed + seconds
    if elapsed < limits.WINDOW_SECONDS:
        return limits.Usage(usage.previous, usage.current, elapsed).estimate
    if elapsed < 2 * limits.WINDOW_SECONDS:
        return limits.Usage(usage.current, 0, elapsed - limits.WINDOW_SECONDS).estimate
    return 0.0


@example(previous=0, current=1, elapsed=56.99999999999999, limit=1)  # float noise
@given(
    previous=st.integers(0, 500),
    current=st.integers(0, 500),
    elapsed=st.floats(0, limits.WINDOW_SECONDS, exclude_max=True),
    limit=st.integers(1, 400),
)
def test_retry_after_is_the_first_whole_second_one_more_request_fits(
    previous: int, current: int, elapsed: float, limit: int
) -> None:
    usage = limits.Usage(previous, current, elapsed)
    wait = usage.wait(limit)
    assert 1 <= wait <= 2 * limits.WINDOW_SECONDS
    assert _estimate_after(usage, wait) <= limit - 1 + 1e-9
    if wait > 1:
        assert _estimate_after(usage, wait - 1) > limit - 1
    assert 0 <= usage.remaining(limit) <= limit
    assert 1 <= usage.reset <= limits.WINDOW_SECONDS


def test_two_app_instances_count_together_through_redis(
    shared_seeded_url: str, redis_url: str
) -> None:
    with (
        limited(shared_seeded_url, redis_url=redis_url, rate_limit_reads=4) as one,
        limited(shared_seeded_url, redis_url=redis_url, rate_limit_reads=4) as two,
    ):
        assert one.get("/v1/countries/KZ").status_code == 200
        assert two.get("/v1/countries/KZ").status_code == 200
        assert one.get("/v1/countries/KZ").headers["ratelimit-remaining"] == "1"
        assert two.get("/v1/countries/KZ").status_code == 200
        assert one.get("/v1/countries/KZ").status_code == 429
        assert two.get("/v1/countries/KZ").status_code == 429
