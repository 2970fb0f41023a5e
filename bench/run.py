"""The read benchmark: Dyad against a bare Starlette ceiling and Datasette, in one run.

    make bench                       # 100k trade rows (generated, clearly synthetic)
    .venv/bin/python bench/run.py --rows 1000000 --seconds 10

Each server runs as users run it (uvicorn, one worker, uvloop + httptools, no access log),
pinned to core 0 with taskset where there is one; wrk loads it from core 1 over 127.0.0.1
only. The figures that matter are the ratios to the Starlette ceiling measured in the same
run: absolute req/s drift between machines and rounds. Results are written to
bench/results/latest.json and latest.md.
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
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

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
        "uvloop",
        "--http",
        "httptools",
        "--no-access-log",
        "--log-level",
        "warning",
    ]


_DURATION = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def _ms(text: str) -> float:
    number, unit = re.match(r"([\d.]+)(us|ms|s)", text).groups()  # type: ignore[union-attr]
    return float(number) * _DURATION[unit]


def load(
    wrk: str, url: str, seconds: int, connections: int, headers: dict[str, str] | None = None
) -> tuple[float, float, float, int]:
    command = [wrk, "-t1", f"-c{connections}", f"-d{seconds}s", "--latency"]
    for name, value in (headers or {}).items():
        command += ["-H", f"{name}: {value}"]
    output = subprocess.run(
        pinned([*command, url], 1), capture_output=True, text=True, check=True
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))  # type: ignore[union-attr]
    p50 = _ms(re.search(r"50%\s+(\S+)", output).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"99%\s+(\S+)", output).group(1))  # type: ignore[union-attr]
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    failed = (int(bad.group(1)) if bad else 0) + (sum(map(int, errors.groups())) if errors else 0)
    return rps, p50, p99, failed


def prepare(rows: int) -> Path:
    """A SQLite database with the seed plus a generated dataset, loaded the way users load."""
    WORK.mkdir(parents=True, exist_ok=True)
    database = WORK / f"bench-{rows}.db"
    if database.exists():
        return database
    generated = WORK / f"generated-{rows}.json"
    subprocess.run(
        [sys.executable, "bench/generate.py", "--rows", str(rows), "--out", str(generated)],
        cwd=ROOT,
        check=True,
    )
    env = {**os.environ, "DYAD_DATABASE_URL": f"sqlite:///{database}"}
    for step in (["db", "upgrade"], ["seed"], ["import", str(generated)]):
        subprocess.run(
            [str(BIN / "dyad"), *step], cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL
        )
    return database


def etag_of(url: str) -> str:
    with urllib.request.urlopen(url) as response:
        return str(response.headers["ETag"])


def run(args: argparse.Namespace) -> list[Result]:
    wrk = ensure_wrk()
    database = prepare(args.rows)
    results: list[Result] = []

    def measure(
        name: str, server_name: str, base: str, path: str, headers: dict[str, str] | None = None
    ) -> Result:
        url = base + path
        urllib.request.urlopen(url).read()  # warm: the first answer fills caches
        rps, p50, p99, errors = load(wrk, url, args.seconds, args.connections, headers)
        result = Result(name, server_name, path, rps, p50, p99, errors)
        print(
            f"{server_name:>10} {name:<22} {rps:>9.0f} req/s  p50 {p50:6.2f} ms  "
            f"p99 {p99:6.2f} ms  errors {errors}",
            flush=True,
        )
        results.append(result)
        return result

    port = free_port()
    with server(uvicorn("bench.ceiling:app", port), port) as base:
        ceiling = measure("constant JSON", "starlette", base, "/")
    dyad_env = {"DYAD_DATABASE_URL": f"sqlite:///{database}", "DYAD_RATE_LIMIT_ENABLED": "false"}
    a, b = PAIR
    paths = {
        "country": "/v1/countries/KZ",
        "dossier": f"/v1/relations/{a}/{b}",
        "timeline": f"/v1/relations/{a}/{b}/timeline",
        "trade page (pair)": f"/v1/trade?country={b}&partner={a}",
        "search": "/v1/search?q=trade",
        "trade first page": "/v1/trade",
        "trade offset=100000": f"/v1/trade?offset={min(100_000, args.rows - 50)}",
    }
    for cache in ("on", "off"):
        port = free_port()
        env = {**dyad_env, "DYAD_CACHE_ENABLED": "true" if cache == "on" else "false"}
        with server(
            uvicorn("app.main:create_app", port, factory=True), port, env, ready="/readyz"
        ) as base:
            for name, path in paths.items():
                measure(name, f"dyad/{cache}", base, path)
            etag = etag_of(base + paths["dossier"])
            measure("dossier 304", f"dyad/{cache}", base, paths["dossier"], {"If-None-Match": etag})
    port = free_port()
    datasette = [
        str(BIN / "datasette"),
        "serve",
        "-i",
        str(database),
        "--host",
        HOST,
        "--port",
        str(port),
        "--setting",
        "num_sql_threads",
        "1",
    ]
    equivalents = {
        "country": "/{db}/country/KZ.json",
        "trade page (pair)": f"/{{db}}/trade_figure.json?reporter={b}&partner={a}&_size=50",
    }
    if shutil.which(datasette[0]) or Path(datasette[0]).exists():
        with server(datasette, port) as base:
            db = database.stem
            for name, path in equivalents.items():
                measure(name, "datasette", base, path.format(db=db))
    else:
        print("datasette is not installed (pip install '.[bench]'); skipping it")
    for result in results:
        result.ratio_to_ceiling = round(result.requests_per_second / ceiling.requests_per_second, 3)
        match = next(
            (r for r in results if r.server == "datasette" and r.name == result.name), None
        )
        if match and result.server != "datasette":
            result.ratio_to_datasette = round(
                result.requests_per_second / match.requests_per_second, 2
            )
    return results


def report(results: list[Result], args: argparse.Namespace) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    meta = {
        "rows": args.rows,
        "seconds": args.seconds,
        "connections": args.connections,
        "python": platform.python_version(),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    (RESULTS / "latest.json").write_text(
        json.dumps({"meta": meta, "results": [asdict(r) for r in results]}, indent=2) + "\n"
    )
    lines = [
        f"# Read benchmark ({args.rows:,} trade rows, wrk -t1 -c{args.connections} "
        f"-d{args.seconds}s)",
        "",
        f"{meta['at']} · Python {meta['python']} · {meta['machine']}; server on core 0, "
        "load from core 1.",
        "",
        "| server | endpoint | req/s | p50 ms | p99 ms | vs Starlette | vs Datasette |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in results:
        versus = f"{r.ratio_to_datasette:.2f}" if r.ratio_to_datasette is not None else ""
        lines.append(
            f"| {r.server} | {r.name} | {r.requests_per_second:,.0f} | {r.p50_ms:.2f} "
            f"| {r.p99_ms:.2f} | {r.ratio_to_ceiling:.2f} | {versus} |"
        )
    (RESULTS / "latest.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=100_000, help="generated trade rows")
    parser.add_argument("--seconds", type=int, default=5, help="length of each load")
    parser.add_argument("--connections", type=int, default=32)
    args = parser.parse_args(argv)
    report(run(args), args)


if __name__ == "__main__":
    main()
