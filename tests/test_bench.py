"""The benchmark reads wrk's report right (its figures go into the README)."""

from __future__ import annotations

import pytest

from bench.run import (
    CEILING_AFTER_CACHED,
    CEILING_AGAIN,
    Result,
    ceiling_drift,
    ceiling_of,
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
