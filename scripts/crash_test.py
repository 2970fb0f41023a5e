"""Crash durability: SIGKILL the server under concurrent writes, and an import half way.

    .venv/bin/python scripts/crash_test.py [--seed N] [--rounds 5] [--writers 5]
        [--import-rounds 4] [--import-rows 100000] [--database-url URL]

Writes: ``dyad serve`` runs over a fresh database (``dyad db upgrade``, ``dyad seed``, a write
key from ``dyad keys create``; a temporary SQLite file unless ``--database-url`` names an empty
database). Each round, ``--writers`` threads create treaties, trade figures and visits and
retitle their own treaties as fast as the server takes them, logging every acknowledged
answer (201, 200); once one is acknowledged, the server gets ``SIGKILL`` at a random moment.
Then: ``PRAGMA integrity_check`` is ``ok`` (SQLite), the server starts again, every
acknowledged write reads back exactly as acknowledged, a write in flight at the kill is
either wholly there or not at all, and ``/v1/changes`` holds every revision from 1 to the
current one, each acknowledged write among its changes.

Imports (SQLite): ``dyad import FILE --format comtrade`` of a ``--import-rows`` CSV from
bench/generate.py, into a fresh copy of a seeded database. The first round runs to the end
and is timed from the moment its transaction takes the write lock; each later one is killed
at a random moment of as long a write phase, counted from when it takes the lock. Then
every trace of the import (trade rows, their citations, the source it creates, its changes,
its search documents, the revision) is all there or none of it, and the database is whole.

The seed (printed first; ``--seed`` repeats a run) draws the writes and when each kill comes
(as a fraction of a time measured in the run, so the exact moment varies a little).
Exit status: 0 when every check holds; 1 on any violation, each printed; 2 when the setup
fails (a command or the server does not start).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.generate import WORLD_EVERY, write_comtrade  # noqa: E402

DYAD = Path(sys.executable).with_name("dyad")
SEED_FILE = ROOT / "data" / "seed.json"
CITED = json.loads(SEED_FILE.read_text())["sources"][0]["id"]
COUNTRIES = ["KZ", "AZ", "UZ", "GE", "TR", "CN", "RU", "KG", "TJ", "TM", "IR", "DE"]
TYPES = {"treaties": "treaty", "trade": "trade", "visits": "visit"}
IMPORT_SOURCE = "crash-test-comtrade"  # not comtrade-*, the ids of imported rows


STARTED = time.monotonic()


class SetupFailed(Exception):
    pass


def say(line: str) -> None:
    print(f"[{time.monotonic() - STARTED:5.1f} s] {line}", flush=True)


def clean_env(url: str) -> dict[str, str]:
    """The environment of every command: this database, rate limits off, nothing else of
    the caller's DYAD_ settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DYAD_")}
    env.update(DYAD_DATABASE_URL=url, DYAD_RATE_LIMIT_ENABLED="false", DYAD_LOG_LEVEL="warning")
    return env


def dyad(env: dict[str, str], *args: str) -> str:
    """Run a ``dyad`` command to the end; its standard output."""
    done = subprocess.run([str(DYAD), *args], env=env, capture_output=True, text=True, timeout=600)
    if done.returncode:
        raise SetupFailed(f"dyad {' '.join(args)} failed:\n{done.stdout}{done.stderr}")
    return done.stdout


def prepare(url: str) -> None:
    """Migrate and seed the database at ``url``."""
    dyad(clean_env(url), "db", "upgrade")
    dyad(clean_env(url), "seed")


