"""Copy the database to a file and back: ``manage.py backup`` and ``manage.py restore``.

SQLite is copied with its online backup API, page by page under a read
lock, so the site may keep running; a restore writes the pages into the live
database in one transaction, so anyone reading sees the old database or the
restored one, never a mix. PostgreSQL goes through ``pg_dump`` and
``pg_restore`` (custom format, the schema that holds Portal's tables, restored
in one transaction), which must be on ``PATH``.

A backup file is written beside its final name and renamed into place, so a
failed or interrupted backup never leaves a half-written file under that
name. Backups hold password hashes: they are created readable by their owner
only.
"""

from __future__ import annotations

import os
import re
import shutil
import sqlite3
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import closing
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import Engine
from sqlalchemy import inspect
from sqlalchemy import text
from sqlalchemy.engine import URL
from sqlalchemy.exc import SQLAlchemyError

from portal.database import utcnow

SQLITE = "sqlite"
POSTGRESQL = "postgresql"
ENGINES = {SQLITE: "SQLite", POSTGRESQL: "PostgreSQL"}
KINDS = {SQLITE: "SQLite database", POSTGRESQL: "PostgreSQL dump (pg_dump custom format)"}
SUFFIXES = {SQLITE: ".sqlite3", POSTGRESQL: ".dump"}
# The first bytes of each kind of file.
SQLITE_MAGIC = b"SQLite format 3\x00"
PGDUMP_MAGIC = b"PGDMP"
# A backup of Portal holds its accounts table; any other database is not one.
MARKER_TABLE = "users_user"
BACKUP_FOLDER = "backups"
# `pg_restore --list` names each table as "<id>; <oid> <oid> TABLE <schema> <name> <owner>".
TOC_TABLE_RE = re.compile(r"^\d+; \d+ \d+ TABLE (?P<schema>\S+) (?P<name>\S+)(?: |$)")


class BackupError(Exception):
    """A backup or restore that cannot be done; the message is one line, safe to show."""


@dataclass(frozen=True)
class Database:
    """Where the app's tables live: a SQLite file, or a PostgreSQL database and schema."""

    kind: str
    url: URL
    path: Path | None = None
    schema: str | None = None

    @property
    def label(self) -> str:
        """Name the database for messages, without its password."""
        if self.path is not None:
            return f"the SQLite database {self.path}"
        return f"the PostgreSQL schema {self.schema!r} of {self.url.database!r}"


def database_of(engine: Engine) -> Database:
    """Describe the database ``engine`` uses; refuse one that cannot be backed up."""
    url = engine.url
    name = engine.dialect.name
    if name == SQLITE:
        if not url.database or url.database == ":memory:" or url.database.startswith("file:"):
            raise BackupError("Only a SQLite database in a file can be backed up.")
        return Database(SQLITE, url, path=Path(url.database).resolve())
    if name == POSTGRESQL:
        return Database(POSTGRESQL, url, schema=_current_schema(engine))
    raise BackupError(f"Backups cover SQLite and PostgreSQL; this database is {name}.")


def _current_schema(engine: Engine) -> str:
    try:
        with engine.connect() as connection:
            schema = connection.execute(text("SELECT current_schema()")).scalar()
    except SQLAlchemyError as error:
        raise BackupError(f"The database is unreachable: {error.__class__.__name__}.") from None
    if not schema:
        raise BackupError("The database's search_path names no schema that exists.")
    return str(schema)


def default_path(instance_path: str | os.PathLike[str], kind: str, now: datetime | None) -> Path:
    """Return ``instance/backups/portal-<UTC time>.<suffix>`` for a backup made now."""
    moment = now or utcnow()
    name = f"portal-{moment:%Y%m%d-%H%M%S}{SUFFIXES[kind]}"
    return Path(instance_path) / BACKUP_FOLDER / name


# -- making a backup ---------------------------------------------------------------


def create(database: Database, path: Path, *, overwrite: bool = False) -> int:
    """Write a backup of ``database`` to ``path``; return its size in bytes."""
    if path.is_dir():
        raise BackupError(f"{path} is a folder; give a file name for the backup.")
    if path.exists() and not overwrite:
        raise BackupError(f"{path} exists already: pass --yes to replace it.")
    if not path.parent.is_dir():
        raise BackupError(f"The folder {path.parent} does not exist.")
    with _written_in_place(path, overwrite=overwrite) as partial:
        if database.kind == SQLITE:
            assert database.path is not None
            _sqlite_copy(_read_only(database.path), partial)
        else:
            _pg_dump(database, partial)
    return path.stat().st_size


@contextmanager
def _written_in_place(path: Path, *, overwrite: bool) -> Iterator[Path]:
    """Yield a private temporary file beside ``path``; move it there once the block succeeds."""
    descriptor, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    os.close(descriptor)
    partial = Path(name)
    try:
        yield partial
        with open(partial, "rb") as handle:
            os.fsync(handle.fileno())
        if overwrite:
            os.replace(partial, path)
        else:
            # A link fails if the name was taken meanwhile, where a rename would overwrite it.
            try:
                os.link(partial, path)
            except FileExistsError:
                raise BackupError(f"{path} exists already: pass --yes to replace it.") from None
    finally:
        partial.unlink(missing_ok=True)


def _read_only(path: Path) -> str:
    return f"{path.resolve().as_uri()}?mode=ro"


