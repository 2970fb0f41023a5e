"""The read benchmark: Dyad against a bare Starlette ceiling and Datasette, in one run.

    make bench                       # 100k trade rows (generated, clearly synthetic)
    .venv/bin/python bench/run.py --rows 100000 --scale-rows 1000000 \
        --postgres postgresql+psycopg://postgres@127.0.0.1:5432/test

Each server runs as users run it (uvicorn, one worker, `dyad serve`'s uvloop + httptools, no
access log),
pinned to core 0 with taskset where there is one; wrk loads it from core 1 over 127.0.0.1
only. Dyad is measured with its response cache on and off; ``--scale-rows`` measures the
cold dossier and trade page again over a larger dataset, ``--postgres`` the cold reads over
PostgreSQL (a database ``dyad_bench_<rows>`` made on that server). The figures that matter
are the ratios to the Starlette ceiling measured in the same run: absolute req/s drift
between machines and rounds. ``--repeat 3`` loads each endpoint three times, interleaved
with the servers it is compared with, and keeps the median of each figure: on a host
that stalls now and then, one load's p99 or req/s can be off by a factor. Results, with
issue 6's targets checked, are written to bench/results/latest.json and latest.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from statistics import median

from app.serving import LOOP

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / "bench" / ".data"
RESULTS = ROOT / "bench" / "results"
BIN = Path(sys.executable).parent
HOST = "127.0.0.1"
PAIR = ("KZ", "AZ")


@dataclass
class Result:
    name: str
    server: str
    url: str
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    errors: int
    ratio_to_ceiling: float = 0.0
    ratio_to_datasette: float | None = None


def median_result(loads: list[Result]) -> Result:
    """One result of several loads of the same endpoint: the median of each figure (a
    moment's stall spoils one load, not the result), and all their failures."""
    first = loads[0]
    return Result(
        first.name,
        first.server,
        first.url,
        median(load.requests_per_second for load in loads),
        median(load.p50_ms for load in loads),
        median(load.p99_ms for load in loads),
        sum(load.errors for load in loads),
    )


def medians(loads: list[Result]) -> list[Result]:
    """The loads of each server and endpoint as one result, in the order first measured."""
    grouped: dict[tuple[str, str], list[Result]] = {}
    for load in loads:
        grouped.setdefault((load.server, load.name), []).append(load)
    return [median_result(group) for group in grouped.values()]


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def pinned(command: list[str], core: int) -> list[str]:
    if shutil.which("taskset") and (os.cpu_count() or 1) > 1:
        return ["taskset", "-c", str(core), *command]
    return command


def ensure_wrk() -> str:
    found = shutil.which("wrk")
    if found:
        return found
    print("installing wrk from Debian's packages…", flush=True)
    subprocess.run(
        ["apt-get", "install", "-y", "-qq", "wrk"], check=True, stdout=subprocess.DEVNULL
    )
    found = shutil.which("wrk")
    if not found:
        sys.exit("wrk is needed: apt-get install wrk")
    return found


@contextmanager
def server(
    command: list[str], port: int, env: dict[str, str] | None = None, ready: str = "/"
) -> Iterator[str]:
    process = subprocess.Popen(
        pinned(command, 0),
        env={**os.environ, **(env or {})},
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    base = f"http://{HOST}:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(base + ready, timeout=1).read()
                break
            except Exception:
                if process.poll() is not None or time.monotonic() > deadline:
                    err = process.stderr.read().decode() if process.stderr else ""
                    raise RuntimeError(f"{command[0]} did not start: {err[-2000:]}") from None
                time.sleep(0.2)
        yield base
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)


def wait_idle(quiet: float = 0.5, busy: float = 0.1, limit: float = 120) -> None:
    """Wait until the machine is (almost) idle for ``quiet`` seconds: less than ``busy`` of
    its CPU time used. A load of slow answers goes on after wrk stops (threads still working
    on its requests, PostgreSQL still running their queries) and would weigh on the next
    load."""
    stat = Path("/proc/stat")
    if not stat.exists():
        return

    def times() -> tuple[int, int]:  # (busy, total) jiffies of all CPUs
        user, nice, system, idle, iowait, *rest = map(int, stat.read_text().split()[1:11])
        return user + nice + system + sum(rest), user + nice + system + idle + iowait + sum(rest)

    deadline = time.monotonic() + limit
    before = times()
    while time.monotonic() < deadline:
        time.sleep(quiet)
        after = times()
        total = after[1] - before[1]
        if total and (after[0] - before[0]) / total < busy:
            return
        before = after


def uvicorn(app: str, port: int, *, factory: bool = False) -> list[str]:
    return [
        str(BIN / "uvicorn"),
        app,
        *(["--factory"] if factory else []),
        "--host",
        HOST,
        "--port",
        str(port),
        "--workers",
        "1",
        "--loop",
        LOOP,  # as `dyad serve` runs
        "--http",
        "httptools",
        "--no-access-log",
        "--log-level",
        "warning",
    ]


_DURATION = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def _ms(text: str) -> float:
    """wrk's ``812.00us`` / ``1.20ms`` / ``2.00s`` / ``1.00m`` in ms (nan when it has none)."""
    match = re.match(r"([\d.]+)(us|ms|s|m)", text)
    return float(match.group(1)) * _DURATION[match.group(2)] if match else float("nan")


def load(
    wrk: str, url: str, seconds: int, connections: int, headers: dict[str, str] | None = None
) -> tuple[float, float, float, int]:
    # A timeout longer than the load: wrk leaves a request that timed out out of its
    # percentiles, so a load whose every request took over its default 2 s reported 0 ms.
    timeout = f"--timeout={2 * seconds}s"
    command = [wrk, "-t1", f"-c{connections}", f"-d{seconds}s", timeout, "--latency"]
    for name, value in (headers or {}).items():
        command += ["-H", f"{name}: {value}"]
    output = subprocess.run(
        pinned([*command, url], 1), capture_output=True, text=True, check=True
    ).stdout
    return parse_wrk(output)


def parse_wrk(output: str) -> tuple[float, float, float, int]:
    """req/s, p50 ms, p99 ms and failed requests from wrk's ``--latency`` report. The
    percentiles are read from their own lines: the thread stats above hold percentages
    too (``70.50%``), which a bare ``50%`` matched."""
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))  # type: ignore[union-attr]
    p50 = _ms(re.search(r"^\s*50%\s+(\S+)", output, re.M).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"^\s*99%\s+(\S+)", output, re.M).group(1))  # type: ignore[union-attr]
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    failed = (int(bad.group(1)) if bad else 0) + (sum(map(int, errors.groups())) if errors else 0)
    return rps, p50, p99, failed


