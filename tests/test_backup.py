"""`manage.py backup` and `manage.py restore`, round trips on real SQLite and PostgreSQL.

Each test runs on a database of its own (a SQLite file, or a PostgreSQL schema
created and dropped around it), because a backup reads what is committed and
a restore replaces it: the shared test transaction would hide both.
"""

from __future__ import annotations

import os
import shutil
import stat
from collections.abc import Iterator
from contextlib import AbstractContextManager
from contextlib import contextmanager
from contextlib import nullcontext
from pathlib import Path

import pytest
from click.testing import Result
from flask import Flask
from flask.testing import FlaskCliRunner
from sqlalchemy import create_engine
from sqlalchemy import func
from sqlalchemy import select

from portal import backup
from portal import create_app
from portal.database import Base
from portal.extensions import db
from portal.users.models import User
from tests.conftest import IN_CI
from tests.conftest import POSTGRES_URL
from tests.conftest import private_schema
from tests.conftest import require_service
from tests.factories import UserFactory
from tests.helpers import assert_no_traceback
from tests.helpers import fails_with

SUFFIX = {"sqlite": ".sqlite3", "postgresql": ".dump"}


def database_url(backend: str, tmp_path: Path, name: str) -> AbstractContextManager[str]:
    """A URL for an empty database of this backend that only this test uses."""
    if backend == "sqlite":
        return nullcontext(f"sqlite:///{tmp_path / f'{name}.sqlite3'}")
    require_service(POSTGRES_URL, 5432, "PostgreSQL")
    require_client_tools()
    return private_schema(f"portal_{name}")


def require_client_tools() -> None:
    """Skip without pg_dump and pg_restore, but fail in CI, which installs them."""
    missing = [tool for tool in ("pg_dump", "pg_restore") if shutil.which(tool) is None]
    if not missing:
        return
    message = f"{' and '.join(missing)} not on PATH"
    if IN_CI:
        pytest.fail(f"{message}; CI requires them.")
    pytest.skip(message)


@contextmanager
def own_app(backend: str, tmp_path: Path, name: str = "backup") -> Iterator[Flask]:
    """An app on a database of its own, with every table, that commits for real."""
    with database_url(backend, tmp_path, name) as url:
        engine = create_engine(url)
        Base.metadata.create_all(engine)
        engine.dispose()
        app = create_app({"PORTAL_ENV": "testing", "SQLALCHEMY_DATABASE_URI": url})
        app.instance_path = str(tmp_path / f"{name}-instance")
        try:
            with app.app_context():
                yield app
        finally:
            with app.app_context():
                db.session.remove()
                db.engine.dispose()


@pytest.fixture
def site(backend: str, tmp_path: Path) -> Iterator[Flask]:
    with own_app(backend, tmp_path) as app:
        yield app


@pytest.fixture
def cli(site: Flask) -> FlaskCliRunner:
    return site.test_cli_runner()


def addresses() -> list[str]:
    """Every account's address, as committed."""
    db.session.remove()
    return sorted(db.session.execute(select(User.email)).scalars())


def run(cli: FlaskCliRunner, *args: str) -> Result:
    result = cli.invoke(args=list(args))
    assert_no_traceback(result)
    return result


# -- round trips -------------------------------------------------------------------


def test_a_restore_brings_back_what_the_backup_held(
    cli: FlaskCliRunner, backend: str, tmp_path: Path
) -> None:
    for email in ("ann@example.com", "bo@example.com"):
        UserFactory(email=email)
    path = tmp_path / f"copy{SUFFIX[backend]}"

    made = run(cli, "backup", str(path))

    assert made.exit_code == 0, made.output
    assert made.output.startswith("Backed up the ")
    assert made.output.endswith(f" to {path} ({path.stat().st_size:,} bytes).\n")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600  # it holds password hashes
    assert backup.kind_of(path) == backend
    # After the backup: one account deleted, one added.
    db.session.delete(
        db.session.execute(select(User).filter_by(email="ann@example.com")).scalar_one()
    )
    UserFactory(email="late@example.com")
    assert addresses() == ["bo@example.com", "late@example.com"]

    refused = run(cli, "restore", str(path))

    assert refused.exit_code == 1
    assert refused.output.endswith(f"holds data: pass --yes to replace it with {path}.\n")
    assert addresses() == ["bo@example.com", "late@example.com"]

    restored = run(cli, "restore", str(path), "--yes")

    assert restored.exit_code == 0, restored.output
    assert restored.stdout.startswith("Restored the ")
    assert addresses() == ["ann@example.com", "bo@example.com"]
    # The restored database works on: new rows get fresh ids.
    UserFactory(email="after@example.com")
    assert len(addresses()) == 3
    assert db.session.execute(select(func.count(func.distinct(User.id)))).scalar_one() == 3


