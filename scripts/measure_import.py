"""Measure a large Comtrade import: rows per second and the peak memory of ``dyad import``.

    .venv/bin/python scripts/measure_import.py [--rows 1000000] [--database-url URL]

Generates a Comtrade CSV of ``--rows`` rows with bench/generate.py, migrates a fresh SQLite
database (or the empty, migrated database at ``--database-url``), then runs
``dyad import --format comtrade`` on the file in a subprocess and reports its wall time,
rows per second, CPU time and peak resident set size (the child's own ``ru_maxrss``, from
wait4; CPU time says more than wall time on a busy machine).
Too slow for the test suite; tests/test_imports.py bounds the memory of a smaller import.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DYAD = Path(sys.executable).with_name("dyad")


def run(args: list[str], env: dict[str, str]) -> tuple[float, float, int]:
    """Run a command to the end: its wall time and CPU time in seconds, peak RSS in bytes."""
    start = time.perf_counter()
    process = subprocess.Popen(args, env=env)
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode:
        raise SystemExit(f"{' '.join(args)} failed with exit code {process.returncode}")
    cpu = usage.ru_utime + usage.ru_stime
    return seconds, cpu, usage.ru_maxrss * 1024  # Linux reports kilobytes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--database-url", help="an empty, migrated database (default: SQLite)")
    parser.add_argument("--keep", type=Path, help="work in this folder and keep its files")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        folder = args.keep or Path(scratch)
        folder.mkdir(parents=True, exist_ok=True)
        csv_file = folder / f"comtrade-{args.rows}.csv"
        env = {**os.environ, "DYAD_DATABASE_URL": args.database_url or ""}
        if not args.database_url:
            database = folder / "measure.db"
            for path in folder.glob("measure.db*"):
                path.unlink()
            env["DYAD_DATABASE_URL"] = f"sqlite:///{database}"
            run([str(DYAD), "db", "upgrade"], env)
        if not csv_file.exists():
            generate = ROOT / "bench" / "generate.py"
            command = [sys.executable, str(generate), "--rows", str(args.rows)]
            run([*command, "--comtrade", str(csv_file)], env)
        command = [str(DYAD), "import", str(csv_file), "--format", "comtrade"]
        command += ["--source-id", "comtrade-measure", "--source-title", "UN Comtrade (synthetic)"]
        seconds, cpu, peak = run(command, env)
        size = csv_file.stat().st_size
        print(
            f"\n{args.rows:,} rows ({size / 1e6:,.0f} MB) imported in {seconds:,.1f} s "
            f"({cpu:,.1f} s of CPU): {args.rows / seconds:,.0f} rows/s, "
            f"peak RSS {peak / 2**20:,.0f} MiB"
        )


if __name__ == "__main__":
    main()