def _dyad(url: str, *steps: list[str]) -> None:
    env = {**os.environ, "DYAD_DATABASE_URL": url}
    for step in steps:
        subprocess.run(
            [str(BIN / "dyad"), *step], cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL
        )


def _load(url: str, generated: Path) -> None:
    _dyad(url, ["db", "upgrade"], ["seed"], ["import", str(generated)])


def generated_dataset(rows: int) -> Path:
    WORK.mkdir(parents=True, exist_ok=True)
    generated = WORK / f"generated-{rows}.json"
    if not generated.exists():
        subprocess.run(
            [sys.executable, "bench/generate.py", "--rows", str(rows), "--out", str(generated)],
            cwd=ROOT,
            check=True,
        )
    return generated


def prepare(rows: int) -> Path:
    """A SQLite database with the seed plus a generated dataset, loaded the way users load."""
    database = WORK / f"bench-{rows}.db"
    ready = database.with_suffix(".ready")  # a load cut short leaves no marker
    if not ready.exists():
        generated = generated_dataset(rows)
        for stale in WORK.glob(f"{database.name}*"):
            stale.unlink()
        _load(f"sqlite:///{database}", generated)
        ready.touch()
    _dyad(f"sqlite:///{database}", ["db", "upgrade"])  # a database kept from an older run
    return database