def test_a_restore_into_a_new_sqlite_file_needs_no_confirmation(tmp_path: Path) -> None:
    path = tmp_path / "copy.sqlite3"
    with own_app("sqlite", tmp_path, "source") as source:
        UserFactory(email="ann@example.com")
        assert run(source.test_cli_runner(), "backup", str(path)).exit_code == 0
    empty = f"sqlite:///{tmp_path / 'fresh.sqlite3'}"
    app = create_app({"PORTAL_ENV": "testing", "SQLALCHEMY_DATABASE_URI": empty})
    with app.app_context():
        result = run(app.test_cli_runner(), "restore", str(path))

        assert result.exit_code == 0, result.output
        assert addresses() == ["ann@example.com"]
        db.session.remove()
        db.engine.dispose()


def test_backup_without_a_path_writes_under_instance_backups(
    cli: FlaskCliRunner, site: Flask, backend: str
) -> None:
    result = run(cli, "backup")

    assert result.exit_code == 0, result.output
    [path] = (Path(site.instance_path) / "backups").iterdir()
    assert path.name.startswith("portal-") and path.suffix == SUFFIX[backend]
    assert result.output.endswith(f" to {path} ({path.stat().st_size:,} bytes).\n")


def test_backup_keeps_an_existing_file_unless_told_to_replace_it(
    cli: FlaskCliRunner, backend: str, tmp_path: Path
) -> None:
    path = tmp_path / "kept.bin"
    path.write_text("an older backup")

    refused = run(cli, "backup", str(path))

    fails_with(refused, f"{path} exists already: pass --yes to replace it.")
    assert path.read_text() == "an older backup"

    replaced = run(cli, "backup", str(path), "--yes")

    assert replaced.exit_code == 0
    assert backup.kind_of(path) == backend
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.endswith(".part")) == []


def test_backup_into_a_missing_folder_writes_nothing(cli: FlaskCliRunner, tmp_path: Path) -> None:
    path = tmp_path / "nowhere" / "copy.bin"

    fails_with(run(cli, "backup", str(path)), f"The folder {path.parent} does not exist.")
    assert not path.parent.exists()


# -- what restore refuses -----------------------------------------------------------


def other_kind(backend: str, tmp_path: Path) -> Path:
    """A real backup of the other backend (or a file that starts like one)."""
    path = tmp_path / "other"
    if backend == "postgresql":
        with own_app("sqlite", tmp_path, "other") as app:
            assert run(app.test_cli_runner(), "backup", str(path)).exit_code == 0
    else:
        path.write_bytes(backup.PGDUMP_MAGIC + b"\x01\x0e\x00")
    return path


def test_restore_refuses_what_is_not_a_backup_of_this_database(
    cli: FlaskCliRunner, backend: str, tmp_path: Path
) -> None:
    UserFactory(email="ann@example.com")
    text = tmp_path / "notes.txt"
    text.write_text("not a database")
    foreign = other_kind(backend, tmp_path)
    kinds = {
        "sqlite": "PostgreSQL dump (pg_dump custom format), but this site's database is SQLite.",
        "postgresql": "SQLite database, but this site's database is PostgreSQL.",
    }

    for extra in ([], ["--yes"]):
        fails_with(
            run(cli, "restore", str(text), *extra),
            f"{text} is not a backup: neither a SQLite database "
            "nor a PostgreSQL dump (pg_dump custom format).",
        )
        fails_with(run(cli, "restore", str(foreign), *extra), f"{foreign} is a {kinds[backend]}")
    assert addresses() == ["ann@example.com"]


def test_restore_refuses_a_sqlite_file_of_another_application(
    tmp_path: Path,
) -> None:
    import sqlite3

    stranger = tmp_path / "stranger.sqlite3"
    with sqlite3.connect(stranger) as connection:
        connection.execute("CREATE TABLE notes (body TEXT)")
    with own_app("sqlite", tmp_path) as app:
        result = run(app.test_cli_runner(), "restore", str(stranger), "--yes")

    fails_with(result, f"{stranger} is a SQLite database, but not one of Portal (no accounts).")


