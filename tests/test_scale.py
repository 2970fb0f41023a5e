"""Scale-out as users run it: `dyad serve --workers 4` on one SQLite file with concurrent
writers and readers, and a PostgreSQL restart that the running app survives."""

from __future__ import annotations

import os
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from conftest import make_client, ok
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from test_shutdown import DYAD, free_port, make_key, server_db

__all__ = ["server_db"]  # the fixture, shared with test_shutdown

WRITERS = 4
READERS = 4
WRITES = 40  # each writer's


def wait_until_up(base: str, server: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert server.poll() is None, log.read_text()
        try:
            if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    raise AssertionError("dyad serve did not come up: " + log.read_text())


def test_four_workers_on_sqlite_take_concurrent_writers_without_lock_errors(
    server_db: str, tmp_path: Path
) -> None:
    key = make_key("write")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {**os.environ, "DYAD_DATABASE_URL": server_db, "DYAD_RATE_LIMIT_ENABLED": "false"}
    log = (tmp_path / "serve.log").open("wb")
    server = subprocess.Popen(
        [str(DYAD), "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", "4"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    statuses: Counter[int] = Counter()
    lock = threading.Lock()
    done = threading.Event()

    def write(n: int) -> None:
        with httpx.Client(base_url=base, timeout=30) as client:
            for i in range(WRITES):
                answer = client.post(
                    "/v1/sources",
                    json={"id": f"worker-{n}-{i}", "title": f"Writer {n}, number {i}"},
                    headers={"Authorization": f"Bearer {key}"},
                )
                with lock:
                    statuses[answer.status_code] += 1

    def read() -> None:
        with httpx.Client(base_url=base, timeout=30) as client:
            while not done.is_set():
                for path in ("/v1/sources?limit=5", "/v1/relations/KZ/AZ", "/v1/changes"):
                    answer = client.get(path)
                    with lock:
                        statuses[answer.status_code] += 1

    try:
        wait_until_up(base, server, tmp_path / "serve.log")
        readers = [threading.Thread(target=read) for _ in range(READERS)]
        writers = [threading.Thread(target=write, args=(n,)) for n in range(WRITERS)]
        for thread in readers + writers:
            thread.start()
        for thread in writers:
            thread.join()
        done.set()
        for thread in readers:
            thread.join()
        with httpx.Client(base_url=base) as client:
            feed = client.get("/v1/changes", params={"limit": 500}).json()
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()
    assert statuses[201] == WRITERS * WRITES, statuses  # every write went through: no 503
    assert set(statuses) <= {200, 201}, statuses
    created = {c["id"] for c in feed["items"] if c["id"].startswith("worker-")}
    assert len(created) == WRITERS * WRITES


@pytest.fixture
def postgres_url(seeded_url: str, engine_kind: str) -> Iterator[str]:
    if engine_kind != "postgresql":
        pytest.skip("restarting the database is a PostgreSQL matter")
    yield seeded_url


def test_the_app_survives_a_postgresql_restart(postgres_url: str) -> None:
    """Every connection the pool holds is cut, as a server restart cuts them; the next
    requests are answered without restarting: the pool hands out no connection the server
    has closed (app.db._refuse_closed_by_server)."""
    database = make_url(postgres_url).database
    admin = create_engine(make_url(postgres_url).set(database="postgres"))
    with make_client(postgres_url, cache_enabled=False) as client:
        for _ in range(3):
            ok(client.get("/v1/relations/KZ/AZ"))
        with admin.connect() as connection:
            cut = connection.execute(
                text(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE datname = :name AND pid <> pg_backend_pid()"
                ),
                {"name": database},
            ).scalar()
        assert cut and cut >= 1
        for _ in range(5):
            ok(client.get("/v1/relations/KZ/AZ"))
            ok(client.get("/v1/treaties"))
    admin.dispose()