def prepare_postgres(server_url: str, rows: int) -> str:
    """A PostgreSQL database ``dyad_bench_<rows>`` on ``server_url`` holding the same data."""
    import psycopg
    from sqlalchemy.engine import make_url

    url = make_url(server_url)
    name = f"dyad_bench_{rows}"
    bench_url = url.set(database=name)
    try:
        target = bench_url.set(drivername="postgresql").render_as_string(hide_password=False)
        with psycopg.connect(target) as connection:
            row = connection.execute("SELECT count(*) FROM trade_figure").fetchone()
            if row and row[0] >= rows:
                _dyad(bench_url.render_as_string(hide_password=False), ["db", "upgrade"])
                return bench_url.render_as_string(hide_password=False)
    except psycopg.Error:
        pass  # missing, or not loaded
    admin = url.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}"')
        connection.execute(f'CREATE DATABASE "{name}"')
    _load(bench_url.render_as_string(hide_password=False), generated_dataset(rows))
    return bench_url.render_as_string(hide_password=False)


def etag_of(url: str) -> str:
    with urllib.request.urlopen(url) as response:
        return str(response.headers["ETag"])


PATHS = {
    "country": "/v1/countries/KZ",
    "dossier": "/v1/relations/{a}/{b}",
    "timeline": "/v1/relations/{a}/{b}/timeline",
    "trade page (pair)": "/v1/trade?country={b}&partner={a}",
    "search": "/v1/search?q=Tokayev",
    "search (every row matches)": "/v1/search?q=trade",
    "trade first page": "/v1/trade",
    "trade deep page": "/v1/trade?offset={deep}",
    "trade deep page (next link)": "/v1/trade?offset={before_deep}",  # its next link is measured
}
FOLLOW_NEXT = {"trade deep page (next link)"}
HOT = ("country", "dossier", "timeline", "trade page (pair)", "search")
SCALED = ("dossier", "trade page (pair)", "trade first page")  # --rows against --scale-rows
DATASETTE = {
    "country": "/{db}/country/KZ.json",
    "trade page (pair)": "/{db}/trade_figure.json?reporter={b}&partner={a}&_size=50",
}


SIZED_CEILING = "constant JSON, the dossier's size"
CEILING_AFTER_CACHED = "constant JSON, after the cached reads"
CEILING_AGAIN = "constant JSON, again at the end"


def ceiling_of(results: list[Result]) -> float:
    """The ceiling the ratios are to: the higher of its figures measured just before and
    just after the cached reads (the host's speed drifts; the higher is the stricter)."""
    around = [find(results, "starlette", name) for name in ("constant JSON", CEILING_AFTER_CACHED)]
    return max(r.requests_per_second for r in around if r is not None)


def ceiling_drift(results: list[Result]) -> float | None:
    """How much the ceiling moved between the run's start and end (0.1: 10% faster at the
    end): the ratios of a run whose host changed speed are that much less certain."""
    first, last = (
        find(results, "starlette", "constant JSON"),
        find(results, "starlette", CEILING_AGAIN),
    )
    if first is None or last is None or not first.requests_per_second:
        return None
    return last.requests_per_second / first.requests_per_second - 1


def dossier_size(url: str) -> int:
    """The bytes of the benchmark pair's dossier, for a ceiling answering as many."""
    port = free_port()
    env = {"DYAD_DATABASE_URL": url, "DYAD_RATE_LIMIT_ENABLED": "false"}
    command = uvicorn("app.main:create_app", port, factory=True)
    with server(command, port, env, ready="/readyz") as base:
        path = PATHS["dossier"].format(a=PAIR[0], b=PAIR[1])
        with urllib.request.urlopen(base + path) as response:
            return len(response.read())