def test_restore_refuses_a_damaged_sqlite_backup(tmp_path: Path) -> None:
    path = tmp_path / "copy.sqlite3"
    with own_app("sqlite", tmp_path) as app:
        UserFactory.create_batch(200)
        cli = app.test_cli_runner()
        assert run(cli, "backup", str(path)).exit_code == 0
        whole = path.read_bytes()
        path.write_bytes(whole[: len(whole) // 2])

        result = run(cli, "restore", str(path), "--yes")

        assert result.exit_code == 1
        assert result.output.startswith(f"Error: {path} ")
        assert len(addresses()) == 200


def test_restore_of_a_missing_file_is_a_usage_error(cli: FlaskCliRunner, tmp_path: Path) -> None:
    result = run(cli, "restore", str(tmp_path / "missing.dump"), "--yes")

    assert result.exit_code == 2
    assert "does not exist" in result.output


def test_an_in_memory_database_cannot_be_backed_up(tmp_path: Path) -> None:
    app = create_app({"PORTAL_ENV": "testing", "SQLALCHEMY_DATABASE_URI": "sqlite://"})
    with app.app_context():
        result = run(app.test_cli_runner(), "backup", str(tmp_path / "x"))

    fails_with(result, "Only a SQLite database in a file can be backed up.")
    assert list(tmp_path.iterdir()) == []


# -- PostgreSQL: the client tools and the schema ------------------------------------


def test_a_dump_restores_only_into_the_schema_it_came_from(tmp_path: Path) -> None:
    path = tmp_path / "a.dump"
    with own_app("postgresql", tmp_path, "backup_a") as first:
        UserFactory(email="ann@example.com")
        assert run(first.test_cli_runner(), "backup", str(path)).exit_code == 0
        schema_a = backup.database_of(db.engine).schema
    with own_app("postgresql", tmp_path, "backup_b") as second:
        schema_b = backup.database_of(db.engine).schema

        result = run(second.test_cli_runner(), "restore", str(path), "--yes")

        fails_with(
            result, f"{path} holds the schema {schema_a}; this site's tables live in {schema_b!r}."
        )
        assert addresses() == []


def test_a_dump_of_several_schemas_restores_only_this_sites(tmp_path: Path) -> None:
    path = tmp_path / "both.dump"
    with own_app("postgresql", tmp_path, "backup_other") as other:
        UserFactory(email="other@example.com")
        other_schema = backup.database_of(db.engine).schema
        other_engine = create_engine(other.config["SQLALCHEMY_DATABASE_URI"])
        with own_app("postgresql", tmp_path, "backup_site") as site:
            UserFactory(email="ann@example.com")
            database = backup.database_of(db.engine)
            # A dump of the whole database, as pg_dump makes it without --schema.
            backup._run_pg(
                "pg_dump",
                database,
                "--format=custom",
                f"--schema={database.schema}",
                f"--schema={other_schema}",
                f"--file={path}",
            )
            with other_engine.begin() as connection:
                connection.execute(User.__table__.delete())

            result = run(site.test_cli_runner(), "restore", str(path), "--yes")

            assert result.exit_code == 0, result.output
            assert addresses() == ["ann@example.com"]
        # The other schema is not this site's: the restore left it as it was.
        try:
            with other_engine.connect() as connection:
                left = connection.execute(select(func.count()).select_from(User.__table__))
                assert left.scalar() == 0
        finally:
            other_engine.dispose()


@pytest.mark.parametrize(("command", "tool"), [("backup", "pg_dump"), ("restore", "pg_restore")])
def test_without_the_client_tools_postgresql_says_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, command: str, tool: str
) -> None:
    path = tmp_path / "copy.dump"
    with own_app("postgresql", tmp_path) as app:
        cli = app.test_cli_runner()
        assert run(cli, "backup", str(path)).exit_code == 0
        empty = tmp_path / "bin"
        empty.mkdir()
        monkeypatch.setenv("PATH", str(empty))
        target = str(path) if command == "restore" else str(tmp_path / "again.dump")

        result = run(cli, command, target, "--yes")

    fails_with(
        result,
        f"{tool} is not on PATH: install the PostgreSQL client tools "
        "(e.g. the postgresql-client package) of the server's version or newer.",
    )
    assert not (tmp_path / "again.dump").exists()


def test_the_password_reaches_the_tools_through_the_environment_only() -> None:
    from sqlalchemy.engine import make_url

    url = make_url("postgresql+psycopg://portal:s3cr'et@db.internal:6432/portal?sslmode=require")

    connection, environment = backup._libpq(url)

    assert "s3cr" not in connection
    assert environment == {"PGPASSWORD": "s3cr'et"}
    assert connection == (
        "host='db.internal' port='6432' dbname='portal' user='portal' sslmode='require'"
    )


def test_a_missing_pg_dump_leaves_no_partial_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", os.devnull)
    database = backup.Database(backup.POSTGRESQL, create_engine(POSTGRES_URL).url, schema="public")

    with pytest.raises(backup.BackupError, match="pg_dump is not on PATH"):
        backup.create(database, tmp_path / "copy.dump")

    assert list(tmp_path.iterdir()) == []