def _sqlite_copy(source: str, destination: Path | str) -> None:
    """Copy the SQLite database ``source`` (a URI) into ``destination`` with the backup API."""
    try:
        with (
            closing(sqlite3.connect(source, uri=True)) as reader,
            closing(sqlite3.connect(destination)) as writer,
        ):
            reader.backup(writer)
    except sqlite3.Error as error:
        raise BackupError(f"SQLite could not copy the database: {error}.") from None


def _pg_dump(database: Database, destination: Path) -> None:
    assert database.schema is not None
    _run_pg(
        "pg_dump",
        database,
        "--format=custom",
        f"--schema={database.schema}",
        f"--file={destination}",
    )


# -- checking a backup -------------------------------------------------------------


def kind_of(path: Path) -> str:
    """Tell which kind of backup ``path`` is, from its first bytes."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(len(SQLITE_MAGIC))
    except OSError as error:
        raise BackupError(f"{path} cannot be read: {error.strerror}.") from None
    if head.startswith(SQLITE_MAGIC):
        return SQLITE
    if head.startswith(PGDUMP_MAGIC):
        return POSTGRESQL
    raise BackupError(
        f"{path} is not a backup: neither a {KINDS[SQLITE]} nor a {KINDS[POSTGRESQL]}."
    )


def check(database: Database, path: Path) -> None:
    """Refuse ``path`` unless it is a whole backup of Portal that fits ``database``."""
    kind = kind_of(path)
    if kind != database.kind:
        raise BackupError(
            f"{path} is a {KINDS[kind]}, but this site's database is {ENGINES[database.kind]}."
        )
    if kind == SQLITE:
        _check_sqlite(path)
    else:
        _check_pg_dump(database, path)


def _check_sqlite(path: Path) -> None:
    try:
        with closing(sqlite3.connect(_read_only(path), uri=True)) as connection:
            verdict = connection.execute("PRAGMA quick_check").fetchone()[0]
            tables = {
                row[0]
                for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            }
    except sqlite3.Error as error:
        raise BackupError(f"{path} is not a readable SQLite database: {error}.") from None
    if verdict != "ok":
        raise BackupError(f"{path} is damaged: SQLite's check says {verdict!r}.")
    if MARKER_TABLE not in tables:
        raise BackupError(f"{path} is a SQLite database, but not one of Portal (no accounts).")


def _check_pg_dump(database: Database, path: Path) -> None:
    listing = _run_tool("pg_restore", ["--list", str(path)], {}, what=f"{path} cannot be read")
    schemas = {
        match["schema"]
        for line in listing.splitlines()
        if (match := TOC_TABLE_RE.match(line)) and match["name"] == MARKER_TABLE
    }
    if not schemas:
        raise BackupError(f"{path} is a PostgreSQL dump, but not one of Portal (no accounts).")
    if database.schema not in schemas:
        found = ", ".join(sorted(schemas))
        raise BackupError(
            f"{path} holds the schema {found}; this site's tables live in {database.schema!r}."
        )


# -- restoring ---------------------------------------------------------------------


def has_tables(engine: Engine) -> bool:
    """Tell whether the database holds any table a restore would replace."""
    try:
        with engine.connect() as connection:
            return bool(inspect(connection).get_table_names())
    except SQLAlchemyError as error:
        raise BackupError(f"The database is unreachable: {error.__class__.__name__}.") from None


def restore(database: Database, path: Path) -> None:
    """Replace the contents of ``database`` with the backup at ``path``, all or nothing.

    The caller ends its own connections first: an open transaction would
    hold locks the restore waits for.
    """
    check(database, path)
    if database.kind == SQLITE:
        assert database.path is not None
        _sqlite_copy(_read_only(path), database.path)
        return
    assert database.schema is not None
    _run_pg(
        "pg_restore",
        database,
        # Only this site's schema: a dump may hold others, which are not ours to replace.
        f"--schema={database.schema}",
        "--clean",
        "--if-exists",
        "--no-owner",
        "--single-transaction",
        "--exit-on-error",
        str(path),
    )


# -- the PostgreSQL client tools ---------------------------------------------------


def _run_pg(tool: str, database: Database, *arguments: str) -> str:
    """Run ``tool`` against ``database``; the password goes in the environment, not argv."""
    connection, environment = _libpq(database.url)
    return _run_tool(
        tool, [*arguments, f"--dbname={connection}"], environment, what=f"{tool} failed"
    )


def _run_tool(tool: str, arguments: list[str], environment: dict[str, str], *, what: str) -> str:
    program = shutil.which(tool)
    if program is None:
        raise BackupError(
            f"{tool} is not on PATH: install the PostgreSQL client tools "
            "(e.g. the postgresql-client package) of the server's version or newer."
        )
    done = subprocess.run(
        [program, *arguments],
        env={**os.environ, **environment},
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        detail = lines[-1].strip() if lines else f"exit status {done.returncode}"
        raise BackupError(f"{what}: {detail}")
    return done.stdout


def _libpq(url: URL) -> tuple[str, dict[str, str]]:
    """Turn a SQLAlchemy URL into a libpq connection string and the environment for it."""
    values: dict[str, object] = {
        "host": url.host,
        "port": url.port,
        "dbname": url.database,
        "user": url.username,
    }
    for key, value in url.query.items():
        # The driver's options (sslmode, options=-csearch_path=..., ...) are libpq's.
        values[key] = value[-1] if isinstance(value, tuple) else value
    connection = " ".join(
        f"{key}={_quoted(str(value))}" for key, value in values.items() if value not in (None, "")
    )
    environment = {"PGPASSWORD": url.password} if url.password else {}
    return connection, environment


def _quoted(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace("'", "\\'")
    return f"'{escaped}'"