def run(args: argparse.Namespace) -> list[Result]:
    wrk = ensure_wrk()
    database = prepare(args.rows)
    results: list[Result] = []  # every load; several per endpoint with --repeat
    a, b = PAIR
    again = range(args.repeat)

    def measure(
        name: str, server_name: str, base: str, path: str, headers: dict[str, str] | None = None
    ) -> Result:
        url = base + path
        wait_idle()
        urllib.request.urlopen(url).read()  # warm: the first answer fills caches
        rps, p50, p99, errors = load(wrk, url, args.seconds, args.connections, headers)
        result = Result(name, server_name, path, rps, p50, p99, errors)
        print(
            f"{server_name:>16} {name:<20} {rps:>9.0f} req/s  p50 {p50:6.2f} ms  "
            f"p99 {p99:6.2f} ms  errors {errors}",
            flush=True,
        )
        results.append(result)
        return result

    @contextmanager
    def dyad(url: str, cache: bool) -> Iterator[str]:
        port = free_port()
        env = {
            "DYAD_DATABASE_URL": url,
            "DYAD_RATE_LIMIT_ENABLED": "false",
            "DYAD_CACHE_ENABLED": "true" if cache else "false",
        }
        command = uvicorn("app.main:create_app", port, factory=True)
        with server(command, port, env, ready="/readyz") as base:
            yield base

    def measure_path(name: str, label: str, base: str, rows: int) -> None:
        deep = min(100_000, rows - 50)
        path = PATHS[name].format(a=a, b=b, deep=deep, before_deep=deep - 50)
        if name in FOLLOW_NEXT:  # the page a client reaches by following next links
            with urllib.request.urlopen(base + path) as response:
                path = json.load(response)["next"][len(base) :]
        measure(name, label, base, path)

    def measure_304(label: str, base: str) -> None:
        dossier = base + PATHS["dossier"].format(a=a, b=b)
        revalidation = {"If-None-Match": etag_of(dossier)}
        measure("dossier 304", label, base, dossier[len(base) :], revalidation)

    @contextmanager
    def datasette() -> Iterator[str | None]:
        command = [
            str(BIN / "datasette"),
            "serve",
            "-i",
            str(database),
            "--host",
            HOST,
            "--port",
            str(free_port()),
            "--setting",
            "num_sql_threads",
            "1",
        ]
        if not Path(command[0]).exists():
            print("datasette is not installed (pip install '.[bench]'); skipping it")
            yield None
            return
        with server(command, int(command[-4])) as base:
            yield base

    sqlite_url = f"sqlite:///{database}"
    size = dossier_size(sqlite_url)
    port = free_port()
    # The ceiling is measured before and after the cached reads, which are compared with it.
    ceiling_command = uvicorn("bench.ceiling:app", port)
    with server(ceiling_command, port, {"CEILING_BYTES": str(size)}) as ceiling_base:
        for _ in again:
            measure("constant JSON", "starlette", ceiling_base, "/")
            measure(SIZED_CEILING, "starlette", ceiling_base, "/sized")
        with dyad(sqlite_url, cache=True) as base:
            for name in PATHS:
                for _ in again:
                    measure_path(name, "dyad/cache", base, args.rows)
            for _ in again:
                measure_304("dyad/cache", base)
        for _ in again:
            measure(CEILING_AFTER_CACHED, "starlette", ceiling_base, "/")
    # The cold reads that are compared with each other (SQLite, PostgreSQL, Datasette, the
    # larger dataset) are measured back to back, endpoint by endpoint: the host's speed
    # drifts over minutes, and measured a block apart, two servers' ratio moved by a third.
    scaled = f"dyad/no-cache/{args.scale_rows:,}"
    with ExitStack() as servers:
        cold = {"dyad/no-cache": (servers.enter_context(dyad(sqlite_url, cache=False)), args.rows)}
        if args.postgres:
            postgres_url = prepare_postgres(args.postgres, args.rows)
            cold["dyad/pg/no-cache"] = (
                servers.enter_context(dyad(postgres_url, cache=False)),
                args.rows,
            )
        if args.scale_rows:
            larger = f"sqlite:///{prepare(args.scale_rows)}"
            cold[scaled] = (servers.enter_context(dyad(larger, cache=False)), args.scale_rows)
        datasette_base = servers.enter_context(datasette())
        for name in PATHS:
            for _ in again:
                for label, (base, rows) in cold.items():
                    if label != scaled or name in SCALED:
                        measure_path(name, label, base, rows)
                if datasette_base and name in DATASETTE:
                    path = DATASETTE[name].format(db=database.stem, a=a, b=b)
                    measure(name, "datasette", datasette_base, path)
        for _ in again:
            for label, (base, _) in cold.items():
                measure_304(label, base)
    port = free_port()
    with server(uvicorn("bench.ceiling:app", port), port) as base:
        for _ in again:
            measure(CEILING_AGAIN, "starlette", base, "/")
    results = medians(results)
    results.sort(key=_table_order)
    ceiling = ceiling_of(results)
    for result in results:
        result.ratio_to_ceiling = round(result.requests_per_second / ceiling, 3)
        match = find(results, "datasette", result.name)
        if match and result.server != "datasette":
            result.ratio_to_datasette = round(
                result.requests_per_second / match.requests_per_second, 2
            )
    return results


