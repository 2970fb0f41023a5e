"""The import benchmark: a UN Comtrade CSV of a million rows through ``dyad import``.

    .venv/bin/python bench/measure_import.py [--rows 1000000] [--postgres URL] [--keep DIR]

Generates the CSV with bench/generate.py (in ``--keep``, bench/.data by default, where it is
kept and reused), migrates a fresh SQLite database and loads the seed into it, then runs
``dyad import FILE --format comtrade`` on it twice, each in a process of its own: the first
import creates every figure, the second finds them all unchanged. For each it reports the
wall time, the rows of the file per second (World rows, which are skipped, included), the
child's CPU time and its peak resident set size (``ru_maxrss`` from wait4), as JSON on
stdout. ``--postgres`` does the same on PostgreSQL, in a database ``dyad_import_<rows>``
made afresh on that server (and dropped afterwards).

Other work on the machine shows in the wall time, not in the CPU time: the load average
before and after each import is in the output, so that a noisy figure can be told apart.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / "bench" / ".data"
DYAD = Path(sys.executable).with_name("dyad")
SOURCE = ["--source-id", "comtrade-bench", "--source-title", "UN Comtrade (synthetic)"]


def run(args: list[str], env: dict[str, str]) -> dict[str, Any]:
    """Run a command to the end: its wall and CPU time, peak RSS and output."""
    load = os.getloadavg()[0]
    start = time.perf_counter()
    process = subprocess.Popen(
        args, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    assert process.stdout is not None
    output = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status):
        raise SystemExit(f"{' '.join(args)} failed:\n{output}")
    return {
        "seconds": round(seconds, 2),
        "cpu_seconds": round(usage.ru_utime + usage.ru_stime, 2),
        "peak_rss_mib": round(usage.ru_maxrss / 1024),  # Linux reports kilobytes
        "load_before": round(load, 2),
        "load_after": round(os.getloadavg()[0], 2),
        "output": output.strip().splitlines()[-2:],
    }


def imports(csv_file: Path, rows: int, env: dict[str, str]) -> dict[str, Any]:
    """Migrate and seed the database of ``env``, then import the file twice."""
    run([str(DYAD), "db", "upgrade"], env)
    run([str(DYAD), "seed"], env)
    command = [str(DYAD), "import", str(csv_file), "--format", "comtrade", *SOURCE]
    result = {}
    for name in ("first", "again"):
        measured = run(command, env)
        measured["rows_per_second"] = round(rows / measured["seconds"])
        measured["rows_per_cpu_second"] = round(rows / measured["cpu_seconds"])
        result[name] = measured
        print(f"{env['DYAD_DATABASE_URL'].split(':')[0]} {name}: {measured}", file=sys.stderr)
    return result


def postgres(url: str, database: str, statement: str) -> None:
    import psycopg

    with psycopg.connect(url.replace("+psycopg", ""), autocommit=True) as connection:
        connection.execute(statement.format(database=database))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--postgres", help="a PostgreSQL server URL (a database of it)")
    parser.add_argument("--keep", type=Path, default=WORK, help="where the files go")
    parser.add_argument("--no-sqlite", action="store_true", help="PostgreSQL only")
    args = parser.parse_args()
    folder: Path = args.keep
    folder.mkdir(parents=True, exist_ok=True)
    csv_file = folder / f"comtrade-{args.rows}.csv"
    if not csv_file.exists():
        generate = [sys.executable, str(ROOT / "bench" / "generate.py"), "--rows", str(args.rows)]
        subprocess.run([*generate, "--comtrade", str(csv_file)], check=True)
    result: dict[str, Any] = {
        "rows": args.rows,
        "file_mib": round(csv_file.stat().st_size / 2**20),
        "command": "dyad import FILE --format comtrade " + " ".join(SOURCE),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
    }
    env = {**os.environ, "DYAD_SEED_FILE": str(ROOT / "data" / "seed.json")}
    if not args.no_sqlite:
        database = folder / f"import-{args.rows}.db"
        for path in folder.glob(f"{database.name}*"):
            path.unlink()
        result["sqlite"] = imports(
            csv_file, args.rows, {**env, "DYAD_DATABASE_URL": f"sqlite:///{database}"}
        )
        for path in folder.glob(f"{database.name}*"):
            path.unlink()
    if args.postgres:
        name = f"dyad_import_{args.rows}"
        postgres(args.postgres, name, "DROP DATABASE IF EXISTS {database}")
        postgres(args.postgres, name, "CREATE DATABASE {database}")
        try:
            url = args.postgres.rsplit("/", 1)[0] + "/" + name
            result["postgresql"] = imports(csv_file, args.rows, {**env, "DYAD_DATABASE_URL": url})
        finally:
            postgres(args.postgres, name, "DROP DATABASE IF EXISTS {database}")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
