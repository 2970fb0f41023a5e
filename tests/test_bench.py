"""The benchmark reads wrk's report right (its figures go into the README)."""

from __future__ import annotations

import pytest

from bench.run import (
    CEILING_AFTER_CACHED,
    CEILING_AGAIN,
    Result,
    ceiling_drift,
    ceiling_of,
    medians,
    parse_wrk,
)

REPORT = """Running 5s test @ http://127.0.0.1:8123/v1/relations/KZ/AZ
  1 threads and 32 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency    63.33ms   20.12ms   1.07s    70.50%
    Req/Sec   491.00     50.00   600.00     68.99%
  Latency Distribution
     50%   63.33ms
     75%   70.00ms
     90%   80.00ms
     99%    1.07s
  2455 requests in 5.00s, 180.00MB read
  Socket errors: connect 0, read 0, write 0, timeout 3
  Non-2xx or 3xx responses: 2
Requests/sec:    491.00
Transfer/sec:     36.00MB
"""


def test_the_percentiles_come_from_their_own_lines() -> None:
    assert parse_wrk(REPORT) == (491.0, 63.33, 1070.0, 5)


def test_a_report_without_failures() -> None:
    clean = REPORT.replace("  Socket errors: connect 0, read 0, write 0, timeout 3\n", "")
    assert parse_wrk(clean.replace("  Non-2xx or 3xx responses: 2\n", ""))[3] == 0


def test_the_ceilings_drift_is_measured_from_both_ends_of_the_run() -> None:
    def ceiling(name: str, rps: float) -> Result:
        return Result(name, "starlette", "/", rps, 1.0, 2.0, 0)

    start, end = ceiling("constant JSON", 25_000), ceiling(CEILING_AGAIN, 20_000)
    assert ceiling_drift([start, end]) == pytest.approx(-0.2)
    assert ceiling_drift([start]) is None


def test_ratios_are_to_the_higher_ceiling_around_the_cached_reads() -> None:
    def ceiling(name: str, rps: float) -> Result:
        return Result(name, "starlette", "/", rps, 1.0, 2.0, 0)

    before, after = ceiling("constant JSON", 20_000), ceiling(CEILING_AFTER_CACHED, 25_000)
    at_the_end = ceiling(CEILING_AGAIN, 30_000)  # not around the cached reads
    assert ceiling_of([before, after, at_the_end]) == 25_000
    assert ceiling_of([before]) == 20_000


def test_repeated_loads_give_the_median_of_each_figure_in_the_order_measured() -> None:
    def load(server: str, name: str, rps: float, p50: float, p99: float, errors: int) -> Result:
        return Result(name, server, "/", rps, p50, p99, errors)

    loads = [
        load("dyad/no-cache", "dossier", 400, 80.0, 120.0, 0),
        load("datasette", "dossier", 150, 200.0, 230.0, 0),
        load("dyad/no-cache", "dossier", 90, 300.0, 980.0, 2),  # a stalled host
        load("datasette", "dossier", 160, 190.0, 220.0, 0),
        load("dyad/no-cache", "dossier", 420, 76.0, 110.0, 0),
        load("datasette", "dossier", 155, 195.0, 240.0, 1),
    ]
    dyad, datasette = medians(loads)
    assert (dyad.server, dyad.requests_per_second, dyad.p50_ms, dyad.p99_ms) == (
        "dyad/no-cache",
        400,
        80.0,
        120.0,
    )
    assert dyad.errors == 2
    assert (datasette.requests_per_second, datasette.p50_ms, datasette.p99_ms) == (155, 195, 230)
    assert medians(loads[:2]) == loads[:2]  # one load each: as measured