SERVER_ORDER = ("starlette", "dyad/cache", "dyad/no-cache", "datasette", "dyad/pg/no-cache")


def _table_order(result: Result) -> tuple[int, int]:
    """Results grouped by server (in measuring order within each), each figure of the
    ceiling after what it was measured after."""
    if result.name == CEILING_AGAIN:
        return (len(SERVER_ORDER) + 1, 0)
    if result.name == CEILING_AFTER_CACHED:
        return (SERVER_ORDER.index("dyad/cache"), 1)
    known = result.server in SERVER_ORDER
    return (SERVER_ORDER.index(result.server) if known else len(SERVER_ORDER), 0)


def find(results: list[Result], server_name: str, name: str) -> Result | None:
    return next((r for r in results if r.server == server_name and r.name == name), None)


@dataclass
class Target:
    goal: str
    reached: str
    met: bool


def targets(results: list[Result], args: argparse.Namespace) -> list[Target]:
    """Issue 6's targets from this run's figures (targets without inputs are left out)."""
    found: list[Target] = []

    def check(goal: str, reached: str, met: bool) -> None:
        found.append(Target(goal, reached, met))

    ceiling = ceiling_of(results)
    for name in HOT:
        r = find(results, "dyad/cache", name)
        if r:
            ratio = r.requests_per_second / ceiling
            check(f"hot {name} ≥ 0.60x ceiling", f"{ratio:.2f}x", ratio >= 0.60)
    sized, hot_dossier = (
        find(results, "starlette", SIZED_CEILING),
        find(results, "dyad/cache", "dossier"),
    )
    if sized and hot_dossier:  # not one of the targets: what the answer's size allows
        ratio = hot_dossier.requests_per_second / sized.requests_per_second
        check("(hot dossier ≥ 0.60x a constant answer of its size)", f"{ratio:.2f}x", ratio >= 0.6)
    trade_ds = find(results, "datasette", "trade page (pair)")
    for name in ("dossier", "trade page (pair)"):
        r = find(results, "dyad/no-cache", name)
        if r and trade_ds:
            ratio = r.requests_per_second / trade_ds.requests_per_second
            check(f"cold {name} ≥ 3x Datasette's trade page", f"{ratio:.1f}x", ratio >= 3)
    for label, prefix in (("cached", "dyad/cache"), ("uncached", "dyad/no-cache")):
        rows = [r for r in results if r.server == prefix]
        if rows:
            worst = max(rows, key=lambda r: r.p99_ms if r.p99_ms == r.p99_ms else float("inf"))
            reached = f"{worst.p99_ms:.1f} ms ({worst.name})"
            check(f"p99 < 20 ms ({label} SQLite reads)", reached, worst.p99_ms < 20)
    first = find(results, "dyad/no-cache", "trade first page")
    for how in ("trade deep page", "trade deep page (next link)"):
        deep = find(results, "dyad/no-cache", how)
        if first and deep:
            ratio = deep.p50_ms / first.p50_ms if first.p50_ms > 0 else float("nan")
            goal = f"{how.replace('trade ', '')} p50 ≤ 2x first page (no cache)"
            check(goal, f"{ratio:.2f}x", ratio <= 2)
    if args.scale_rows:
        for name in SCALED:
            small = find(results, "dyad/no-cache", name)
            large = find(results, f"dyad/no-cache/{args.scale_rows:,}", name)
            if small and large:
                ratio = large.p50_ms / small.p50_ms if small.p50_ms > 0 else float("nan")
                check(
                    f"{name} p50 at {args.scale_rows:,} rows ≤ 1.3x at {args.rows:,}",
                    f"{ratio:.2f}x",
                    ratio <= 1.3,
                )
    pg = [
        (find(results, "dyad/no-cache", r.name), r)
        for r in results
        if r.server == "dyad/pg/no-cache"
    ]
    pairs = [(s, p) for s, p in pg if s is not None and s.p50_ms > 0 and p.p50_ms > 0]
    if pairs:
        ratio = max(p.p50_ms / s.p50_ms for s, p in pairs)
        check("PostgreSQL p50 ≤ 1.5x SQLite (worst endpoint)", f"{ratio:.2f}x", ratio <= 1.5)
    return found


