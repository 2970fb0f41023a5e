"""Crash durability: scripts/crash_test.py in a reduced mode, on every engine.

The script kills the server under concurrent writes and checks that every acknowledged
write survives, the change feed has no gap and SQLite's integrity check passes; on SQLite it
also kills a Comtrade import half way and checks that it left all or nothing. Its full mode
(five kills, four imports of 100,000 rows) runs standalone.
"""

from __future__ import annotations

import subprocess
import sys

import pytest
from conftest import SEED

SCRIPT = SEED.parents[1] / "scripts" / "crash_test.py"
REDUCED = ["--seed", "20261134", "--rounds", "2", "--writers", "5"]


@pytest.mark.slow
def test_nothing_acknowledged_is_lost_when_the_server_is_killed(
    engine_kind: str, empty_url: str
) -> None:
    if engine_kind == "sqlite":
        # Its own SQLite files, and an import killed half way as well.
        args = [*REDUCED, "--import-rounds", "2", "--import-rows", "10000"]
    else:
        args = [*REDUCED, "--import-rounds", "0", "--database-url", empty_url]
    done = subprocess.run(
        [sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "OK: 0 violation(s)" in done.stdout
    assert done.stdout.count("read back as acknowledged") == 2
    if engine_kind == "sqlite":
        assert done.stdout.count("integrity ok") == 2
        assert "import round 1: 9,800 rows; ran to the end" in done.stdout
        # This seed kills the second import about half way through its write phase.
        assert "import round 2: 9,800 rows; SIGKILL at " in done.stdout, done.stdout
