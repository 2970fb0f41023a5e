"""The ``dyad`` command: serve, migrate, seed, check, import, export and back up the dataset."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, cast

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, ProgressColumn, Task, TextColumn, TimeRemainingColumn
from rich.table import Table
from rich.text import Text

from app import api_keys, comtrade, dataset, imports, migrate
from app.db import backup_sqlite, get_engine, read_connection
from app.settings import get_settings

app = typer.Typer(
    help="Dyad: sourced facts about the relations between pairs of countries.\n\n"
    "Settings come from DYAD_* environment variables (DYAD_DATABASE_URL, ...).",
    no_args_is_help=True,
    add_completion=False,
)
db_app = typer.Typer(help="Create or update the database schema.", no_args_is_help=True)
app.add_typer(db_app, name="db")
keys_app = typer.Typer(
    help="Make, list and revoke the API keys that writes need.", no_args_is_help=True
)
app.add_typer(keys_app, name="keys")
out = Console()
err = Console(stderr=True)

FileArg = Annotated[Path, typer.Argument(help="A dataset file in the format of data/seed.json.")]


def _print_problems(problems: list[dataset.Problem]) -> None:
    table = Table("where (JSON pointer)", "problem", title=f"{len(problems)} problem(s)")
    for problem in problems:
        table.add_row(problem.pointer or "/", problem.message)
    err.print(table)


def _require_migrated() -> None:
    engine = get_engine()
    if not migrate.is_at_head(engine):
        err.print("[red]The database is not migrated.[/] Run [bold]dyad db upgrade[/] first.")
        raise typer.Exit(2)


@db_app.command("upgrade")
def db_upgrade(
    revision: Annotated[str, typer.Argument(help="Target migration.")] = "head",
) -> None:
    """Apply the migrations up to REVISION (default: the latest)."""
    migrate.upgrade(get_settings().database_url, revision)
    out.print(f"Database migrated to {migrate.current_revision(get_engine())}.")


@db_app.command("downgrade")
def db_downgrade(
    revision: Annotated[str, typer.Argument(help="Target migration, or 'base' for none.")],
) -> None:
    """Undo the migrations down to REVISION."""
    migrate.downgrade(get_settings().database_url, revision)
    out.print(f"Database now at {migrate.current_revision(get_engine()) or 'base'}.")


@db_app.command("current")
def db_current() -> None:
    """Show the migration the database is at, and the latest one."""
    engine = get_engine()
    head = migrate.head_revision()
    out.print(f"current: {migrate.current_revision(engine) or 'none'}  latest: {head}")


@app.command()
def seed(
    file: Annotated[
        Path | None, typer.Argument(help="Dataset file (default: data/seed.json).")
    ] = None,
    if_changed: Annotated[
        bool, typer.Option("--if-changed", help="Skip when this exact file was loaded last.")
    ] = False,
) -> None:
    """Load a dataset into the database, all or nothing. Loading the same file again
    changes nothing."""
    path = file or get_settings().seed_file
    _require_migrated()
    engine = get_engine()
    digest = dataset.file_digest(path) if path.exists() else None
    if if_changed:
        with engine.connect() as connection:
            if dataset.current_state(connection)[1] == digest:
                out.print(f"{path.name} is already loaded; nothing to do.")
                return
    try:
        report = dataset.load(engine, path, seed_digest=digest)
    except dataset.DatasetInvalid as exc:
        _print_problems(exc.problems)
        err.print("[red]Nothing was written.[/]")
        raise typer.Exit(1) from None
    _print_report(report)


def _print_report(report: dataset.LoadReport) -> None:
    if not report.changed:
        out.print(f"Nothing changed ({report.unchanged} records already up to date).")
        return
    verb = "Would write" if report.dry_run else "Wrote"
    out.print(
        f"{verb}: {report.created} created, {report.updated} updated, "
        f"{report.unchanged} unchanged. Dataset revision {report.revision}."
    )


@app.command()
def check(file: FileArg) -> None:
    """Validate a dataset file without writing anything. Exit code 1 lists every problem."""
    problems = dataset.check_file(file)
    if problems:
        _print_problems(problems)
        raise typer.Exit(1)
    parsed = dataset.read_file(file)
    total = sum(len(getattr(parsed, c)) for c in dataset.COLLECTIONS)
    out.print(f"{file} is valid: {total} records.")


@app.command()
def export(
    file: Annotated[Path | None, typer.Argument(help="Where to write (default: stdout).")] = None,
) -> None:
    """Write the whole dataset in the format of data/seed.json, in a deterministic order."""
    _require_migrated()
    with read_connection(get_engine()) as connection:  # one snapshot, whatever is written
        data = dataset.dumps(dataset.export_dataset(connection))
    if file is None:
        typer.echo(data.decode(), nl=False)
    else:
        file.write_bytes(data)
        err.print(f"Exported to {file}.")


class _RowsColumn(ProgressColumn):
    def render(self, task: Task) -> Text:
        rows = int(task.fields.get("rows", 0))
        elapsed = task.finished_time or task.elapsed  # the time the task took, once done
        rate = rows / elapsed if elapsed else 0.0
        return Text(f"{rows:,} rows, {rate:,.0f} rows/s", style="progress.data.speed")


class _ImportProgress:
    """A progress bar with rows/s, shown once the file proves longer than a few thousand
    rows (a CSV is measured in bytes; the rows it holds are estimated as it is read)."""

    THRESHOLD = 5_000
    LABELS = {"check": "Checking", "write": "Writing"}

    def __init__(self, console: Console, dry_run: bool) -> None:
        self.console = console
        self.dry_run = dry_run
        self.bar: Progress | None = None
        self.tasks: dict[str, Any] = {}

    def __call__(self, phase: str, completed: int, total: int, rows: int) -> None:
        if self.bar is None:
            if not completed or total * rows / completed <= self.THRESHOLD:
                return
            self.bar = Progress(
                TextColumn("{task.description}"),
                BarColumn(bar_width=24),
                TextColumn("{task.percentage:>3.0f}%"),
                _RowsColumn(),
                TimeRemainingColumn(),
                console=self.console,
            )
            self.bar.start()
        if phase not in self.tasks:
            for task in self.tasks.values():
                self.bar.stop_task(task)
            label = self.LABELS.get(phase, phase)
            if phase == "write" and self.dry_run:
                label += " (dry run)"
            self.tasks[phase] = self.bar.add_task(label, total=total, rows=0)
        self.bar.update(self.tasks[phase], completed=completed, rows=rows)

    def __enter__(self) -> _ImportProgress:
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self.bar is not None:
            self.bar.stop()


@app.command("import")
def import_(
    file: Annotated[
        Path, typer.Argument(help="A dataset in the format of data/seed.json, or a Comtrade CSV.")
    ],
    format_: Annotated[
        str,
        typer.Option(
            "--format",
            help="seed: a dataset in the format of data/seed.json. comtrade: a UN Comtrade "
            "CSV as its download tool writes it.",
        ),
    ] = "seed",
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Check and count as the import would; write nothing.")
    ] = False,
    source_id: Annotated[
        str | None, typer.Option(help="comtrade: the id of the source the rows cite.")
    ] = None,
    source_title: Annotated[
        str | None, typer.Option(help="comtrade: the title of the source, to create it.")
    ] = None,
    source_publisher: Annotated[str | None, typer.Option(help="comtrade: its publisher.")] = None,
    source_url: Annotated[str | None, typer.Option(help="comtrade: its URL.")] = None,
    source_published_at: Annotated[
        str | None, typer.Option(help="comtrade: when it was published (ISO 8601).")
    ] = None,
) -> None:
    """Import a dataset or a UN Comtrade CSV, all or nothing: one bad record and nothing is
    written. Records equal to the stored ones are left alone."""
    if format_ not in ("seed", "comtrade"):
        err.print(f"[red]Unknown format {format_!r}.[/] Use seed or comtrade.")
        raise typer.Exit(2)
    _require_migrated()
    source = imports.SourceSpec(
        source_id, source_title, source_publisher, source_url, source_published_at
    )
    try:
        with file.open("rb") as stream, _ImportProgress(err, dry_run) as progress:
            report = imports.run_import(
                get_engine(),
                stream,
                cast(imports.Format, format_),
                source,
                dry_run=dry_run,
                progress=progress,
            )
    except OSError as exc:
        _print_problems([dataset.Problem("", f"cannot read {file}: {exc.strerror}")])
        err.print("[red]Nothing was written.[/]")
        raise typer.Exit(1) from None
    except imports.SourceInvalid as exc:
        for option, message in exc.errors:
            err.print(f"[red]--{option.replace('_', '-')}[/]: {message}")
        err.print("[red]Nothing was written.[/]")
        raise typer.Exit(2) from None
    except dataset.DatasetInvalid as exc:
        if format_ == "comtrade":
            table = Table(
                "where (line, column)", "problem", title=f"{len(exc.problems)} problem(s)"
            )
            for problem in exc.problems:
                table.add_row(comtrade.where(problem), problem.message)
            err.print(table)
        else:
            _print_problems(exc.problems)
        err.print("[red]Nothing was written.[/]")
        raise typer.Exit(1) from None
    _print_report(report)
    if report.skipped_by:
        reasons = ", ".join(f"{count} {reason}" for reason, count in report.skipped_by.items())
        out.print(f"Skipped {report.skipped} row(s): {reasons}.")


@app.command()
def serve(
    host: Annotated[str, typer.Option(envvar="HOST", help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(envvar="PORT", help="TCP port.")] = 8000,
    workers: Annotated[int, typer.Option(help="Worker processes.")] = 1,
    reload: Annotated[bool, typer.Option(help="Restart on code changes (development).")] = False,
) -> None:
    """Serve the HTTP API (docs at /docs).

    On SIGTERM the server stops taking connections and lets the requests in flight finish
    for up to DYAD_SHUTDOWN_GRACE_SECONDS; no `Server` header says what answers.
    """
    import uvicorn

    from app.serving import LOOP

    settings = get_settings()
    uvicorn.run(
        "app.main:create_app",
        factory=True,
        loop=LOOP,
        host=host,
        port=port,
        workers=workers,
        reload=reload,
        access_log=False,
        server_header=False,
        timeout_graceful_shutdown=settings.shutdown_grace_seconds,
        log_level=settings.log_level,
    )


@keys_app.command("create")
def keys_create(
    name: Annotated[str, typer.Option(help="Who or what the key is for.")],
    scope: Annotated[
        str, typer.Option(help="write: create, update, delete. import: bulk imports.")
    ] = "write",
    expires: Annotated[
        str | None, typer.Option(help="Lifetime such as 90d, 12h or 2w (default: none).")
    ] = None,
) -> None:
    """Make a key and print it. It is shown this once: only its SHA-256 is stored."""
    if scope not in ("write", "import"):
        err.print(f"[red]Unknown scope {scope!r}.[/] Use write or import.")
        raise typer.Exit(2)
    try:
        lifetime = api_keys.parse_duration(expires) if expires else None
    except ValueError as exc:
        err.print(f"[red]{exc}[/]")
        raise typer.Exit(2) from None
    _require_migrated()
    secret, info = api_keys.create_key(get_engine(), name, scope, lifetime)  # type: ignore[arg-type]
    err.print(
        f"Key {info.id} ({info.name}, scope {info.scope}) made. Store it now; it is not "
        "shown again:"
    )
    typer.echo(secret)


@keys_app.command("list")
def keys_list() -> None:
    """List the keys (never their secrets)."""
    _require_migrated()
    table = Table("id", "name", "scope", "starts with", "created", "expires", "revoked")
    for key in api_keys.list_keys(get_engine()):
        table.add_row(
            str(key.id),
            key.name,
            key.scope,
            key.prefix + "…",
            f"{key.created_at:%Y-%m-%d %H:%M}",
            f"{key.expires_at:%Y-%m-%d %H:%M}" if key.expires_at else "never",
            f"{key.revoked_at:%Y-%m-%d %H:%M}" if key.revoked_at else "",
        )
    out.print(table)


@keys_app.command("revoke")
def keys_revoke(
    key_id: Annotated[int, typer.Argument(help="The key's id (see keys list).")],
) -> None:
    """Revoke a key: requests carrying it are refused from now on."""
    _require_migrated()
    if not api_keys.revoke_key(get_engine(), key_id):
        err.print(f"[red]No active key with id {key_id}.[/]")
        raise typer.Exit(1)
    out.print(f"Key {key_id} revoked.")


@app.command()
def backup(
    file: Annotated[Path, typer.Argument(help="Where to write the copy (a new SQLite file).")],
) -> None:
    """Copy a live SQLite database consistently (SQLite's online backup API), while it serves.

    PostgreSQL is backed up with its own tools: ``pg_dump`` (see the README).
    """
    _require_migrated()
    if file.exists():
        err.print(f"[red]{file} exists already;[/] choose a new file.")
        raise typer.Exit(1)
    try:
        backup_sqlite(get_engine(), file)
    except ValueError as exc:
        err.print(f"[red]{exc}.[/]")
        raise typer.Exit(2) from None
    err.print(f"Backed up to {file}.")