def report(results: list[Result], args: argparse.Namespace) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    meta = {
        "rows": args.rows,
        "scale_rows": args.scale_rows,
        "postgres": bool(args.postgres),
        "seconds": args.seconds,
        "connections": args.connections,
        "repeat": args.repeat,
        "python": platform.python_version(),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    checked = targets(results, args)
    (RESULTS / "latest.json").write_text(
        json.dumps(
            {
                "meta": meta,
                "results": [asdict(r) for r in results],
                "targets": [asdict(t) for t in checked],
            },
            indent=2,
        )
        + "\n"
    )
    lines = [
        f"# Read benchmark ({args.rows:,} trade rows, wrk -t1 -c{args.connections} "
        f"-d{args.seconds}s"
        + (f", each figure the median of {args.repeat} loads)" if args.repeat > 1 else ")"),
        "",
        f"{meta['at']} · Python {meta['python']} · {meta['machine']}; server on core 0, "
        "load from core 1.",
        "",
        *_drift_lines(results),
        "| server | endpoint | req/s | p50 ms | p99 ms | vs Starlette | vs Datasette |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in results:
        versus = f"{r.ratio_to_datasette:.2f}" if r.ratio_to_datasette is not None else ""
        lines.append(
            f"| {r.server} | {r.name} | {r.requests_per_second:,.0f} | {r.p50_ms:.2f} "
            f"| {r.p99_ms:.2f} | {r.ratio_to_ceiling:.2f} | {versus} |"
        )
    lines += ["", "## Targets (issue 6)", "", "| target | reached | met |", "|---|---|---|"]
    lines += [f"| {t.goal} | {t.reached} | {'yes' if t.met else '**no**'} |" for t in checked]
    (RESULTS / "latest.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def _drift_lines(results: list[Result]) -> list[str]:
    drift = ceiling_drift(results)
    if drift is None:
        return []
    return [
        f"The Starlette ceiling moved {drift:+.0%} between the start and the end of the run; "
        "ratios are to the higher of its figures just before and just after the cached reads.",
        "",
    ]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=100_000, help="generated trade rows")
    parser.add_argument("--seconds", type=int, default=5, help="length of each load")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument(
        "--scale-rows",
        type=int,
        default=0,
        help="also measure the dossier and a trade page over this many rows (e.g. 1000000)",
    )
    parser.add_argument(
        "--postgres",
        default=os.environ.get("DYAD_BENCH_POSTGRES_URL", ""),
        help="a PostgreSQL server URL (loopback): also measure Dyad over PostgreSQL",
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="loads per endpoint, interleaved with the servers it is compared with; "
        "each figure is their median",
    )
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    report(run(args), args)


if __name__ == "__main__":
    main()
