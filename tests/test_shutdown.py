"""SIGTERM with writes in flight: each is finished and acknowledged, or refused, never lost or
left half-written; `dyad serve` runs as it does in production, in a process of its own.

Small writes take milliseconds, so an import of a second or so is in flight too: it shows that
the server waits for long writes (DYAD_SHUTDOWN_GRACE_SECONDS) instead of cutting them off.
"""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import orjson
import pytest
from sqlalchemy.engine import make_url
from typer.testing import CliRunner

from app.cli import app as cli
from app.db import engine_for

WRITERS = 6
BULK = 20_000  # sources in the import: about a second of work
DYAD = Path(sys.executable).parent / "dyad"


@dataclass
class Writer:
    """One client writing new sources one after another until the server goes away."""

    base: str
    key: str
    name: str
    acknowledged: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)  # 503: refused cleanly
    unanswered: list[str] = field(default_factory=list)  # the connection failed
    other: list[tuple[str, int, str]] = field(default_factory=list)
    finished_after: list[float] = field(default_factory=list)  # when each 201 arrived

    def run(self) -> None:
        with httpx.Client(base_url=self.base, timeout=20) as client:
            for i in range(10_000):
                source_id = f"shutdown-{self.name}-{i}"
                body = {"id": source_id, "title": f"Written by {self.name}, number {i}"}
                try:
                    answer = client.post(
                        "/v1/sources", json=body, headers={"Authorization": f"Bearer {self.key}"}
                    )
                except httpx.TransportError:
                    self.unanswered.append(source_id)
                    return
                if answer.status_code == 201:
                    self.acknowledged.append(source_id)
                    self.finished_after.append(time.monotonic())
                    assert "server" not in answer.headers
                elif answer.status_code == 503:
                    self.refused.append(source_id)
                else:
                    self.other.append((source_id, answer.status_code, answer.text[:200]))
                    return


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def server_db(
    seeded_url: str, engine_kind: str, use_database: Callable[[str], None]
) -> Iterator[str]:
    if engine_kind != "sqlite":
        pytest.skip("the server process runs on a SQLite file here")
    use_database(seeded_url)
    yield seeded_url
    engine_for(seeded_url).dispose()


def make_key(scope: str) -> str:
    result = CliRunner().invoke(cli, ["keys", "create", "--name", "t", "--scope", scope])
    assert result.exit_code == 0, result.output
    return result.stdout.strip()


@dataclass
class Import:
    """One large import, sent once."""

    base: str
    key: str
    status: int | None = None
    finished: float = 0.0
    sent: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        sources = [{"id": f"bulk-{i}", "title": f"Bulk source {i}"} for i in range(BULK)]
        headers = {"Authorization": f"Bearer {self.key}", "Content-Type": "application/json"}

        def body() -> Iterator[bytes]:
            yield orjson.dumps({"sources": sources})
            self.sent.set()  # the whole request is on its way: the server has it in flight

        try:
            answer = httpx.post(
                f"{self.base}/v1/imports", content=body(), headers=headers, timeout=30
            )
        except httpx.TransportError:
            return
        self.status, self.finished = answer.status_code, time.monotonic()


def wait_until_up(base: str, server: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert server.poll() is None, server.communicate()[1].decode()
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.05)
    raise AssertionError("dyad serve did not come up")


def test_sigterm_finishes_or_refuses_every_write_in_flight(server_db: str) -> None:
    key, import_key = make_key("write"), make_key("import")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "DYAD_DATABASE_URL": server_db,
        "DYAD_RATE_LIMIT_ENABLED": "false",
        "DYAD_SHUTDOWN_GRACE_SECONDS": "10",
        "DYAD_LOG_LEVEL": "info",
    }
    server = subprocess.Popen(
        [str(DYAD), "serve", "--port", str(port)], env=env, stderr=subprocess.PIPE
    )
    try:
        wait_until_up(base, server)
        assert "server" not in httpx.get(f"{base}/healthz").headers
        writers = [Writer(base, key, f"w{n}") for n in range(WRITERS)]
        threads = [threading.Thread(target=w.run) for w in writers]
        for thread in threads:
            thread.start()
        while sum(len(w.acknowledged) for w in writers) < 30:
            time.sleep(0.005)
        bulk = Import(base, import_key)
        threads.append(threading.Thread(target=bulk.run))
        threads[-1].start()
        # Signal once the server has the whole import (sent, then read and being checked):
        # a fixed pause was sometimes too short on a loaded machine, and the import had
        # not reached the server when it stopped taking requests.
        assert bulk.sent.wait(timeout=20)
        time.sleep(0.2)
        assert bulk.status is None, "the import was over before the signal"
        terminated_at = time.monotonic()
        server.send_signal(signal.SIGTERM)
        for thread in threads:
            thread.join(timeout=30)
        _, stderr = server.communicate(timeout=30)
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
    # uvicorn shuts down, then lets the signal end the process as it would have.
    log = stderr.decode()
    assert server.returncode in (0, -signal.SIGTERM), log
    assert "Application shutdown complete" in log and "Traceback" not in log, log

    assert not [w.other for w in writers if w.other]  # only 201, 503 or no answer at all
    acknowledged = {i for w in writers for i in w.acknowledged}
    # Writes in flight at the signal were finished and acknowledged, not cut off.
    assert any(t > terminated_at for w in writers for t in w.finished_after)
    assert all(w.unanswered for w in writers)  # every writer was stopped by the shutdown
    assert bulk.status == 200 and bulk.finished > terminated_at

    database = make_url(server_db).database
    assert database
    with sqlite3.connect(database) as connection:
        assert connection.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        stored = {
            row[0] for row in connection.execute("SELECT id FROM source WHERE id LIKE 'shutdown-%'")
        }
        changed = [
            row[0]
            for row in connection.execute(
                "SELECT entity_id FROM dataset_change WHERE entity_id LIKE 'shutdown-%'"
            )
        ]
        [(imported,)] = connection.execute(
            "SELECT count(*) FROM source WHERE id LIKE 'bulk-%'"
        ).fetchall()
        revisions = [
            r[0] for r in connection.execute("SELECT DISTINCT revision FROM dataset_change")
        ]
        [(current,)] = connection.execute("SELECT revision FROM dataset_state").fetchall()
    # Every acknowledged write is there; nothing is there that was not acknowledged, and each
    # write is whole: its row, its one change in the feed, its revision (no gaps).
    assert stored == acknowledged
    assert sorted(changed) == sorted(acknowledged)
    assert sorted(revisions) == list(range(1, current + 1))
    assert imported == BULK