def seeded_copy(folder: Path, name: str) -> Path:
    """A copy of a migrated, seeded SQLite database, made once per run."""
    base = folder / "seeded.db"
    if not base.exists():
        prepare(f"sqlite:///{base}")
        with closing(sqlite3.connect(base)) as connection:
            connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # a copy of the file is whole
    copy = folder / name
    shutil.copyfile(base, copy)
    return copy


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    """``dyad serve`` in a process group of its own, so that a kill takes all of it."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.env, self.log = env, log
        self.process: subprocess.Popen[bytes] | None = None
        self.url = ""

    def start(self) -> None:
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [str(DYAD), "serve", "--host", "127.0.0.1", "--port", str(port)],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SetupFailed(f"the server exited at start:\n{self.log_tail()}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        raise SetupFailed(f"the server was not ready within 30 s:\n{self.log_tail()}")

    def kill(self, sig: signal.Signals = signal.SIGKILL) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, sig)
            self.process.wait(timeout=30)
        self.process = None

    def log_tail(self) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-30:])


# --- the writes -------------------------------------------------------------------------------


@dataclass
class Ledger:
    """What the writers were told. ``acked`` maps (collection, id) to the body last
    acknowledged; ``pending`` to the possible bodies of a write whose answer never came
    (``None`` for a create that may not have happened); ``feed`` counts the changes each
    acknowledged write must have left in the change feed."""

    acked: dict[tuple[str, str], Any] = field(default_factory=dict)
    pending: dict[tuple[str, str], list[Any]] = field(default_factory=dict)
    refused: dict[tuple[str, str], int] = field(default_factory=dict)
    absent: set[tuple[str, str, str]] = field(default_factory=set)  # creates never made
    feed: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    statuses: Counter[int] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)
    first_ack: threading.Event = field(default_factory=threading.Event)


class Sent(dict[str, Any]):
    """The body of a create that was sent, where other candidates are answers."""


def new_fact(rng: random.Random, collection: str, id_: str) -> dict[str, Any]:
    a, b = rng.sample(COUNTRIES, 2)
    cite = [{"source": CITED, "quote": f"Crash test: {id_} is acknowledged."}]
    if collection == "treaties":
        title = f"Crash test agreement {id_}"
        return {"id": id_, "title": title, "signed": "2024-05", "parties": [a, b], "sources": cite}
    if collection == "trade":
        value = rng.randint(1, 10**12)
        fact = {"reporter": a, "partner": b, "year": rng.randint(1995, 2024), "flow": "export"}
        return {"id": id_, **fact, "value": value, "currency": "USD", "sources": cite}
    return {"id": id_, "date": "2024-05-06", "guest": a, "host": b, "sources": cite}


def writer(
    name: str, seed: int, client: httpx.Client, ledger: Ledger, headers: dict[str, str]
) -> None:
    """Create and retitle facts until the server stops answering."""
    rng = random.Random(seed)
    mine: list[str] = []  # this writer's acknowledged treaties, which only it retitles
    for n in range(1_000_000):
        if mine and n % 4 == 3:
            id_ = rng.choice(mine)
            key = ("treaties", id_)
            change = {"title": f"Crash test agreement {id_}, retitled by write {n}"}
            with ledger.lock:
                before = ledger.acked[key]
            method, path, body = "PATCH", f"/v1/treaties/{id_}", change
            candidates: list[Any] = [before, {**before, **change}]
        else:
            collection = ("treaties", "trade", "visits")[n % 3]
            id_ = f"{name}-{n:06d}"
            key = (collection, id_)
            method, path, body = "POST", f"/v1/{collection}", new_fact(rng, collection, id_)
            candidates = [None, Sent(body)]
        try:
            answer = client.request(method, path, json=body, headers=headers)
        except httpx.ConnectError:
            return  # never sent: the server is gone
        except httpx.TransportError:
            with ledger.lock:
                ledger.pending[key] = candidates
            return
        with ledger.lock:
            ledger.statuses[answer.status_code] += 1
            if answer.status_code in (200, 201):
                ledger.acked[key] = answer.json()
                action = "create" if method == "POST" else "update"
                ledger.feed[(action, TYPES[key[0]], id_)] += 1
                if key[0] == "treaties" and method == "POST":
                    mine.append(id_)
                ledger.first_ack.set()
            elif method == "POST":
                ledger.refused[key] = answer.status_code


def crash_round(
    number: int,
    rng: random.Random,
    server: Server,
    ledger: Ledger,
    writers: int,
    headers: dict[str, str],
) -> tuple[float, int, int]:
    """Writers at full speed, a SIGKILL at a random moment after the first acknowledged
    write: the seconds from that write to the kill, writes acknowledged, writes in flight."""
    before = sum(ledger.statuses.values())
    pending = len(ledger.pending)
    ledger.first_ack.clear()
    clients = [httpx.Client(base_url=server.url, timeout=30) for _ in range(writers)]
    threads = [
        threading.Thread(
            target=writer,
            args=(f"crash-r{number}-w{i}", rng.randrange(2**32), client, ledger, headers),
        )
        for i, client in enumerate(clients)
    ]
    delay = rng.uniform(0.05, 1.5)
    for thread in threads:
        thread.start()
    if not ledger.first_ack.wait(timeout=30):
        raise SetupFailed(f"no write was acknowledged within 30 s:\n{server.log_tail()}")
    time.sleep(delay)
    server.kill()
    for thread in threads:
        thread.join(timeout=60)
    for client in clients:
        client.close()
    answered = sum(ledger.statuses.values()) - before
    return delay, answered, len(ledger.pending) - pending


def read_back(server: Server, ledger: Ledger) -> tuple[list[str], int]:
    """Every acknowledged write as acknowledged; each write in flight all there or not at
    all (what is found becomes the acknowledged state for later rounds); refused creates
    absent. Violations, as sentences, and how many writes in flight took effect."""
    faults: list[str] = []
    landed = 0
    with httpx.Client(base_url=server.url, timeout=30) as client:
        for (collection, id_), expected in sorted(ledger.acked.items()):
            if (collection, id_) in ledger.pending:
                continue  # changed by a write in flight: checked below
            answer = client.get(f"/v1/{collection}/{id_}")
            if answer.status_code != 200:
                faults.append(f"acknowledged {collection}/{id_} lost: GET is {answer.status_code}")
            elif answer.json() != expected:
                faults.append(f"acknowledged {collection}/{id_} changed: {answer.text[:300]}")
        for (collection, id_), candidates in sorted(ledger.pending.items()):
            answer = client.get(f"/v1/{collection}/{id_}")
            found = answer.json() if answer.status_code == 200 else None
            if answer.status_code not in (200, 404) or not any(
                same_write(found, c) for c in candidates
            ):
                faults.append(
                    f"{collection}/{id_}, in flight at the kill, is neither before nor after "
                    f"the write: {answer.status_code} {answer.text[:300]}"
                )
            elif found is None:
                if candidates[0] is None:
                    ledger.absent.add(("create", TYPES[collection], id_))
            else:
                landed += same_write(found, candidates[-1])
                if (collection, id_) not in ledger.acked:
                    ledger.feed[("create", TYPES[collection], id_)] += 1
                elif found != ledger.acked[(collection, id_)]:
                    ledger.feed[("update", TYPES[collection], id_)] += 1
                ledger.acked[(collection, id_)] = found
        ledger.pending.clear()
        for (collection, id_), status in sorted(ledger.refused.items()):
            if client.get(f"/v1/{collection}/{id_}").status_code != 404:
                faults.append(f"{collection}/{id_} was refused ({status}) but is stored")
            ledger.absent.add(("create", TYPES[collection], id_))
        faults += check_feed(client, ledger)
    return faults, landed


def same_write(found: Any, candidate: Any) -> bool:
    """Whether what is stored is the candidate: nothing for ``None``; the answer itself; or
    what a create sent, field by field (it names countries by code, where the answer shows
    them whole, and lists parties that the answer shows the same way)."""
    if candidate is None or found is None:
        return candidate is found
    if not isinstance(candidate, Sent):
        return bool(found == candidate)

    def shown(value: Any) -> Any:
        if isinstance(value, list):
            return [shown(v) for v in value]
        return value["iso2"] if isinstance(value, dict) and "iso2" in value else value

    return all(shown(found.get(k)) == v for k, v in candidate.items())


def check_feed(client: httpx.Client, ledger: Ledger) -> list[str]:
    """Revisions 1 to the current one, none missing, in order; every acknowledged write in
    them as often as it was acknowledged; no create that never took effect."""
    items: list[dict[str, Any]] = []
    revision = None
    while True:
        page = client.get("/v1/changes", params={"since": 0, "limit": 500, "offset": len(items)})
        if page.status_code != 200:
            return [f"GET /v1/changes answered {page.status_code}: {page.text[:300]}"]
        body = page.json()
        revision = body["revision"] if revision is None else revision
        items += body["items"]
        if not body["items"] or body["next"] is None:
            break
    faults = []
    revisions = [item["revision"] for item in items]
    if revisions != sorted(revisions):
        faults.append("the change feed is not in revision order")
    missing = sorted(set(range(1, revision + 1)) - set(revisions))
    if missing:
        faults.append(f"the change feed skips revisions {missing[:20]} (current {revision})")
    if set(revisions) - set(range(1, revision + 1)):
        faults.append(f"the change feed lists revisions after the current one ({revision})")
    seen = Counter((i["action"], i["type"], i["id"]) for i in items)
    for change, times in sorted(ledger.feed.items()):
        if seen[change] < times:
            faults.append(f"the change feed lists {change} {seen[change]} times, not {times}")
    for change in sorted(ledger.absent):
        if seen[change]:
            faults.append(f"the change feed lists {change}, which never took effect")
    return faults


def integrity(database: Path) -> list[str]:
    """``PRAGMA integrity_check`` and ``foreign_key_check`` of a SQLite file at rest."""
    connection = sqlite3.connect(database)
    try:
        result = [row[0] for row in connection.execute("PRAGMA integrity_check")]
        orphans = connection.execute("PRAGMA foreign_key_check").fetchall()
        connection.execute("BEGIN IMMEDIATE")  # no lock left behind
        connection.execute("ROLLBACK")
    finally:
        connection.close()
    faults = [] if result == ["ok"] else [f"PRAGMA integrity_check: {result[:10]}"]
    if orphans:
        faults.append(f"PRAGMA foreign_key_check: {orphans[:10]}")
    return faults


def run_writes(args: argparse.Namespace, rng: random.Random, folder: Path) -> list[str]:
    if args.database_url:
        url, database = args.database_url, None
        prepare(url)
    else:
        database = seeded_copy(folder, "writes.db")
        url = f"sqlite:///{database}"
    env = clean_env(url)
    key = dyad(env, "keys", "create", "--name", "crash", "--scope", "write").strip()
    headers = {"Authorization": f"Bearer {key}"}
    say(f"writes: {make_url(url).get_backend_name()} database migrated and seeded, key made")
    server = Server(env, folder / "server.log")
    ledger = Ledger()
    faults: list[str] = []
    server.start()
    try:
        for number in range(1, args.rounds + 1):
            delay, answered, in_flight = crash_round(
                number, rng, server, ledger, args.writers, headers
            )
            found = integrity(database) if database else []
            server.start()
            faults_read, landed = read_back(server, ledger)
            found += faults_read
            faults += [f"writes round {number}: {fault}" for fault in found]
            say(
                f"writes round {number}: SIGKILL {delay:.2f} s after the first "
                f"acknowledged write; {answered} answered, {in_flight} in flight "
                f"({landed} of them took effect); "
                f"{len(ledger.acked)} acknowledged so far read back "
                + ("as acknowledged" if not found else f"with {len(found)} violation(s)")
                + ("; integrity ok" if database and not found else "")
            )
    finally:
        server.kill(signal.SIGTERM)
    statuses = ", ".join(f"{n} x {s}" for s, n in sorted(ledger.statuses.items()))
    say(f"writes: answers {statuses}")
    errors = {s: n for s, n in ledger.statuses.items() if s >= 500 and s != 503}
    if errors:
        faults.append(f"writes: server errors under concurrent writes: {errors}")
    return faults


# --- the import -------------------------------------------------------------------------------


def import_state(database: Path) -> dict[str, Any]:
    """Every trace an import leaves, counted."""
    connection = sqlite3.connect(database)
    try:

        def one(sql: str) -> Any:
            return connection.execute(sql).fetchone()[0]

        imported = "LIKE 'comtrade-%'"
        return {
            "rows": one(f"SELECT count(*) FROM trade_figure WHERE id {imported}"),
            "citations": one(
                f"SELECT count(*) FROM citation WHERE fact_type = 'trade' AND fact_id {imported}"
            ),
            "changes": one(f"SELECT count(*) FROM dataset_change WHERE entity_id {imported}"),
            "documents": one(f"SELECT count(*) FROM search_entry WHERE id {imported}"),
            "source": one(f"SELECT count(*) FROM source WHERE id = '{IMPORT_SOURCE}'"),
            "revision": one("SELECT revision FROM dataset_state"),
            "gaps": one(
                "SELECT count(*) FROM (SELECT DISTINCT revision FROM dataset_change) AS r "
                "WHERE revision > 1 AND revision - 1 NOT IN (SELECT revision FROM dataset_change)"
            ),
        }
    finally:
        connection.close()


def is_locked(database: Path) -> bool:
    """Whether a writer holds the database. (A probe that takes the lock for an instant when
    it is free: the import is probed only until its transaction begins.)"""
    probe = sqlite3.connect(database, timeout=0, isolation_level=None)
    try:
        probe.execute("BEGIN IMMEDIATE")
        probe.execute("ROLLBACK")
    except sqlite3.OperationalError:
        return True
    finally:
        probe.close()
    return False


def run_imports(args: argparse.Namespace, rng: random.Random, folder: Path) -> list[str]:
    base = seeded_copy(folder, "import-base.db")
    before = import_state(base)
    csv_file = folder / "comtrade.csv"
    write_comtrade(csv_file, args.import_rows, seed=rng.randrange(2**32))
    say(f"imports: {args.import_rows:,} Comtrade rows written by bench/generate.py")
    rows = args.import_rows - args.import_rows // WORLD_EVERY
    nothing = dict(before)
    everything = {
        **before,
        "rows": rows,
        "citations": rows,
        "changes": rows,
        "documents": rows,
        "source": 1,
        "revision": before["revision"] + 1,
    }
    command = [str(DYAD), "import", str(csv_file), "--format", "comtrade"]
    command += ["--source-id", IMPORT_SOURCE, "--source-title", "UN Comtrade, crash test"]
    writes_for = 0.0  # seconds the first round wrote: from the write lock to its end
    faults: list[str] = []
    for number in range(1, args.import_rounds + 1):
        database = folder / f"import-{number}.db"
        shutil.copyfile(base, database)
        wal, log = Path(f"{database}-wal"), folder / f"import-{number}.log"
        # After the first round: a moment of the write phase, that many seconds after this
        # round's transaction takes the write lock.
        fraction = None if number == 1 else rng.uniform(0, 0.9)
        started = time.monotonic()
        with log.open("wb") as output:
            process = subprocess.Popen(
                command,
                env=clean_env(f"sqlite:///{database}"),
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        locked = kill_at = None  # seconds from the start
        try:
            while process.poll() is None:
                now = time.monotonic() - started
                if locked is None and is_locked(database):
                    locked = now
                    if fraction is not None:
                        kill_at = locked + fraction * writes_for
                if kill_at is not None and now >= kill_at:
                    break
                time.sleep(0.005 if locked is None else 0.01)
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        took = time.monotonic() - started
        wal_bytes = wal.stat().st_size if wal.exists() else 0
        if fraction is None:
            if process.returncode:
                raise SetupFailed(f"the import failed:\n{log.read_text(errors='replace')}")
            if locked is None:
                raise SetupFailed("the import's write lock was never seen: too small a file?")
            writes_for = took - locked
            what = f"ran to the end in {took:.1f} s, writing from {locked:.1f} s"
        elif kill_at is None or process.returncode == 0:
            what = f"finished in {took:.1f} s, before the SIGKILL {fraction:.0%} into writing"
        else:
            what = (
                f"SIGKILL at {kill_at:.1f} s, {fraction:.0%} into writing, with "
                f"{wal_bytes:,} bytes of WAL written"
            )
        found = integrity(database)
        state = import_state(database)
        outcome = "all there" if state == everything else "none there"
        if state not in (nothing, everything):
            outcome = "PARTIAL"
            found.append(f"neither all nor nothing: {state}; before {nothing}")
        if state["gaps"]:
            found.append(f"the change feed skips {state['gaps']} revision(s)")
        if fraction is None and state != everything:
            found.append(f"the import that ran to the end left {state}, not {everything}")
        faults += [f"import round {number}: {fault}" for fault in found]
        say(f"import round {number}: {rows:,} rows; {what}; {outcome}")
        for path in (database, wal, Path(f"{database}-shm"), log):
            path.unlink(missing_ok=True)
    return faults


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, help="repeat a run (default: a new seed)")
    parser.add_argument("--rounds", type=int, default=5, help="server kills under writes")
    parser.add_argument("--writers", type=int, default=5, help="concurrent writers")
    parser.add_argument("--import-rounds", type=int, default=4, help="imports (the first whole)")
    parser.add_argument("--import-rows", type=int, default=100_000, help="rows of the CSV")
    parser.add_argument(
        "--database-url",
        help="an empty database for the writes (default: a temporary SQLite file); "
        "the imports always use SQLite",
    )
    args = parser.parse_args(argv)
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(10**9)
    print(f"crash test, seed {seed} (repeat with --seed {seed})", flush=True)
    rng = random.Random(seed)
    with tempfile.TemporaryDirectory(prefix="dyad-crash-") as scratch:
        try:
            faults = run_writes(args, rng, Path(scratch)) if args.rounds else []
            faults += run_imports(args, rng, Path(scratch)) if args.import_rounds else []
        except SetupFailed as exc:
            print(f"SETUP FAILED: {exc}", file=sys.stderr)
            return 2
    for fault in faults:
        print(f"VIOLATION {fault}", file=sys.stderr)
    say(f"{'FAILED' if faults else 'OK'}: {len(faults)} violation(s) (seed {seed})")
    return 1 if faults else 0


if __name__ == "__main__":
    sys.exit(main())
